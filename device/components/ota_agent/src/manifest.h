/*
 * Manifest mode: with manifest_url set, the device fetches {"version","url","sha256"} some
 * time after start-up and on a `check` command, and updates only when the version is newer.
 */
#pragma once

#include "esp_err.h"

esp_err_t manifest_start(void);
/* Asks for a check now (from the `check` command); answered with OTA events under id "manifest". */
void manifest_request_check(void);
