/*
 * The checks of ESP-IDF's esp_image_verify() (bootloader_support/src/esp_image_format.c):
 * header magic, segment count and bounds, XOR checksum, appended SHA-256, chip id. The same
 * rules run in the virtual bootloader (harness/formats/app_image.py); both follow the IDF source.
 */
#include <inttypes.h>
#include <openssl/sha.h>
#include <string.h>
#include "esp_app_format.h"
#include "esp_image_format.h"
#include "esp_log.h"
#include "host_board.h"
#include "host_image.h"
#include "sdkconfig.h"

static const char *TAG = "esp_image";

#define CHECKSUM_SEED 0xEF

/* Logs with the bootloader's wording (unless silent) and fails the verification. */
#define FAIL(silent, ...) do {              \
        if (!(silent)) {                    \
            ESP_LOGE(TAG, __VA_ARGS__);     \
        }                                   \
        return ESP_ERR_IMAGE_INVALID;       \
    } while (0)

esp_err_t host_image_verify(const esp_partition_t *partition, bool silent)
{
    const uint8_t *img = host_flash_data() + partition->address;
    const uint32_t limit = partition->size;
    esp_image_header_t header;
    memcpy(&header, img, sizeof(header));

    if (header.magic != ESP_IMAGE_HEADER_MAGIC) {
        FAIL(silent, "image at 0x%" PRIx32 " has invalid magic byte (nothing flashed here?)",
             partition->address);
    }
    if (header.chip_id != CONFIG_IDF_FIRMWARE_CHIP_ID) {
        FAIL(silent, "mismatch chip ID, expected %d, found %d",
                    CONFIG_IDF_FIRMWARE_CHIP_ID, header.chip_id);
    }
    if (header.segment_count > ESP_IMAGE_MAX_SEGMENTS) {
        FAIL(silent, "image at 0x%" PRIx32 " segment count %u exceeds max %d",
             partition->address, header.segment_count, ESP_IMAGE_MAX_SEGMENTS);
    }

    uint32_t pos = sizeof(header);
    uint8_t checksum = CHECKSUM_SEED;
    for (unsigned i = 0; i < header.segment_count; i++) {
        esp_image_segment_header_t seg;
        if (pos + sizeof(seg) > limit) {
            FAIL(silent, "Segment %u header at 0x%" PRIx32 " out of range", i, pos);
        }
        memcpy(&seg, img + pos, sizeof(seg));
        pos += sizeof(seg);
        if (seg.data_len > limit - pos || seg.data_len % 4 != 0) {
            FAIL(silent, "Segment %u length 0x%" PRIx32 " is invalid", i, seg.data_len);
        }
        for (uint32_t j = 0; j < seg.data_len; j++) {
            checksum ^= img[pos + j];
        }
        pos += seg.data_len;
    }

    /* The checksum byte is the last byte of the 16-byte aligned block after the segments. */
    uint32_t checksum_pos = pos + (15 - (pos % 16));
    if (checksum_pos >= limit) {
        FAIL(silent, "Checksum at 0x%" PRIx32 " out of range", checksum_pos);
    }
    if (img[checksum_pos] != checksum) {
        FAIL(silent, "Checksum failed. Calculated 0x%x read 0x%x",
                    checksum, img[checksum_pos]);
    }
    if (header.hash_appended == 1) {
        uint32_t image_len = checksum_pos + 1;
        if (image_len + SHA256_DIGEST_LENGTH > limit) {
            FAIL(silent, "Image hash at 0x%" PRIx32 " out of range", image_len);
        }
        uint8_t digest[SHA256_DIGEST_LENGTH];
        SHA256(img, image_len, digest);
        if (memcmp(digest, img + image_len, sizeof(digest)) != 0) {
            FAIL(silent, "Image hash failed - image is corrupt");
        }
    }
    return ESP_OK;
}
