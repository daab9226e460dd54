/*
 * One packet over ESP-WIFI-MESH (CONFIG_OTA_AGENT_MESH), for mesh_link (commands, status), mesh_outbox (a
 * node's events) and mesh_dist (an image's chunks and their control messages).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"
#include "esp_mesh.h"

/* Sends len bytes to node `to` (its MAC), or to the root when `to` is NULL, as MESH_DATA_P2P. A packet over
   MESH_MPS is not sent (ESP_ERR_INVALID_SIZE, logged). An esp_mesh_send() failure (no parent yet, a full
   queue) is logged at debug level and returned: the callers know whether to retry or to warn. */
esp_err_t mesh_send_packet(const uint8_t *to, const void *data, size_t len, mesh_proto_t proto, mesh_tos_t tos);
