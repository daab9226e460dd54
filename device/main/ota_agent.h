/*
 * The OTA agent: takes commands from MQTT, runs one update at a time in its own task, and
 * reports every step as an OTA event. An update never touches the running slot and never
 * reboots on failure: after any failure the device keeps running its current firmware.
 */
#pragma once

#include "esp_err.h"
#include "mqtt_link.h"
#include "ota_request.h"

esp_err_t ota_agent_start(void);
/* Queues an update (from a command or the manifest); rejects it when one is running. */
void ota_agent_submit(const ota_request_t *req);
/* Handles one command, or answers one the link could not queue (called on the link's command task). */
void ota_agent_handle_command(const mqtt_link_command_t *cmd);
