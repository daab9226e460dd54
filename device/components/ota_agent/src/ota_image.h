/*
 * Writing one image into the passive OTA slot, whatever carries it (ota_download.c over HTTP,
 * ota_push.c over MQTT): the image head is held back until it can be checked (magic, chip id,
 * app descriptor, version policy, size against the slot) so that nothing is erased for an image
 * that would be refused; then esp_ota_begin/write, a running SHA-256, and at the end the size and
 * hash checks, esp_ota_end's verification, the pending record and the switch of the boot partition.
 *
 * As the bytes pass, the segment headers are walked (esp_image_header_t.segment_count of them, each
 * followed by its data_len bytes), so an image whose segments end past the slot is refused as
 * too_large when that header arrives, not when the slot is full; once the last one is seen the image's
 * end is known (checksum padding, appended SHA-256). A bounded image (a compressed stream, ota_inflate.c)
 * may not write past that end either: its output has no other limit than the slot.
 *
 * An image whose pieces come in any order (a mesh broadcast, mesh_dist.c) has a known size: begun with
 * ota_image_init_at_offsets(), its head comes first and is checked as above, the slot is erased for that size
 * (esp_ota_begin with the size: esp_ota_write_with_offset needs it erased) and every piece is written where it
 * belongs; at the end ota_image_finish_written() reads the slot back in order for the SHA-256 and the segment
 * walk, then finishes as any image (size, hash, esp_ota_end, pending record, switch).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_app_format.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "mbedtls/sha256.h"
#include "ota_reason.h"
#include "ota_request.h"

/* Header, first segment header and app descriptor: all the version and chip checks need. */
#define OTA_IMAGE_HEAD_LEN (sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t) + sizeof(esp_app_desc_t))
/* esp_app_desc_t.version as a C string (the field itself need not be NUL-terminated). */
#define OTA_APP_VERSION_STR_LEN (sizeof(((esp_app_desc_t *)0)->version) + 1)

typedef struct {
    ota_reason_t reason;    /* OTA_REASON_NONE on success, else why it failed */
    const char *state;      /* "failed" or "rejected" when reason is set */
    int http_status;        /* for reason http_status */
    char detail[96];        /* a human-readable explanation */
    char target_label[17];  /* the slot written */
    bool compressed;        /* a compressed download: the events also say `written` */
    int64_t written;        /* decompressed bytes written to the slot, when compressed */
    int64_t image_len;      /* on success: the image's length in the slot (what a mesh root serves) */
} ota_outcome_t;

typedef struct {
    const ota_request_t *req;
    const esp_partition_t *target;
    int64_t total;          /* full image size, -1 while unknown; the carrier may set it once known */
    int64_t received;       /* image bytes accepted so far */
    esp_ota_handle_t ota;
    bool ota_open;          /* esp_ota_begin() ran: the slot is being written */
    bool slot_opened;       /* esp_ota_begin() ran for this image (stays true after esp_ota_end) */
    mbedtls_sha256_context sha;
    uint8_t head[OTA_IMAGE_HEAD_LEN];
    bool bounded;           /* refuse bytes past image_end (a compressed stream) */
    int segments_left;      /* segment headers still to walk; 0 before the head is checked */
    int64_t next_segment;   /* image offset of the next segment header */
    uint8_t segment_header[sizeof(esp_image_segment_header_t)];
    size_t segment_header_len;
    int64_t image_end;      /* the image's length by its headers, -1 until the last segment header */
    bool at_offsets;        /* pieces in any order (ota_image_init_at_offsets) */
} ota_image_t;

/* Sets out's state, reason and detail; returns false (for `return ota_outcome_fail(...)`). */
bool ota_outcome_fail(ota_outcome_t *out, const char *state, ota_reason_t reason, const char *detail);

/* Starts an image for req into the passive slot (target NULL: there is none, *out says so). */
bool ota_image_init(ota_image_t *image, const ota_request_t *req, int64_t total, ota_outcome_t *out);
/* Starts an image of `total` bytes (known) whose pieces come in any order, the head first. */
bool ota_image_init_at_offsets(ota_image_t *image, const ota_request_t *req, int64_t total, ota_outcome_t *out);
/* Takes len bytes at image offset `offset` (each byte once; offset 0 with at least OTA_IMAGE_HEAD_LEN bytes
   first). False with *out set when the image is refused or a write failed. */
bool ota_image_write_at(ota_image_t *image, int64_t offset, const uint8_t *data, size_t len, ota_outcome_t *out);
/* Every byte of an image begun with ota_image_init_at_offsets() is written: reads the slot back for the
   SHA-256 and the segment checks, then ota_image_finish(). */
bool ota_image_finish_written(ota_image_t *image, ota_outcome_t *out);
/* Drops what was written (esp_ota_abort) and starts again from byte 0. */
void ota_image_restart(ota_image_t *image);
/* Takes the next len bytes of the image. False with *out set when the image is refused or a write
   failed; the caller then calls ota_image_free(). */
bool ota_image_write(ota_image_t *image, const uint8_t *data, size_t len, ota_outcome_t *out);
/* The image is complete: size, SHA-256 (req's), `verifying`, esp_ota_end, the pending record and
   the switch of the boot partition. False with *out set when any of them refused it. */
bool ota_image_finish(ota_image_t *image, ota_outcome_t *out);
/* Aborts an unfinished write and frees the hash. Safe after ota_image_finish(). */
void ota_image_free(ota_image_t *image);
