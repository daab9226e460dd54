/* port_check's esp_https_ota command (https_ota_check.c). */
#pragma once

#include <stdbool.h>

/* Runs line if it is the https_ota command; false if it is not. */
bool https_ota_check_command(const char *line);
