/* Host port of esp_efuse.h (components/efuse/include, v5.5.5): the secure version (anti-rollback) API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The secure version in the eFuse field: the number of bits set. */
uint32_t esp_efuse_read_secure_version(void);

/* True if an app of this secure_version may run: it is at least the eFuse's. */
bool esp_efuse_check_secure_version(uint32_t secure_version);

/* Raises the eFuse field to secure_version (ESP_FAIL if it is already higher). Called by
   esp_ota_mark_app_valid_cancel_rollback() and the bootloader, not by applications. */
esp_err_t esp_efuse_update_secure_version(uint32_t secure_version);

#ifdef __cplusplus
}
#endif
