/* port_check's inflate command (miniz_check.c): the port's tinfl_decompress as the firmware drives it. */
#pragma once

#include <stdbool.h>

/* Runs line if it is one of miniz_check.c's commands; false if it is not one. */
bool miniz_check_command(const char *line);
