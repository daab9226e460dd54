/* port_check's Bluetooth commands (ble_check.c). */
#pragma once

#include <stdbool.h>

/* Runs line if it is one of ble_check.c's commands; false if it is not one. */
bool ble_check_command(const char *line);
