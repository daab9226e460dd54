/* Host port of esp_image_format.h (components/bootloader_support/include, v5.5): error codes, the image
   metadata and esp_image_get_metadata(). */
#pragma once

#include <stdint.h>
#include "esp_app_format.h"
#include "esp_err.h"
#include "esp_flash_partitions.h"

#define ESP_ERR_IMAGE_BASE       0x2000
#define ESP_ERR_IMAGE_FLASH_FAIL (ESP_ERR_IMAGE_BASE + 1)
#define ESP_ERR_IMAGE_INVALID    (ESP_ERR_IMAGE_BASE + 2)

#define ESP_IMAGE_HASH_LEN 32

typedef struct {
    uint32_t start_addr;   /* Start address of image */
    esp_image_header_t image; /* Header for entire image */
    esp_image_segment_header_t segments[ESP_IMAGE_MAX_SEGMENTS]; /* Per-segment header data */
    uint32_t segment_data[ESP_IMAGE_MAX_SEGMENTS]; /* Data offsets for each segment */
    uint32_t image_len; /* Length of image on flash, in bytes (the appended hash included, no signature) */
    uint8_t image_digest[32]; /* appended SHA-256 digest */
    uint32_t secure_version; /* secure version for anti-rollback */
    uint32_t mmu_page_size; /* Flash MMU page size per binary header */
} esp_image_metadata_t;

/* The image's layout without verifying it (no checksum, no hash, no signature), as in ESP-IDF. */
esp_err_t esp_image_get_metadata(const esp_partition_pos_t *part, esp_image_metadata_t *metadata);
