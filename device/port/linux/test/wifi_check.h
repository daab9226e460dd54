/* port_check's Wi-Fi and socket commands (wifi_check.c). */
#pragma once

#include <stdbool.h>

/* Runs line if it is one of wifi_check.c's commands; false if it is not one. */
bool wifi_check_command(const char *line);
