/*
 * MQTT commands (docs/protocol.md, "Commands"): checks a command, then hands it by its "type"
 * to the module that owns it, through one table in commands.c. The modules that act on
 * commands (the OTA agent, the manifest, the status) do not know about each other.
 */
#pragma once

#include "mqtt_link.h"

/* Handles one command, or answers one the link could not queue (the link's command callback,
   called on its command task). */
void commands_handle(const mqtt_link_command_t *cmd);
