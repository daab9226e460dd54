/*
 * The OTA agent: takes commands from MQTT, runs one update at a time in its own task, and
 * reports every step as an OTA event. An update never touches the running slot and never
 * reboots on failure: after any failure the device keeps running its current firmware.
 */
#pragma once

#include "esp_err.h"

esp_err_t ota_agent_start(void);
/* Handles one command payload (called on the MQTT link's command task). */
void ota_agent_handle_command(const char *payload, int len);
