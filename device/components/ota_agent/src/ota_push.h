/*
 * `push`: an image through the broker (docs/protocol.md). The pusher publishes the image in chunks on
 * <prefix>/<id>/push/<transfer>/<offset>; the device writes only the chunk at the offset it expects
 * (esp_ota_write is sequential) and acknowledges on <prefix>/<id>/push_ack with the next offset it
 * wants, so a lost, duplicated or reordered chunk is recovered by the pusher going back to `next`.
 *
 * Chunks arrive on the MQTT client's task, which must not write flash (it would stall the link and
 * every PUBACK behind it): mqtt_link hands each assembled chunk to the handler registered here, which
 * queues it for the update task if it is the next in order (any other is noted, for one answer), where
 * ota_push_receive() runs the transfer as any other update.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"
#include "ota_image.h"
#include "ota_request.h"

/* Creates the chunk queue and registers with mqtt_link; before mqtt_link_start(). */
esp_err_t ota_push_init(void);

/* Acknowledge where the transfer is at the update task's next poll (a transfer not receiving yet sends its first
   one anyway): after the link reconnected (registered with mqtt_link), or when the running push's command came
   again from a pusher that missed its answer (ota_updater.c). */
void ota_push_ack_again(void);

/* Runs a push request on the update task: acknowledgements, chunks, deadlines, cancel, then the
   image's checks and the switch (ota_image.c). Same contract as ota_download_and_switch(). */
ota_outcome_t ota_push_receive(const ota_request_t *req, bool (*cancelled)(void));
