/*
 * An update installed by the application's own installer (ota_agent_callbacks_t.install, e.g. with
 * esp_https_ota) instead of ota_download: the agent keeps the request's record across the reboot,
 * sends the installer's progress, and turns its result into the outcome the protocol reports.
 */
#pragma once

#include <stdbool.h>
#include "ota_download.h"
#include "ota_request.h"

bool app_installer_present(void);
/* Runs the installer for req. On success the new image is set to boot and the request persisted; the
   caller reboots. cancelled() says whether a cancel command came. */
ota_outcome_t app_installer_run(const ota_request_t *req, bool (*cancelled)(void));
