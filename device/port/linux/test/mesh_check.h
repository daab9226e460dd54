/* port_check's ESP-WIFI-MESH commands (mesh_check.c). */
#pragma once

#include <stdbool.h>

/* Runs line if it is one of mesh_check.c's commands; false if it is not one. */
bool mesh_check_command(const char *line);
