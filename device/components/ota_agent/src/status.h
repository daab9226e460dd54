/* The device status: retained on <prefix>/<id>/status, published at boot, on change and on a heartbeat. */
#pragma once

#include "esp_err.h"
#include "cJSON.h"

/* Builds the status object; the caller deletes it. */
cJSON *status_build(void);
/* Publishes the status now (retained). */
void status_publish(void);
/* Adds a part to every status from now on (the mesh's, mesh_link.c); NULL: none. */
void status_set_extra(void (*add)(cJSON *status));
/* Starts the heartbeat task (period from the configuration; 0 disables it). */
esp_err_t status_start_heartbeat(void);
/* Short names used in status and on the console. */
const char *status_reset_reason_name(void);
const char *status_ota_state_name(void);
