/*
 * Host port of the ROM's miniz.h (components/esp_rom/include/miniz.h, ESP-IDF v5.5): the parts the
 * firmware uses, tinfl_decompress() (streaming inflate) with its flags and statuses, tinfl_init(),
 * mz_crc32() and mz_adler32(), with v5.5's names, values and signatures. On the ESP32 these are ROM
 * functions (esp32.rom.ld: tinfl_decompress, mz_crc32, mz_adler32); here src/miniz.c implements them
 * over the system zlib.
 *
 * Differences from the ROM's, none of which the firmware relies on:
 * - struct tinfl_decompressor_tag keeps the public fields the firmware may read (m_state, m_num_bits,
 *   m_bit_buf) but its Huffman tables are replaced by a zlib z_stream and the arena its state and
 *   window are allocated from (about 48 KB instead of the ROM's 11 KB: zlib keeps its own 32 KB window
 *   besides the caller's output buffer, which tinfl uses as the window).
 * - m_num_bits is 0 after TINFL_STATUS_DONE: zlib hands back every byte past the end of the stream
 *   (miniz 1.x may keep up to 3 of them in m_bit_buf; the firmware handles both).
 * - Without TINFL_FLAG_HAS_MORE_INPUT, input that ends before the stream does is TINFL_STATUS_FAILED
 *   (miniz 1.x pads with zero bits); the firmware always sets the flag.
 * - TINFL_FLAG_COMPUTE_ADLER32 is accepted and ignored (zlib checks the Adler-32 of a zlib stream).
 * - The mem_to_mem/heap/callback helpers, tdefl (compression) and the zip and zlib-style APIs are
 *   not provided.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long mz_ulong;
typedef unsigned char mz_uint8;
typedef signed short mz_int16;
typedef unsigned short mz_uint16;
typedef unsigned int mz_uint32;
typedef unsigned int mz_uint;
typedef long long mz_int64;
typedef unsigned long long mz_uint64;
typedef int mz_bool;

#define MZ_MACRO_END while (0)

#define MZ_ADLER32_INIT (1)
/* mz_adler32() returns the initial adler-32 value to use when called with ptr==NULL. */
mz_ulong mz_adler32(mz_ulong adler, const unsigned char *ptr, size_t buf_len);

#define MZ_CRC32_INIT (0)
/* mz_crc32() returns the initial CRC-32 value to use when called with ptr==NULL. */
mz_ulong mz_crc32(mz_ulong crc, const unsigned char *ptr, size_t buf_len);

#define MZ_DEFLATED 8

/* Decompression flags used by tinfl_decompress(). */
enum {
    TINFL_FLAG_PARSE_ZLIB_HEADER = 1,
    TINFL_FLAG_HAS_MORE_INPUT = 2,
    TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF = 4,
    TINFL_FLAG_COMPUTE_ADLER32 = 8
};

struct tinfl_decompressor_tag;
typedef struct tinfl_decompressor_tag tinfl_decompressor;

/* Max size of LZ dictionary. */
#define TINFL_LZ_DICT_SIZE 32768

typedef enum {
    TINFL_STATUS_BAD_PARAM = -3,
    TINFL_STATUS_ADLER32_MISMATCH = -2,
    TINFL_STATUS_FAILED = -1,
    TINFL_STATUS_DONE = 0,
    TINFL_STATUS_NEEDS_MORE_INPUT = 1,
    TINFL_STATUS_HAS_MORE_OUTPUT = 2
} tinfl_status;

/* Initializes the decompressor to its initial state. */
#define tinfl_init(r) do { (r)->m_state = 0; } MZ_MACRO_END
#define tinfl_get_adler32(r) (r)->m_check_adler32

tinfl_status tinfl_decompress(tinfl_decompressor *r, const mz_uint8 *pIn_buf_next, size_t *pIn_buf_size,
                              mz_uint8 *pOut_buf_start, mz_uint8 *pOut_buf_next, size_t *pOut_buf_size,
                              const mz_uint32 decomp_flags);

typedef mz_uint32 tinfl_bit_buf_t;
#define TINFL_BITBUF_SIZE (32)

/* The host's state: zlib's z_stream (opaque here) and the arena its allocations come from, so that a
   decompressor freed with free() (as the ROM's is) leaves nothing behind. */
#define TINFL_HOST_ZSTREAM_SIZE 128
#define TINFL_HOST_ARENA_SIZE (48 * 1024)

struct tinfl_decompressor_tag {
    mz_uint32 m_state, m_num_bits, m_zhdr0, m_zhdr1, m_z_adler32, m_final, m_type, m_check_adler32;
    tinfl_bit_buf_t m_bit_buf;
    size_t m_host_arena_used;
    _Alignas(16) mz_uint8 m_host_zstream[TINFL_HOST_ZSTREAM_SIZE];
    _Alignas(16) mz_uint8 m_host_arena[TINFL_HOST_ARENA_SIZE];
};

#ifdef __cplusplus
}
#endif
