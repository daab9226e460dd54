/*
 * A compressed download, inflated into the slot as it arrives (docs/protocol.md, "Compressed images").
 *
 * The first bytes of the body say what it is: 0x1f 0x8b is gzip (RFC 1952), a zlib header (RFC 1950:
 * CM 8, CINFO <= 7, the check bits, no preset dictionary) is zlib, anything else (an app image starts
 * with 0xE9) goes to ota_image.c as it is. The inflated bytes go to ota_image_write() as any carrier's
 * do: the head checks, the segment-header bound against the slot, the SHA-256 and esp_ota_end all see
 * the decompressed image. The stream's own checks (gzip's CRC-32 and length, zlib's Adler-32, its end
 * and nothing after it) fail as corrupt_stream.
 *
 * Every byte given is consumed (or the stream refused), and the decompressor's state lives here between
 * calls, so a download that drops can go on with Range from the compressed offset.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ota_image.h"

typedef enum {
    OTA_ENCODING_UNKNOWN = 0, /* no byte seen yet (or a magic byte waiting for the next one) */
    OTA_ENCODING_NONE,        /* a plain image */
    OTA_ENCODING_GZIP,
    OTA_ENCODING_ZLIB,
} ota_encoding_t;

struct ota_inflater; /* the decompressor and its window, allocated only for a compressed stream */

typedef struct {
    ota_encoding_t encoding;
    uint8_t magic[2];          /* the first bytes while the encoding is not yet known */
    size_t magic_len;
    int stage;                 /* where in the stream (ota_inflate.c) */
    uint8_t gzip_flags;        /* FLG of the gzip header */
    uint32_t field_left;       /* bytes of a gzip header field still to skip */
    uint8_t buf[10];           /* the gzip header, then its trailer (CRC-32, ISIZE) */
    size_t buf_len;
    uint32_t crc;              /* CRC-32 of the inflated bytes (gzip) */
    int64_t inflated;          /* bytes out of the decompressor */
    struct ota_inflater *inflater;
} ota_inflate_t;

/* Starts a stream of unknown encoding; nothing is allocated until it turns out to be compressed. */
void ota_inflate_init(ota_inflate_t *stream);
/* Takes the next len bytes of the download (all of them) into image: as they are for a plain image, inflated
   for a compressed one. On detection of a compressed stream, image's expected total becomes the command's
   size (the decompressed image's) and the image is bounded by its own end. False with *out set on a refusal. */
bool ota_inflate_write(ota_inflate_t *stream, ota_image_t *image, const uint8_t *data, size_t len, ota_outcome_t *out);
/* True once the stream is known to be gzip or zlib. */
bool ota_inflate_compressed(const ota_inflate_t *stream);
/* "gzip", "zlib" or "none" (also while unknown). */
const char *ota_inflate_encoding_name(const ota_inflate_t *stream);
/* The download ended: a compressed stream must be complete (its end, checksum and length seen). */
bool ota_inflate_finish(ota_inflate_t *stream, ota_image_t *image, ota_outcome_t *out);
/* Frees the decompressor and starts again at byte 0 of the stream. */
void ota_inflate_restart(ota_inflate_t *stream);
/* Frees the decompressor. Safe to call twice. */
void ota_inflate_free(ota_inflate_t *stream);
