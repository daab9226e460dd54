/*
 * Streaming decompression of an `ota` download into the slot (ota_inflate.h).
 *
 * The decompressor is the ESP32 ROM's miniz tinfl (components/esp_rom/include/miniz.h; tinfl_decompress,
 * mz_crc32 are ROM functions in esp32.rom.ld), not the espressif/zlib managed component: it costs no
 * code in flash and no dependency, and its state is the caller's, so it is allocated only while a
 * compressed update runs: the tinfl_decompressor (about 11 KB) plus its 32 KB dictionary, one heap
 * block of about 43 KB, freed at the end. The dictionary is also the output buffer: each run of inflated
 * bytes goes from it straight to esp_ota_write() (the "small buffer" into flash), so nothing else is
 * buffered. zlib's inflate would need the same 32 KB window plus about 7 KB of state and its code.
 *
 * tinfl parses zlib's header and Adler-32 itself; gzip's header (RFC 1952: FEXTRA, FNAME, FCOMMENT and
 * FHCRC skipped; FHCRC is not checked) and trailer (CRC-32 and ISIZE, checked) are parsed here around
 * tinfl's raw deflate. One member only: anything after the end of the stream is refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_log.h"
#include "sdkconfig.h"
#include "miniz.h"
#include "ota_inflate.h"

#define GZIP_ID1 0x1f
#define GZIP_ID2 0x8b
#define GZIP_HEADER_LEN 10
#define GZIP_TRAILER_LEN 8
#define GZIP_FHCRC 0x02
#define GZIP_FEXTRA 0x04
#define GZIP_FNAME 0x08
#define GZIP_FCOMMENT 0x10
#define GZIP_FRESERVED 0xe0
#define ZLIB_FDICT 0x20

/* Where the stream is. */
enum {
    STAGE_GZIP_HEADER = 0, /* the fixed 10 bytes */
    STAGE_GZIP_XLEN,       /* FEXTRA's 2-byte length */
    STAGE_GZIP_EXTRA,      /* FEXTRA's data (field_left bytes) */
    STAGE_GZIP_NAME,       /* FNAME, up to its NUL */
    STAGE_GZIP_COMMENT,    /* FCOMMENT, up to its NUL */
    STAGE_GZIP_HCRC,       /* FHCRC (field_left bytes) */
    STAGE_DEFLATE,         /* the deflate data (zlib: from its first byte) */
    STAGE_GZIP_TRAILER,    /* CRC-32 and ISIZE */
    STAGE_END,             /* the stream is complete: no byte may follow */
};

struct ota_inflater {
    tinfl_decompressor tinfl;
    size_t dict_pos;                  /* where the next output goes in dict */
    uint8_t dict[TINFL_LZ_DICT_SIZE]; /* tinfl's wrapping output buffer and window */
};

void ota_inflate_init(ota_inflate_t *stream)
{
    memset(stream, 0, sizeof(*stream));
}

bool ota_inflate_compressed(const ota_inflate_t *stream)
{
    return stream->encoding == OTA_ENCODING_GZIP || stream->encoding == OTA_ENCODING_ZLIB;
}

const char *ota_inflate_encoding_name(const ota_inflate_t *stream)
{
    switch (stream->encoding) {
    case OTA_ENCODING_GZIP:
        return "gzip";
    case OTA_ENCODING_ZLIB:
        return "zlib";
    default:
        return "none";
    }
}

void ota_inflate_free(ota_inflate_t *stream)
{
    free(stream->inflater);
    stream->inflater = NULL;
}

void ota_inflate_restart(ota_inflate_t *stream)
{
    ota_inflate_free(stream);
    ota_inflate_init(stream);
}

#if CONFIG_OTA_AGENT_COMPRESSED_UPDATES

static const char *TAG = "ota_inflate";

static bool corrupt(ota_outcome_t *out, const char *detail)
{
    ESP_LOGW(TAG, "compressed stream refused: %s", detail);
    return ota_outcome_fail(out, "failed", OTA_REASON_CORRUPT_STREAM, detail);
}


/* A zlib header: CM 8 (deflate), a window of at most 32 KB, the FCHECK bits, no preset dictionary. */
static bool is_zlib_header(uint8_t cmf, uint8_t flg)
{
    return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0 && (flg & ZLIB_FDICT) == 0;
}

/* The first byte may open a compressed stream (0x1f, or a zlib CMF): wait for the second. */
static bool may_be_magic(uint8_t first)
{
    return first == GZIP_ID1 || ((first & 0x0f) == 8 && (first >> 4) <= 7);
}

static ota_encoding_t detect(uint8_t first, uint8_t second)
{
    if (first == GZIP_ID1 && second == GZIP_ID2) {
        return OTA_ENCODING_GZIP;
    }
    return is_zlib_header(first, second) ? OTA_ENCODING_ZLIB : OTA_ENCODING_NONE;
}

static bool start_compressed(ota_inflate_t *stream, ota_image_t *image, ota_outcome_t *out)
{
    stream->inflater = malloc(sizeof(*stream->inflater));
    if (stream->inflater == NULL) {
        char detail[96];
        snprintf(detail, sizeof(detail), "no memory for the decompressor (%u bytes)", (unsigned)sizeof(*stream->inflater));
        ESP_LOGE(TAG, "%s", detail);
        return ota_outcome_fail(out, "failed", OTA_REASON_FLASH_ERROR, detail);
    }
    tinfl_init(&stream->inflater->tinfl);
    stream->inflater->dict_pos = 0;
    stream->crc = (uint32_t)mz_crc32(0, NULL, 0);
    stream->inflated = 0;
    stream->stage = stream->encoding == OTA_ENCODING_GZIP ? STAGE_GZIP_HEADER : STAGE_DEFLATE;
    /* size and sha256 in the command are the decompressed image's; Content-Length is the stream's */
    image->total = image->req->size;
    image->bounded = true;
    ESP_LOGI(TAG, "%s stream: inflating into the slot", ota_inflate_encoding_name(stream));
    return true;
}

/* The gzip header, one byte at a time (it is a few bytes, and may be split across reads anywhere). */
static bool gzip_header_byte(ota_inflate_t *stream, uint8_t byte, ota_outcome_t *out)
{
    switch (stream->stage) {
    case STAGE_GZIP_HEADER:
        stream->buf[stream->buf_len++] = byte;
        if (stream->buf_len < GZIP_HEADER_LEN) {
            return true;
        }
        stream->buf_len = 0;
        if (stream->buf[2] != MZ_DEFLATED) {
            return corrupt(out, "gzip compression method is not deflate");
        }
        if (stream->buf[3] & GZIP_FRESERVED) {
            return corrupt(out, "gzip header has reserved flags set");
        }
        stream->gzip_flags = stream->buf[3];
        stream->field_left = 2;
        stream->stage = STAGE_GZIP_XLEN;
        break;
    case STAGE_GZIP_XLEN:
        stream->buf[stream->buf_len++] = byte;
        if (stream->buf_len < 2) {
            return true;
        }
        stream->buf_len = 0;
        stream->field_left = (uint32_t)stream->buf[0] | (uint32_t)stream->buf[1] << 8;
        stream->stage = STAGE_GZIP_EXTRA;
        break;
    case STAGE_GZIP_EXTRA:
    case STAGE_GZIP_HCRC:
        stream->field_left--;
        break;
    case STAGE_GZIP_NAME:
    case STAGE_GZIP_COMMENT:
        if (byte != 0) {
            return true;
        }
        if (stream->stage == STAGE_GZIP_COMMENT) {
            stream->field_left = (stream->gzip_flags & GZIP_FHCRC) ? 2 : 0;
        }
        stream->stage++;
        break;
    default:
        return true;
    }
    /* skip the optional fields that are absent or done */
    for (;;) {
        if (stream->stage == STAGE_GZIP_XLEN && !(stream->gzip_flags & GZIP_FEXTRA)) {
            stream->stage = STAGE_GZIP_NAME;
        } else if (stream->stage == STAGE_GZIP_EXTRA && stream->field_left == 0) {
            stream->stage = STAGE_GZIP_NAME;
        } else if (stream->stage == STAGE_GZIP_NAME && !(stream->gzip_flags & GZIP_FNAME)) {
            stream->stage = STAGE_GZIP_COMMENT;
        } else if (stream->stage == STAGE_GZIP_COMMENT && !(stream->gzip_flags & GZIP_FCOMMENT)) {
            stream->stage = STAGE_GZIP_HCRC;
            stream->field_left = (stream->gzip_flags & GZIP_FHCRC) ? 2 : 0;
        } else if (stream->stage == STAGE_GZIP_HCRC && stream->field_left == 0) {
            stream->stage = STAGE_DEFLATE;
        } else {
            return true;
        }
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A byte after the deflate data: gzip's trailer, else (or after it) one too many. */
static bool tail_byte(ota_inflate_t *stream, uint8_t byte, ota_outcome_t *out)
{
    if (stream->stage != STAGE_GZIP_TRAILER) {
        return corrupt(out, "data after the end of the compressed stream");
    }
    stream->buf[stream->buf_len++] = byte;
    if (stream->buf_len < GZIP_TRAILER_LEN) {
        return true;
    }
    stream->stage = STAGE_END;
    if (le32(stream->buf) != stream->crc) {
        return corrupt(out, "gzip CRC-32 of the inflated image does not match its trailer");
    }
    if (le32(stream->buf + 4) != (uint32_t)stream->inflated) {
        return corrupt(out, "gzip length of the inflated image does not match its trailer");
    }
    return true;
}

/* The deflate stream ended: its bytes after the end go to the trailer. tinfl may have read up to three of
   them into its bit buffer already (miniz 1.x, as in the ESP32 ROM, does not put them back; later
   versions do, and leave fewer than 8 bits): whole bytes above the partial one are those. */
static bool deflate_done(ota_inflate_t *stream, ota_outcome_t *out)
{
    tinfl_decompressor *r = &stream->inflater->tinfl;
    stream->stage = stream->encoding == OTA_ENCODING_GZIP ? STAGE_GZIP_TRAILER : STAGE_END;
    stream->buf_len = 0;
    uint32_t bits = (uint32_t)(r->m_bit_buf >> (r->m_num_bits & 7));
    for (uint32_t n = r->m_num_bits >> 3; n > 0; n--, bits >>= 8) {
        if (!tail_byte(stream, (uint8_t)(bits & 0xff), out)) {
            return false;
        }
    }
    return true;
}

/* Runs tinfl over in[0..len) and writes what it inflates; *used is how much of in it took. */
static bool inflate_bytes(ota_inflate_t *stream, ota_image_t *image, const uint8_t *in, size_t len, size_t *used,
                          ota_outcome_t *out)
{
    struct ota_inflater *inf = stream->inflater;
    mz_uint32 flags = TINFL_FLAG_HAS_MORE_INPUT | (stream->encoding == OTA_ENCODING_ZLIB ? TINFL_FLAG_PARSE_ZLIB_HEADER : 0);
    size_t pos = 0;
    for (;;) {
        size_t in_n = len - pos;
        size_t out_n = sizeof(inf->dict) - inf->dict_pos;
        tinfl_status status = tinfl_decompress(&inf->tinfl, in + pos, &in_n, inf->dict, inf->dict + inf->dict_pos,
                                               &out_n, flags);
        pos += in_n;
        if (out_n > 0) {
            const uint8_t *produced = inf->dict + inf->dict_pos;
            stream->crc = (uint32_t)mz_crc32(stream->crc, produced, out_n);
            stream->inflated += (int64_t)out_n;
            inf->dict_pos = (inf->dict_pos + out_n) & (sizeof(inf->dict) - 1);
            if (!ota_image_write(image, produced, out_n, out)) {
                return false;
            }
        }
        if (status == TINFL_STATUS_DONE) {
            *used = pos;
            return deflate_done(stream, out);
        }
        if (status == TINFL_STATUS_ADLER32_MISMATCH) {
            return corrupt(out, "zlib Adler-32 of the inflated image does not match the stream's");
        }
        if (status < 0) {
            char detail[96];
            snprintf(detail, sizeof(detail), "invalid deflate data after %" PRId64 " inflated bytes (tinfl %d)",
                     stream->inflated, (int)status);
            return corrupt(out, detail);
        }
        if (status == TINFL_STATUS_NEEDS_MORE_INPUT && pos == len) {
            *used = pos;
            return true;
        }
        if (in_n == 0 && out_n == 0) { /* not reached: tinfl takes all input before asking for more */
            return corrupt(out, "the decompressor made no progress");
        }
    }
}

/* The stream's bytes after the magic, once it is known to be compressed. */
static bool compressed_bytes(ota_inflate_t *stream, ota_image_t *image, const uint8_t *data, size_t len,
                             ota_outcome_t *out)
{
    size_t pos = 0;
    while (pos < len) {
        if (stream->stage < STAGE_DEFLATE) {
            if (!gzip_header_byte(stream, data[pos++], out)) {
                return false;
            }
        } else if (stream->stage == STAGE_DEFLATE) {
            size_t used = 0;
            if (!inflate_bytes(stream, image, data + pos, len - pos, &used, out)) {
                return false;
            }
            pos += used;
        } else if (!tail_byte(stream, data[pos++], out)) {
            return false;
        }
    }
    return true;
}

bool ota_inflate_write(ota_inflate_t *stream, ota_image_t *image, const uint8_t *data, size_t len, ota_outcome_t *out)
{
    if (stream->encoding == OTA_ENCODING_UNKNOWN && len > 0) {
        size_t take = 0;
        while (stream->magic_len < sizeof(stream->magic) && take < len) {
            stream->magic[stream->magic_len++] = data[take++];
            if (stream->magic_len == 1 && !may_be_magic(stream->magic[0])) {
                break;
            }
        }
        if (stream->magic_len == 1 && may_be_magic(stream->magic[0])) {
            return true; /* one byte so far: the next one decides */
        }
        stream->encoding = stream->magic_len == 2 ? detect(stream->magic[0], stream->magic[1]) : OTA_ENCODING_NONE;
        data += take;
        len -= take;
        if (stream->encoding == OTA_ENCODING_NONE) {
            image->bounded = false;
            if (!ota_image_write(image, stream->magic, stream->magic_len, out)) {
                return false;
            }
        } else if (!start_compressed(stream, image, out) || !compressed_bytes(stream, image, stream->magic,
                                                                              stream->magic_len, out)) {
            return false;
        }
    }
    if (len == 0) {
        return true;
    }
    return stream->encoding == OTA_ENCODING_NONE ? ota_image_write(image, data, len, out)
                                                 : compressed_bytes(stream, image, data, len, out);
}

bool ota_inflate_finish(ota_inflate_t *stream, ota_image_t *image, ota_outcome_t *out)
{
    if (stream->encoding == OTA_ENCODING_UNKNOWN) {
        /* a body of one byte, or none: what there is goes to the image checks, which refuse it */
        stream->encoding = OTA_ENCODING_NONE;
        return stream->magic_len == 0 || ota_image_write(image, stream->magic, stream->magic_len, out);
    }
    if (!ota_inflate_compressed(stream) || stream->stage == STAGE_END) {
        return true;
    }
    char detail[96];
    snprintf(detail, sizeof(detail), "%s stream truncated: it ends inside its %s", ota_inflate_encoding_name(stream),
             stream->stage < STAGE_DEFLATE ? "header" : stream->stage == STAGE_DEFLATE ? "deflate data" : "trailer");
    return corrupt(out, detail);
}

#else /* !CONFIG_OTA_AGENT_COMPRESSED_UPDATES: every download is a plain image */

bool ota_inflate_write(ota_inflate_t *stream, ota_image_t *image, const uint8_t *data, size_t len, ota_outcome_t *out)
{
    stream->encoding = OTA_ENCODING_NONE;
    return ota_image_write(image, data, len, out);
}

bool ota_inflate_finish(ota_inflate_t *stream, ota_image_t *image, ota_outcome_t *out)
{
    return true;
}

#endif
