/* port_check's network commands (net_check.c). */
#pragma once

#include <stdbool.h>

/* Runs line if it is one of net_check.c's commands; false if it is not one. */
bool net_check_command(const char *line);
