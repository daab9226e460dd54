/* Serial console commands: config set|get|show|reset, status, reboot. */
#pragma once

#include "esp_err.h"

esp_err_t agent_console_start(void);
