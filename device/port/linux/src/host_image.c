/*
 * The checks of ESP-IDF's esp_image_verify() (bootloader_support/src/esp_image_format.c, v5.5.5) in an
 * app build: header magic, segment count and bounds, XOR checksum, chip id, then either the appended
 * SHA-256 or, with CONFIG_SECURE_SIGNED_ON_UPDATE, the Secure Boot V2 signature (verify_secure_boot_signature:
 * the SHA-256 of the image, its hash and its 0xFF padding up to the 4 KB boundary, checked against the
 * signature sector there by esp_secure_boot_verify_sbv2_signature_block(), src/esp_secure_boot.c). As in
 * ESP-IDF, the simple hash is then only looked at after a failed signature, to say which of the two is bad.
 * The same structural rules run in the virtual bootloader (harness/formats/app_image.py).
 *
 * Known differences from the chip: the image is read from the mapped flash file in one piece (no MMU
 * pages, no 64 KB mapping limit); the MMU page alignment of mapped segments is not checked.
 */
#include <inttypes.h>
#include <openssl/sha.h>
#include <string.h>
#include "esp_app_format.h"
#include "esp_image_format.h"
#include "esp_log.h"
#include "esp_secure_boot.h"
#include "host_board.h"
#include "host_image.h"
#include "sdkconfig.h"

static const char *TAG = "esp_image";

#define CHECKSUM_SEED 0xEF
#define FLASH_SECTOR_SIZE 0x1000
#define ALIGN_UP(num, align) (((num) + ((align) - 1)) & ~((align) - 1))

/* Logs with the bootloader's wording (unless silent) and fails the verification. */
#define FAIL(silent, ...) do {              \
        if (!(silent)) {                    \
            ESP_LOGE(TAG, __VA_ARGS__);     \
        }                                   \
        return ESP_ERR_IMAGE_INVALID;       \
    } while (0)

/* The layout: header, segments, checksum position and the length up to the end of the hash. */
static esp_err_t walk_image(const esp_partition_t *partition, bool silent, esp_image_metadata_t *meta,
                            uint32_t *checksum_pos, uint8_t *checksum)
{
    const uint8_t *img = host_flash_data() + partition->address;
    const uint32_t limit = partition->size;
    memset(meta, 0, sizeof(*meta));
    meta->start_addr = partition->address;
    memcpy(&meta->image, img, sizeof(meta->image));
    const esp_image_header_t *header = &meta->image;

    if (header->magic != ESP_IMAGE_HEADER_MAGIC) {
        FAIL(silent, "image at 0x%" PRIx32 " has invalid magic byte (nothing flashed here?)", partition->address);
    }
    if (header->chip_id != CONFIG_IDF_FIRMWARE_CHIP_ID) {
        FAIL(silent, "mismatch chip ID, expected %d, found %d", CONFIG_IDF_FIRMWARE_CHIP_ID, header->chip_id);
    }
    if (header->segment_count > ESP_IMAGE_MAX_SEGMENTS) {
        FAIL(silent, "image at 0x%" PRIx32 " segment count %u exceeds max %d",
             partition->address, header->segment_count, ESP_IMAGE_MAX_SEGMENTS);
    }
    uint32_t pos = sizeof(*header);
    uint8_t sum = CHECKSUM_SEED;
    for (unsigned i = 0; i < header->segment_count; i++) {
        esp_image_segment_header_t seg;
        if (pos + sizeof(seg) > limit) {
            FAIL(silent, "Segment %u header at 0x%" PRIx32 " out of range", i, pos);
        }
        memcpy(&seg, img + pos, sizeof(seg));
        pos += sizeof(seg);
        if (seg.data_len > limit - pos || seg.data_len % 4 != 0) {
            FAIL(silent, "Segment %u length 0x%" PRIx32 " is invalid", i, seg.data_len);
        }
        meta->segments[i] = seg;
        meta->segment_data[i] = partition->address + pos;
        for (uint32_t j = 0; j < seg.data_len; j++) {
            sum ^= img[pos + j];
        }
        pos += seg.data_len;
    }
    /* The checksum byte is the last byte of the 16-byte aligned block after the segments. */
    *checksum_pos = pos + (15 - (pos % 16));
    *checksum = sum;
    if (*checksum_pos >= limit) {
        FAIL(silent, "Checksum at 0x%" PRIx32 " out of range", *checksum_pos);
    }
    meta->image_len = *checksum_pos + 1;
    if (header->hash_appended == 1) {
        if (meta->image_len + ESP_IMAGE_HASH_LEN > limit) {
            FAIL(silent, "Image hash at 0x%" PRIx32 " out of range", meta->image_len);
        }
        memcpy(meta->image_digest, img + meta->image_len, ESP_IMAGE_HASH_LEN);
        meta->image_len += ESP_IMAGE_HASH_LEN;
    }
    uint32_t full_len = meta->image_len;
#if CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT
    /* process_appended_hash_and_sig(): the signature sector at the next 4 KB boundary must fit too. */
    full_len = ALIGN_UP(meta->image_len, FLASH_SECTOR_SIZE) + (uint32_t)sizeof(ets_secure_boot_signature_t);
#endif
    if (full_len > limit) {
        FAIL(silent, "Image length %" PRIu32 " doesn't fit in partition length %" PRIu32, full_len, limit);
    }
    return ESP_OK;
}

esp_err_t esp_image_get_metadata(const esp_partition_pos_t *part, esp_image_metadata_t *metadata)
{
    if (metadata == NULL || part == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    const esp_partition_t partition = {.address = part->offset, .size = part->size};
    uint32_t checksum_pos;
    uint8_t checksum;
    return walk_image(&partition, true, metadata, &checksum_pos, &checksum);
}

static bool simple_hash_ok(const uint8_t *img, const esp_image_metadata_t *meta)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(img, meta->image_len - ESP_IMAGE_HASH_LEN, digest);
    return memcmp(digest, meta->image_digest, sizeof(digest)) == 0;
}

esp_err_t host_image_verify(const esp_partition_t *partition, bool silent)
{
    const uint8_t *img = host_flash_data() + partition->address;
    esp_image_metadata_t meta;
    uint32_t checksum_pos;
    uint8_t checksum;
    esp_err_t err = walk_image(partition, silent, &meta, &checksum_pos, &checksum);
    if (err != ESP_OK) {
        return err;
    }
    if (img[checksum_pos] != checksum) {
        FAIL(silent, "Checksum failed. Calculated 0x%x read 0x%x", checksum, img[checksum_pos]);
    }
#if CONFIG_SECURE_SIGNED_ON_UPDATE
    /* verify_secure_boot_signature(): logged whatever the mode, as in ESP-IDF. */
    ESP_LOGI(TAG, "Verifying image signature...");
    /* The SHA-256 of the image, its hash and the padding up to the 4 KB boundary, where the signature
       sector starts (walk_image() checked that it fits in the partition). */
    const uint32_t padded_end = ALIGN_UP(meta.image_len, FLASH_SECTOR_SIZE);
    uint8_t image_digest[ESP_SECURE_BOOT_DIGEST_LEN];
    SHA256(img, padded_end, image_digest);
    const ets_secure_boot_signature_t *sig_block = (const ets_secure_boot_signature_t *)(img + padded_end);
    if (esp_secure_boot_verify_sbv2_signature_block(sig_block, image_digest, NULL) != ESP_OK) {
        ESP_LOGE(TAG, "Secure boot signature verification failed");
        ESP_LOGI(TAG, "Calculating simple hash to check for corruption...");
        if (meta.image.hash_appended == 1 && !simple_hash_ok(img, &meta)) {
            ESP_LOGE(TAG, "Image hash failed - image is corrupt");
            ESP_LOGW(TAG, "image corrupted on flash");
        } else {
            ESP_LOGW(TAG, "image valid, signature bad");
        }
        return ESP_ERR_IMAGE_INVALID;
    }
#else
    if (meta.image.hash_appended == 1 && !simple_hash_ok(img, &meta)) {
        FAIL(silent, "Image hash failed - image is corrupt");
    }
#endif
    return ESP_OK;
}
