/*
 * An image distributed through the mesh (CONFIG_OTA_AGENT_MESH; docs/protocol.md, "Mesh distribution"): the
 * root downloads it once, as its own update, and before it reboots serves it from its new slot:
 *   sequential  to each node in turn, unicast, every chunk acknowledged per hop (MESH_TOS_P2P)
 *   broadcast   every chunk once to all nodes (MESH_TOS_DEF: group frames, not acknowledged); each node NAKs
 *               what it missed, the root broadcasts those again (option 1A)
 *   p2p         to its children; every node that has the image serves its own children (option 1C)
 * A node receives into its passive slot through ota_image.c (the same head checks, SHA-256, esp_ota_end,
 * pending record and switch as a download), tells the root it is done, and reboots once the root says the
 * distribution is over (or at its deadline). Without CONFIG_OTA_AGENT_MESH nothing here runs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "cJSON.h"
#include "esp_err.h"
#include "ota_image.h"
#include "ota_request.h"

/* Bytes of image in every chunk but the last. */
#define MESH_DIST_CHUNK 1024

/* Creates the queues and the child list (before the mesh starts). */
esp_err_t mesh_dist_init(void);
/* From the mesh's receive task: a chunk packet ('C', tag, index, data) and a control message (nak, done, end,
   fin). Both only queue; they never block. */
void mesh_dist_on_chunk(const uint8_t from[6], const uint8_t *data, int len);
void mesh_dist_on_control(const uint8_t from[6], const char *m, const cJSON *msg);
/* A node, on the update task: receives the image req announces into the passive slot and switches to it. */
ota_outcome_t mesh_dist_receive(const ota_request_t *req, bool (*cancelled)(void));
/* After a successful switch, before the reboot: the root serves the image (req->mesh), a p2p node serves its
   children, and both wait for the end of the distribution. Nothing for other requests. */
void mesh_dist_after_switch(const ota_request_t *req, const ota_outcome_t *outcome);
