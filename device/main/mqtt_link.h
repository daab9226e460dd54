/*
 * The device's MQTT session: topics under <prefix>/<device_id>, a retained online/offline
 * flag (offline is the last will), and commands from <id>/cmd and <prefix>/all/cmd handed to
 * a callback on the link's own task.
 */
#pragma once

#include <stdbool.h>
#include "esp_err.h"
#include "cJSON.h"

/* Largest command payload accepted; anything longer is refused as bad_command. */
#define MQTT_LINK_MAX_COMMAND_LEN 4096

typedef void (*mqtt_link_command_cb_t)(const char *payload, int len);

/* Starts the client (non-blocking); commands go to on_command. */
esp_err_t mqtt_link_start(mqtt_link_command_cb_t on_command);
/* timeout_ms for mqtt_link_wait_connected(): wait as long as it takes. */
#define MQTT_LINK_WAIT_FOREVER (-1)

/* Waits until connected to the broker; false on timeout, or at once when the link was never
   started (no broker_url). */
bool mqtt_link_wait_connected(int timeout_ms);
bool mqtt_link_is_connected(void);
/* Publishes JSON on <prefix>/<id>/<kind> at QoS 1. Returns the msg id, or -1. */
int mqtt_link_publish_json(const char *kind, const cJSON *json, bool retain);
/* Waits until the broker acknowledged everything published so far; false on timeout. */
bool mqtt_link_flush(int timeout_ms);
