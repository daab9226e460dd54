/*
 * The device's MQTT session: topics under <prefix>/<device_id>, a retained online/offline
 * flag (offline is the last will), and commands from <id>/cmd and <prefix>/all/cmd handed to
 * a callback on the link's own task.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"
#include "cJSON.h"

/* Largest command payload accepted; anything longer is refused as bad_command. */
#define MQTT_LINK_MAX_COMMAND_LEN 4096

/* What the link hands the command callback. */
typedef enum {
    MQTT_LINK_COMMAND,            /* payload/len: the command, NUL-terminated */
    MQTT_LINK_COMMAND_TOO_LONG,   /* over MQTT_LINK_MAX_COMMAND_LEN; len is its length */
    MQTT_LINK_COMMAND_QUEUE_FULL, /* arrived while the queue was full; id is its "id" ("" if none) */
} mqtt_link_command_kind_t;

typedef struct {
    mqtt_link_command_kind_t kind;
    const char *payload; /* MQTT_LINK_COMMAND only */
    int len;
    const char *id;      /* MQTT_LINK_COMMAND_QUEUE_FULL only */
} mqtt_link_command_t;

typedef void (*mqtt_link_command_cb_t)(const mqtt_link_command_t *command);

/* Where the link hands the chunks of a `push` (<prefix>/<id>/push/<transfer>/<offset>, ota_push.c).
   All three are called on the MQTT client's task and must not block. */
typedef struct {
    bool (*wants)(const char *transfer);  /* is this transfer running? (else its chunks are not copied) */
    /* a whole chunk; data is malloc'd and now the callee's to free */
    void (*chunk)(const char *transfer, int64_t offset, uint8_t *data, int len);
    void (*reconnected)(void);            /* the link is connected again after a drop */
} mqtt_link_push_handler_t;

/* Largest push chunk the link assembles (OTA_PUSH_CHUNK_MAX); a longer message on the push topic is ignored. */
#define MQTT_LINK_MAX_CHUNK_LEN 16384

/* Registers the push handler (before mqtt_link_start()); handler must stay valid. */
void mqtt_link_set_push_handler(const mqtt_link_push_handler_t *handler);

/* Starts the client (non-blocking); commands go to on_command, one at a time, on the link's
   command task. Commands that found the queue full reach it too (MQTT_LINK_COMMAND_QUEUE_FULL),
   once it is free, so each one gets an answer. */
esp_err_t mqtt_link_start(mqtt_link_command_cb_t on_command);
/* timeout_ms for mqtt_link_wait_connected(): wait as long as it takes. */
#define MQTT_LINK_WAIT_FOREVER (-1)

/* Waits until connected to the broker; false on timeout, or at once when the link was never
   started (no broker_url). */
bool mqtt_link_wait_connected(int timeout_ms);
bool mqtt_link_is_connected(void);
/* Publishes JSON on <prefix>/<id>/<kind> at QoS 1. Returns the msg id, or -1. */
/* Publishes text (QoS 1) to <prefix>/<device id>/<kind>; the message id, or -1 when the link was never
   started or esp-mqtt refused it. While disconnected esp-mqtt keeps it in its outbox until it reconnects. */
int mqtt_link_publish_text(const char *kind, const char *text, bool retain);
int mqtt_link_publish_json(const char *kind, const cJSON *json, bool retain);
/* Waits until the broker acknowledged everything published so far; false on timeout. */
bool mqtt_link_flush(int timeout_ms);
