/*
 * A mesh node's messages for the broker (its OTA events and status; docs/protocol.md, "Mesh"), kept until
 * the broker has them. A node only has the root to publish through, and it may have no parent (booting,
 * healing, out of range: esp_mesh_send() fails with ESP_ERR_MESH_DISCONNECTED before
 * MESH_EVENT_PARENT_CONNECTED) or a root on its way out (it reboots into its own update a moment after its
 * nodes): a packet the root took over the air is not yet at the broker.
 *
 * So a node queues each message (in order, at most MESH_OUTBOX_LEN; when full the oldest goes, with a log
 * line), sends the oldest one to the root while it has a way out, and drops it only when the root says the
 * broker acknowledged it: {"m":"ack","b":boot,"n":n}, sent by the root at the MQTT PUBACK. When the way out
 * comes back (another root) it sends the same message again at once; without an ack for MESH_OUTBOX_ACK_MS it
 * sends it again too, waiting twice as long each time (up to MESH_OUTBOX_ACK_MAX_MS): an ack is late when the
 * root's radio is busy (a distribution), and resending sooner would only load it more.
 * The root publishes a (boot, n) of a node once: a message sent again that it already published is acked,
 * not published twice.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "cJSON.h"

#define MESH_OUTBOX_LEN 16
#define MESH_OUTBOX_ACK_MS 3000
#define MESH_OUTBOX_ACK_MAX_MS 48000

/* Creates the queue and its task; uplink() says whether the node has a way out (a parent and a root that
   reaches the broker). */
bool mesh_outbox_start(bool (*uplink)(void));
/* A node: queues one message for <prefix>/<its id>/<kind>. False if it cannot be kept (no memory). */
bool mesh_outbox_put(const char *kind, const char *text, bool retain);
/* A node that became root and still holds messages: queues this one behind them, so that the broker gets them
   in order. False when it holds none: the caller publishes it itself. */
bool mesh_outbox_put_behind_held(const char *kind, const char *text, bool retain);
/* The node's way out changed (mesh events): sends at once what waits, again to a new root. */
void mesh_outbox_uplink_changed(void);
/* Waits until the broker acknowledged every queued message (before a reboot); false on timeout. */
bool mesh_outbox_flush(int timeout_ms);
/* A node: the root's {"m":"ack"}. */
void mesh_outbox_on_ack(const cJSON *msg);

/* The root: publishes a node's {"m":"pub"} (already checked: dev, kind, text) unless it did already; acks it
   at the PUBACK. Returns false for a message it had published already. */
bool mesh_outbox_root_publish(const uint8_t from[6], const cJSON *msg, const char *dev, const char *kind,
                              const char *text, bool retain);
/* The root: the broker acknowledged msg_id (MQTT_EVENT_PUBLISHED). */
void mesh_outbox_root_published(int msg_id);
