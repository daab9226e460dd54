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
/* The same on this device's own broker session, past the mesh: what a node that became root still held
   (mesh_outbox.c). */
int mqtt_link_publish_own(const char *kind, const char *text, bool retain);
int mqtt_link_publish_json(const char *kind, const cJSON *json, bool retain);
/* Waits until the broker acknowledged everything published so far; false on timeout. */
bool mqtt_link_flush(int timeout_ms);

/* ---- ESP-WIFI-MESH (CONFIG_OTA_AGENT_MESH, mesh_link.c); without it these change nothing ---- */
/* What the link needs from the mesh; mesh_link.c sets it before mqtt_link_start(). */
typedef struct {
    bool (*is_root)(void);                                             /* this node is the root now */
    bool (*node_uplink)(void);                                         /* a node's way out to the broker */
    int (*forward_publish)(const char *kind, const char *text, bool retain); /* a node's publish, to the root */
    bool (*relay_command)(const char *device_id, const char *payload, int len); /* the root: to a node or all */
    void (*broker_state)(bool connected);                              /* the root's broker session changed */
    void (*published)(int msg_id);                                     /* the root: the broker acked msg_id */
    bool (*flush)(int timeout_ms);                                     /* a node: its messages through */
    /* a node that became root: queues a message behind those it still holds (false: it holds none) */
    bool (*publish_behind_held)(const char *kind, const char *text, bool retain);
} mqtt_link_mesh_t;
/* On a mesh (mesh must stay valid): the client runs only while this node is root (mqtt_link_mesh_root()). */
void mqtt_link_set_mesh(const mqtt_link_mesh_t *mesh);
/* Whether the broker session is up (mqtt_link_is_connected() is the device's way out: on a mesh node, the
   mesh with a root that reaches the broker). */
bool mqtt_link_broker_connected(void);
/* The node became the mesh's root with an address (true: start the esp-mqtt client) or stopped being it. */
void mqtt_link_mesh_root(bool is_root);
/* The mesh's view changed: recomputes mqtt_link_is_connected(). */
void mqtt_link_uplink_changed(void);
/* A command that came over the mesh, handled as one from MQTT (queued; busy when the queue is full). */
void mqtt_link_inject_command(const char *payload, int len);
/* The root publishes a node's message on <prefix>/<device_id>/<kind> (QoS 1); the msg id, or -1. */
int mqtt_link_publish_as(const char *device_id, const char *kind, const char *text, bool retain);
