/*
 * The ROM's tinfl_decompress(), mz_crc32() and mz_adler32() (include/miniz.h) over the system zlib.
 * tinfl's contract is kept: the caller owns the decompressor (tinfl_init() restarts it) and a wrapping
 * output buffer whose size is a power of two (at least TINFL_LZ_DICT_SIZE); every call takes what input
 * it can and fills what output it can, and says which of the two ran out (NEEDS_MORE_INPUT or
 * HAS_MORE_OUTPUT), DONE at the end of the stream, FAILED or ADLER32_MISMATCH on bad data. The
 * differences from the ROM's are listed in the header.
 */
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include "miniz.h"

_Static_assert(sizeof(z_stream) <= TINFL_HOST_ZSTREAM_SIZE, "TINFL_HOST_ZSTREAM_SIZE too small for z_stream");

enum { STATE_NEW = 0, STATE_RUNNING = 1, STATE_DONE = 2, STATE_FAILED = 3 };

/* zlib's allocations come from the decompressor's own arena (inflate's state, then its window). */
static voidpf arena_alloc(voidpf opaque, uInt items, uInt size)
{
    tinfl_decompressor *r = opaque;
    size_t want = ((size_t)items * size + 15) & ~(size_t)15;
    if (want > sizeof(r->m_host_arena) - r->m_host_arena_used) {
        return Z_NULL;
    }
    void *p = r->m_host_arena + r->m_host_arena_used;
    r->m_host_arena_used += want;
    return p;
}

static void arena_free(voidpf opaque, voidpf address)
{
    (void)opaque;
    (void)address; /* the arena is reset as a whole by tinfl_init() */
}

static z_stream *zstream_of(tinfl_decompressor *r)
{
    return (z_stream *)(void *)r->m_host_zstream;
}

static tinfl_status start(tinfl_decompressor *r, mz_uint32 flags)
{
    z_stream *zs = zstream_of(r);
    memset(zs, 0, sizeof(*zs));
    r->m_host_arena_used = 0;
    r->m_num_bits = 0;
    r->m_bit_buf = 0;
    r->m_check_adler32 = 1;
    zs->zalloc = arena_alloc;
    zs->zfree = arena_free;
    zs->opaque = r;
    if (inflateInit2(zs, (flags & TINFL_FLAG_PARSE_ZLIB_HEADER) ? 15 : -15) != Z_OK) {
        r->m_state = STATE_FAILED;
        return TINFL_STATUS_FAILED;
    }
    r->m_state = STATE_RUNNING;
    return TINFL_STATUS_NEEDS_MORE_INPUT;
}

tinfl_status tinfl_decompress(tinfl_decompressor *r, const mz_uint8 *pIn_buf_next, size_t *pIn_buf_size,
                              mz_uint8 *pOut_buf_start, mz_uint8 *pOut_buf_next, size_t *pOut_buf_size,
                              const mz_uint32 decomp_flags)
{
    if (r == NULL || pIn_buf_size == NULL || pOut_buf_size == NULL || pOut_buf_next < pOut_buf_start) {
        return TINFL_STATUS_BAD_PARAM;
    }
    size_t in_size = *pIn_buf_size;
    size_t out_size = *pOut_buf_size;
    *pIn_buf_size = 0;
    *pOut_buf_size = 0;
    if (!(decomp_flags & TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF)) {
        size_t whole = (size_t)(pOut_buf_next - pOut_buf_start) + out_size; /* tinfl's out_buf_size_mask + 1 */
        if (whole == 0 || (whole & (whole - 1)) != 0) {
            return TINFL_STATUS_BAD_PARAM;
        }
    }
    if (r->m_state == STATE_NEW && start(r, decomp_flags) == TINFL_STATUS_FAILED) {
        return TINFL_STATUS_FAILED;
    }
    if (r->m_state == STATE_DONE) {
        return TINFL_STATUS_DONE;
    }
    if (r->m_state != STATE_RUNNING) {
        return TINFL_STATUS_FAILED;
    }
    z_stream *zs = zstream_of(r);
    zs->next_in = (Bytef *)pIn_buf_next;
    zs->avail_in = (uInt)in_size;
    zs->next_out = pOut_buf_next;
    zs->avail_out = (uInt)out_size;
    int ret = inflate(zs, Z_NO_FLUSH);
    *pIn_buf_size = in_size - zs->avail_in;
    *pOut_buf_size = out_size - zs->avail_out;
    switch (ret) {
    case Z_STREAM_END:
        r->m_state = STATE_DONE;
        r->m_check_adler32 = (mz_uint32)zs->adler;
        return TINFL_STATUS_DONE;
    case Z_OK:
    case Z_BUF_ERROR:
        if (zs->avail_out == 0) {
            return TINFL_STATUS_HAS_MORE_OUTPUT;
        }
        if (decomp_flags & TINFL_FLAG_HAS_MORE_INPUT) {
            return TINFL_STATUS_NEEDS_MORE_INPUT;
        }
        r->m_state = STATE_FAILED;
        return TINFL_STATUS_FAILED;
    case Z_DATA_ERROR:
        r->m_state = STATE_FAILED;
        return zs->msg != NULL && strcmp(zs->msg, "incorrect data check") == 0 ? TINFL_STATUS_ADLER32_MISMATCH
                                                                              : TINFL_STATUS_FAILED;
    default: /* Z_NEED_DICT (a preset dictionary, which tinfl refuses too), Z_MEM_ERROR, Z_STREAM_ERROR */
        r->m_state = STATE_FAILED;
        return TINFL_STATUS_FAILED;
    }
}

mz_ulong mz_crc32(mz_ulong crc, const unsigned char *ptr, size_t buf_len)
{
    return ptr == NULL ? MZ_CRC32_INIT : crc32_z(crc, ptr, buf_len);
}

mz_ulong mz_adler32(mz_ulong adler, const unsigned char *ptr, size_t buf_len)
{
    return ptr == NULL ? MZ_ADLER32_INIT : adler32_z(adler, ptr, buf_len);
}
