/*
 * ESP-WIFI-MESH for the agent (CONFIG_OTA_AGENT_MESH; docs/protocol.md, "Mesh"): every node runs the agent,
 * only the root talks to the broker. The root relays commands from MQTT to the mesh (broadcast or to one
 * node) and publishes the nodes' messages (OTA events, status) on their own topics, plus an aggregate of all
 * nodes' status on <prefix>/<root id>/mesh. A node hands what it would publish to the root over the mesh.
 * mesh_link plugs into mqtt_link and status through their hooks (mqtt_link_set_mesh, status_set_extra), so
 * neither knows about the mesh. Without CONFIG_OTA_AGENT_MESH both functions are stubs.
 */
#pragma once

#include "esp_err.h"

/* Sets the hooks in mqtt_link and status: call before mqtt_link_start(). */
void mesh_link_attach(void);
/* Brings up Wi-Fi and the mesh (after mqtt_link_start()): the root reaches the router, the others a parent. */
esp_err_t mesh_link_start(void);
