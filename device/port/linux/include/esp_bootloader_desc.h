/*
 * Host port of esp_bootloader_desc.h (components/esp_bootloader_format/include, v5.5.4): the
 * bootloader description, which esp_https_ota_get_bootloader_img_desc() fills. The virtual board
 * has no second-stage bootloader image in flash, so esp_bootloader_get_description() is not
 * declared.
 */
#pragma once

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include "esp_err.h"

#ifdef __cplusplus
extern "C"
{
#endif

#define ESP_BOOTLOADER_DESC_MAGIC_BYTE (80)  /*!< The magic byte for the esp_bootloader_desc structure that is in DRAM. */

typedef struct {
    uint8_t magic_byte;         /*!< Magic byte ESP_BOOTLOADER_DESC_MAGIC_BYTE */
    uint8_t reserved[2];        /*!< reserved for IDF */
    uint8_t secure_version;     /*!< The version used by bootloader anti-rollback feature */
    uint32_t version;           /*!< Bootloader version */
    char idf_ver[32];           /*!< Version IDF */
    char date_time[24];         /*!< Compile date and time*/
    uint8_t reserved2[16];      /*!< reserved for IDF */
} esp_bootloader_desc_t;

_Static_assert(sizeof(esp_bootloader_desc_t) == 80, "esp_bootloader_desc_t should be 80 bytes");

#ifdef __cplusplus
}
#endif
