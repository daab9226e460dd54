/*
 * The OTA agent: runs one update at a time in its own task and reports every step as an OTA
 * event. An update never touches the running slot and never reboots on failure: after any
 * failure the device keeps running its current firmware. Commands reach it through the
 * command table (commands.c); the manifest (manifest.c) submits its updates here too.
 */
#pragma once

#include "cJSON.h"
#include "esp_err.h"
#include "ota_reason.h"
#include "ota_request.h"

esp_err_t ota_updater_start(void);
/* Queues an update (from a command or the manifest); rejects it when one is running. */
void ota_updater_submit(const ota_request_t *req);

/* Command handlers (commands.c's table), called on the link's command task with the parsed
   command object. */
/* "ota" / "ota_trigger": parses the request and submits it, or rejects it as bad_command. */
void ota_updater_handle_ota(const cJSON *command);
/* "push": parses the transfer and submits it (the image then comes in chunks, ota_push.c). */
void ota_updater_handle_push(const cJSON *command);
/* `mesh_ota`: a mesh root announces an image it distributes through the mesh (mesh_dist.c). */
void ota_updater_handle_mesh_rx(const cJSON *command);
/* "cancel": stops the running update (the one named by "id", if given). */
void ota_updater_handle_cancel(const cJSON *command);
/* "reboot": restarts the device, or rejects it as busy while an update runs. */
void ota_updater_handle_reboot(const cJSON *command);

/* Logs and sends a `rejected` event for request id with a reason and a detail. */
void ota_updater_reject(const char *id, ota_reason_t reason, const char *detail);
