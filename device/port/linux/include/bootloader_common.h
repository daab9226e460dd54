/*
 * Host port of bootloader_common.h (components/bootloader_support/include, v5.5.4): only the
 * chip revision check, which esp_https_ota (through esp_https_ota.h, as on the chip) uses. The
 * GPIO, otadata and RTC helpers of the real header are not declared: an app calling them fails
 * to build rather than getting a stand-in.
 */
#pragma once

#include <stdbool.h>
#include "esp_flash_partitions.h"
#include "esp_image_format.h"
#include "esp_app_format.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Check if the chip revision meets the image requirements.
 *
 * @param image_header Pointer to the image header containing revision details.
 * @param check_max_revision If true, also checks the maximum chip revision requirements.
 *
 * @return true if the chip revision meets the requirements, false otherwise.
 */
bool bootloader_common_check_chip_revision_validity(const esp_image_header_t *image_header, bool check_max_revision);

#ifdef __cplusplus
}
#endif
