/* Host port of esp_image_format.h (components/bootloader_support/include, v5.5): error codes. */
#pragma once

#include "esp_err.h"

#define ESP_ERR_IMAGE_BASE       0x2000
#define ESP_ERR_IMAGE_FLASH_FAIL (ESP_ERR_IMAGE_BASE + 1)
#define ESP_ERR_IMAGE_INVALID    (ESP_ERR_IMAGE_BASE + 2)
