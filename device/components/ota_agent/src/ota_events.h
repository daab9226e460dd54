/*
 * OTA events on <prefix>/<id>/ota, as the protocol contract (docs/protocol.md) defines them:
 * every event carries the request id, a per-boot increasing seq and a state; failures carry
 * a machine-readable reason.
 */
#pragma once

#include <stdint.h>
#include "cJSON.h"
#include "esp_err.h"
#include "ota_reason.h"

/* Before the first event. */
esp_err_t ota_events_init(void);

/* Starts an event object {id, seq, state}; add fields, then ota_event_send(). */
cJSON *ota_event_new(const char *request_id, const char *state);
/* Publishes and deletes the event; what the link answered: a message id, or -1 when it did not take it. */
int ota_event_send(cJSON *event);
/* Adds "reason": the reason's protocol name (ota_reason.h). */
void ota_event_add_reason(cJSON *event, ota_reason_t reason);
/* Sends {id, seq, state, reason} (state is failed, rejected, cancelled or rolled_back). */
void ota_event_send_reason(const char *request_id, const char *state, ota_reason_t reason);
