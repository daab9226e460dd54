/*
 * Downloads an image into the inactive OTA slot with esp_http_client and esp_ota_*, checks it
 * and switches the boot partition. The firmware enforces both deadlines itself (overall and
 * no-data), retries network errors and 5xx with backoff, and resumes with HTTP Range.
 */
#pragma once

#include <stdbool.h>
#include "ota_image.h"
#include "ota_reason.h"
#include "ota_request.h"

/* Runs the whole update. On success the boot partition is switched and the pending request is
   persisted; the caller reboots. On failure nothing is switched. */
ota_outcome_t ota_download_and_switch(const ota_request_t *req, bool (*cancelled)(void));
