/* Host port of esp_flash_partitions.h (components/bootloader_support/include, v5.5). */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ESP_OTA_IMG_NEW             = 0x0U,
    ESP_OTA_IMG_PENDING_VERIFY  = 0x1U,
    ESP_OTA_IMG_VALID           = 0x2U,
    ESP_OTA_IMG_INVALID         = 0x3U,
    ESP_OTA_IMG_ABORTED         = 0x4U,
    ESP_OTA_IMG_UNDEFINED       = 0xFFFFFFFFU,
} esp_ota_img_states_t;

typedef struct {
    uint32_t ota_seq;
    uint8_t  seq_label[20];
    uint32_t ota_state;
    uint32_t crc;
} esp_ota_select_entry_t;

/* The position of a partition in flash (esp_flash_partitions.h's esp_partition_pos_t). */
typedef struct {
    uint32_t offset;
    uint32_t size;
} esp_partition_pos_t;

#define ESP_PARTITION_TABLE_OFFSET 0x8000
#define ESP_PARTITION_MAGIC 0x50AA
#define ESP_PARTITION_MAGIC_MD5 0xEBEB

#ifdef __cplusplus
}
#endif
