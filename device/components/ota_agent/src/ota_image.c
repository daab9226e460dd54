#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "sdkconfig.h"
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
#include "esp_efuse.h"
#endif
#if CONFIG_SECURE_SIGNED_ON_UPDATE
#include "esp_image_format.h"
#include "esp_secure_boot.h"
#endif
#include "ota_events.h"
#include "ota_image.h"
#include "ota_record.h"

static const char *TAG = "ota_image";

bool ota_outcome_fail(ota_outcome_t *out, const char *state, ota_reason_t reason, const char *detail)
{
    out->state = state;
    out->reason = reason;
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
    return false;
}

bool ota_image_init(ota_image_t *image, const ota_request_t *req, int64_t total, ota_outcome_t *out)
{
    memset(image, 0, sizeof(*image));
    image->req = req;
    image->total = total;
    image->image_end = -1;
    mbedtls_sha256_init(&image->sha);
    mbedtls_sha256_starts(&image->sha, 0);
    image->target = esp_ota_get_next_update_partition(NULL);
    if (image->target == NULL) {
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, "no OTA slot to write");
    }
    snprintf(out->target_label, sizeof(out->target_label), "%s", image->target->label);
    return true;
}

void ota_image_restart(ota_image_t *image)
{
    if (image->ota_open) {
        esp_ota_abort(image->ota);
        image->ota_open = false;
    }
    image->received = 0;
    image->slot_opened = false;
    image->segments_left = 0;
    image->segment_header_len = 0;
    image->image_end = -1;
    mbedtls_sha256_free(&image->sha);
    mbedtls_sha256_init(&image->sha);
    mbedtls_sha256_starts(&image->sha, 0);
}

/* The app descriptor of the head, copied out: head is a byte buffer with no alignment guarantee
   (Xtensa faults on unaligned 32-bit loads), and version[] need not be NUL-terminated. */
static void head_app_desc(const ota_image_t *image, esp_app_desc_t *desc, char version_out[OTA_APP_VERSION_STR_LEN])
{
    memcpy(desc, image->head + sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t), sizeof(*desc));
    memcpy(version_out, desc->version, sizeof(desc->version));
    version_out[sizeof(desc->version)] = '\0';
}

/* Walks the segment headers within len bytes at image offset `offset` (every byte passes here once, in
   order): each one moves the image's known end on by its data_len. Segments that end past the slot are
   too_large as soon as their header is seen (rejected while nothing is erased yet, failed after). */
static bool walk_segments(ota_image_t *image, const uint8_t *data, size_t len, int64_t offset, ota_outcome_t *out)
{
    int64_t end = offset + (int64_t)len;
    while (image->segments_left > 0) {
        int64_t at = image->next_segment + (int64_t)image->segment_header_len;
        if (at >= end) {
            return true;
        }
        if (at < offset) { /* not reached: bytes come in order */
            image->segments_left = 0;
            return true;
        }
        size_t take = sizeof(image->segment_header) - image->segment_header_len;
        take = (int64_t)take < end - at ? take : (size_t)(end - at);
        memcpy(image->segment_header + image->segment_header_len, data + (at - offset), take);
        image->segment_header_len += take;
        if (image->segment_header_len < sizeof(image->segment_header)) {
            return true;
        }
        esp_image_segment_header_t segment;
        memcpy(&segment, image->segment_header, sizeof(segment));
        image->segment_header_len = 0;
        image->segments_left--;
        image->next_segment += (int64_t)sizeof(segment) + segment.data_len;
        int64_t known_end = image->next_segment;
        if (image->segments_left == 0) {
            esp_image_header_t header;
            memcpy(&header, image->head, sizeof(header));
            /* the checksum byte ends a 16-byte block, the SHA-256 (if appended) follows it */
            image->image_end = (image->next_segment | 15) + 1 + (header.hash_appended == 1 ? 32 : 0);
            known_end = image->image_end;
        }
        if (known_end > (int64_t)image->target->size) {
            char detail[96];
            snprintf(detail, sizeof(detail), "image declares %" PRId64 "+ bytes, more than %s holds (%" PRIu32 ")",
                     known_end, image->target->label, image->target->size);
            ESP_LOGW(TAG, "%s", detail);
            return ota_outcome_fail(out, image->ota_open ? "failed" : "rejected", OTA_REASON_TOO_LARGE, detail);
        }
    }
    return true;
}

/* Checks the head (first OTA_IMAGE_HEAD_LEN bytes) before anything is erased, then opens the slot. */
static bool check_head(ota_image_t *image, ota_outcome_t *out)
{
    esp_image_header_t header;
    memcpy(&header, image->head, sizeof(header));
    esp_app_desc_t desc;
    char version[OTA_APP_VERSION_STR_LEN];
    head_app_desc(image, &desc, version);
    char detail[96];
    if (header.magic != ESP_IMAGE_HEADER_MAGIC) {
        snprintf(detail, sizeof(detail), "invalid magic byte 0x%02x (expected 0xE9)", header.magic);
        return ota_outcome_fail(out, "failed", OTA_REASON_INVALID_IMAGE, detail);
    }
    if (header.chip_id != CONFIG_IDF_FIRMWARE_CHIP_ID) {
        snprintf(detail, sizeof(detail), "Mismatch chip id, expected %d, found %d",
                 CONFIG_IDF_FIRMWARE_CHIP_ID, (int)header.chip_id);
        return ota_outcome_fail(out, "failed", OTA_REASON_WRONG_CHIP, detail);
    }
    if (desc.magic_word != ESP_APP_DESC_MAGIC_WORD) {
        return ota_outcome_fail(out, "failed", OTA_REASON_INVALID_IMAGE, "Incorrect app descriptor magic");
    }
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    /* Whatever `force` says: the bootloader would never boot it (and esp_ota_set_boot_partition() would
       refuse it after the download), so nothing is erased for it. */
    if (!esp_efuse_check_secure_version(desc.secure_version)) {
        snprintf(detail, sizeof(detail), "secure_version %" PRIu32 " is below the eFuse's %" PRIu32,
                 desc.secure_version, esp_efuse_read_secure_version());
        return ota_outcome_fail(out, "rejected", OTA_REASON_SECURE_VERSION, detail);
    }
#endif
    const char *running = esp_app_get_description()->version;
    int order = ota_version_compare(version, running);
    if (!image->req->force && order == 0) {
        snprintf(detail, sizeof(detail), "image version %.31s is the running version", version);
        return ota_outcome_fail(out, "rejected", OTA_REASON_SAME_VERSION, detail);
    }
    if (!image->req->force && order < 0) {
        snprintf(detail, sizeof(detail), "image version %.31s is older than %.31s", version, running);
        return ota_outcome_fail(out, "rejected", OTA_REASON_DOWNGRADE, detail);
    }
    if (image->total > (int64_t)image->target->size) {
        snprintf(detail, sizeof(detail), "image of %" PRId64 " bytes does not fit %s (%" PRIu32 " bytes)",
                 image->total, image->target->label, image->target->size);
        return ota_outcome_fail(out, "rejected", OTA_REASON_TOO_LARGE, detail);
    }
    image->segments_left = header.segment_count <= ESP_IMAGE_MAX_SEGMENTS ? header.segment_count : 0;
    image->next_segment = (int64_t)sizeof(esp_image_header_t);
    if (!walk_segments(image, image->head, OTA_IMAGE_HEAD_LEN, 0, out)) {
        return false;
    }
    /* in order: erased as it is written; in any order: erased for the whole image now */
    size_t erase = image->at_offsets ? (size_t)image->total : OTA_WITH_SEQUENTIAL_WRITES;
    esp_err_t err = esp_ota_begin(image->target, erase, &image->ota);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_begin failed: %s", esp_err_to_name(err));
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
    }
    image->ota_open = true;
    image->slot_opened = true;
    if (image->at_offsets) {
        return true; /* ota_image_write_at() writes the head with the rest of its piece */
    }
    err = esp_ota_write(image->ota, image->head, OTA_IMAGE_HEAD_LEN);
    return err == ESP_OK || ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
}

bool ota_image_write(ota_image_t *image, const uint8_t *data, size_t len, ota_outcome_t *out)
{
    mbedtls_sha256_update(&image->sha, data, len);
    if (image->received + (int64_t)len > (int64_t)image->target->size) {
        return ota_outcome_fail(out, "failed", OTA_REASON_TOO_LARGE, "image is larger than the OTA slot");
    }
    size_t used = 0;
    if (image->received < (int64_t)OTA_IMAGE_HEAD_LEN) {
        used = OTA_IMAGE_HEAD_LEN - (size_t)image->received;
        used = used < len ? used : len;
        memcpy(image->head + image->received, data, used);
        image->received += (int64_t)used;
        if (image->received == (int64_t)OTA_IMAGE_HEAD_LEN && !check_head(image, out)) {
            return false;
        }
    }
    if (used < len) {
        if (!walk_segments(image, data + used, len - used, image->received, out)) {
            return false;
        }
        if (image->bounded && image->image_end >= 0 && image->received + (int64_t)(len - used) > image->image_end) {
            char detail[96];
            snprintf(detail, sizeof(detail), "stream inflates past the image's end (%" PRId64 " bytes)", image->image_end);
            return ota_outcome_fail(out, "failed", OTA_REASON_TOO_LARGE, detail);
        }
        esp_err_t err = esp_ota_write(image->ota, data + used, len - used);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_ota_write failed: %s", esp_err_to_name(err));
            return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
        }
        image->received += (int64_t)(len - used);
    }
    return true;
}

bool ota_image_init_at_offsets(ota_image_t *image, const ota_request_t *req, int64_t total, ota_outcome_t *out)
{
    if (!ota_image_init(image, req, total, out)) {
        return false;
    }
    image->at_offsets = true;
    if (total < (int64_t)OTA_IMAGE_HEAD_LEN) {
        return ota_outcome_fail(out, "failed", OTA_REASON_INVALID_IMAGE, "image shorter than its header and app descriptor");
    }
    return true;
}

/* One piece where it belongs. With flash encryption esp_ota_write_with_offset() takes only multiples of 16
   bytes: a piece that is not (the image's last) is padded with 0xFF, erased flash's value (esp_ota_begin()
   erased the slot up to a sector boundary past the image). */
static esp_err_t write_piece(ota_image_t *image, int64_t offset, const uint8_t *data, size_t len)
{
    size_t padded = (len + 15) & ~(size_t)15;
    if (padded == len) {
        return esp_ota_write_with_offset(image->ota, data, len, (uint32_t)offset);
    }
    uint8_t *copy = malloc(padded);
    if (copy == NULL) {
        return ESP_ERR_NO_MEM;
    }
    memcpy(copy, data, len);
    memset(copy + len, 0xff, padded - len);
    esp_err_t err = esp_ota_write_with_offset(image->ota, copy, padded, (uint32_t)offset);
    free(copy);
    return err;
}

bool ota_image_write_at(ota_image_t *image, int64_t offset, const uint8_t *data, size_t len, ota_outcome_t *out)
{
    if (offset < 0 || offset + (int64_t)len > image->total) {
        return ota_outcome_fail(out, "failed", OTA_REASON_SIZE_MISMATCH, "a piece past the image's size");
    }
    if (!image->ota_open) {
        if (offset != 0 || len < OTA_IMAGE_HEAD_LEN) {
            return ota_outcome_fail(out, "failed", OTA_REASON_INVALID_IMAGE, "the image's head did not come first");
        }
        memcpy(image->head, data, OTA_IMAGE_HEAD_LEN);
        if (!check_head(image, out)) {
            return false;
        }
    }
    esp_err_t err = write_piece(image, offset, data, len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_write_with_offset at %" PRId64 " failed: %s", offset, esp_err_to_name(err));
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
    }
    return true;
}

/* The slot's first `total` bytes, in order: into the SHA-256 and, past the head, the segment walk. */
static bool read_back(ota_image_t *image, ota_outcome_t *out)
{
    const size_t step = 1024;
    uint8_t *buf = malloc(step);
    if (buf == NULL) {
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, "no memory to read the image back");
    }
    bool ok = true;
    for (int64_t at = 0; ok && at < image->total; at += (int64_t)step) {
        size_t len = image->total - at < (int64_t)step ? (size_t)(image->total - at) : step;
        esp_err_t err = esp_partition_read(image->target, (size_t)at, buf, len);
        if (err != ESP_OK) {
            ok = ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
            break;
        }
        mbedtls_sha256_update(&image->sha, buf, len);
        size_t skip = at < (int64_t)OTA_IMAGE_HEAD_LEN ? (size_t)((int64_t)OTA_IMAGE_HEAD_LEN - at) : 0;
        if (skip < len) {
            ok = walk_segments(image, buf + skip, len - skip, at + (int64_t)skip, out);
        }
    }
    free(buf);
    return ok;
}

bool ota_image_finish_written(ota_image_t *image, ota_outcome_t *out)
{
    if (image->ota_open) {
        if (!read_back(image, out)) {
            return false;
        }
        image->received = image->total;
    }
    return ota_image_finish(image, out);
}

/* Persists the request before the switch, so whichever firmware boots next can name it. */
static bool switch_boot(ota_image_t *image, ota_outcome_t *out)
{
    ota_pending_t pending = {.stage = OTA_RECORD_REBOOTING};
    snprintf(pending.id, sizeof(pending.id), "%s", image->req->id);
    esp_app_desc_t desc;
    char version[OTA_APP_VERSION_STR_LEN];
    head_app_desc(image, &desc, version);
    snprintf(pending.version, sizeof(pending.version), "%.31s", version);
    snprintf(pending.target, sizeof(pending.target), "%s", image->target->label);
    snprintf(pending.previous, sizeof(pending.previous), "%s", esp_ota_get_running_partition()->label);
    esp_err_t err = ota_record_save_pending(&pending);
    if (err == ESP_OK) {
        err = esp_ota_set_boot_partition(image->target);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_set_boot_partition failed: %s", esp_err_to_name(err));
        ota_record_clear_pending();
        return ota_outcome_fail(out, "failed", err == ESP_ERR_OTA_SMALL_SEC_VER ? OTA_REASON_SECURE_VERSION : OTA_REASON_FLASH_ERROR,
                                esp_err_to_name(err));
    }
    return true;
}

/* Why esp_ota_end() refused the image (ESP_ERR_OTA_VALIDATE_FAILED covers both): with signed apps, an
   image whose layout reads but whose signature esp_secure_boot_verify_signature() does not accept (no
   signature, a key the running app does not carry, a block or an image changed after signing, or a
   running app with no signature of its own) is invalid_signature; anything else is invalid_image. */
static ota_reason_t validation_failure(const esp_partition_t *target)
{
#if CONFIG_SECURE_SIGNED_ON_UPDATE
    esp_image_metadata_t meta;
    const esp_partition_pos_t pos = {.offset = target->address, .size = target->size};
    if (esp_image_get_metadata(&pos, &meta) == ESP_OK &&
        esp_secure_boot_verify_signature(target->address, meta.image_len) != ESP_OK) {
        return OTA_REASON_INVALID_SIGNATURE;
    }
#endif
    (void)target;
    return OTA_REASON_INVALID_IMAGE;
}

bool ota_image_finish(ota_image_t *image, ota_outcome_t *out)
{
    const ota_request_t *req = image->req;
    uint8_t digest[32];
    mbedtls_sha256_finish(&image->sha, digest);
    if (image->received < (int64_t)OTA_IMAGE_HEAD_LEN) {
        /* check_head() never ran, so esp_ota_begin() was not called: no handle to abort */
        return ota_outcome_fail(out, "failed", OTA_REASON_INVALID_IMAGE, "image shorter than its header and app descriptor");
    }
    if (req->size >= 0 && image->received != req->size) {
        return ota_outcome_fail(out, "failed", OTA_REASON_SIZE_MISMATCH, "downloaded size differs from the command's size");
    }
    if (req->has_sha256 && memcmp(digest, req->sha256, sizeof(digest)) != 0) {
        return ota_outcome_fail(out, "failed", OTA_REASON_SHA256_MISMATCH, "SHA-256 of the download differs from the command's");
    }
    ota_event_send(ota_event_new(req->id, "verifying"));
    esp_ota_handle_t ota = image->ota;
    image->ota_open = false; /* esp_ota_end() frees the handle whatever it returns */
    esp_err_t err = esp_ota_end(ota);
    if (err == ESP_ERR_OTA_VALIDATE_FAILED) {
        ota_reason_t reason = validation_failure(image->target);
        ESP_LOGE(TAG, "Image validation failed, %s (%s)",
                 reason == OTA_REASON_INVALID_SIGNATURE ? "signature not accepted" : "image is corrupted",
                 esp_err_to_name(err));
        return ota_outcome_fail(out, "failed", reason, esp_err_to_name(err));
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_end failed (%s)", esp_err_to_name(err));
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
    }
    out->image_len = image->received;
    return switch_boot(image, out);
}

void ota_image_free(ota_image_t *image)
{
    if (image->ota_open) {
        esp_ota_abort(image->ota);
        image->ota_open = false;
    }
    mbedtls_sha256_free(&image->sha);
}
