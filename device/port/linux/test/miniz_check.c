/*
 * `inflate <file> <zlib 0|1> <in_chunk> <out_size>`: inflates the file with the port's tinfl_decompress
 * (include/miniz.h) as ota_inflate.c does: TINFL_FLAG_HAS_MORE_INPUT, the input in chunks of in_chunk bytes,
 * a wrapping output buffer of out_size bytes. Prints every distinct status once in order of first sight
 * (`statuses=1,2,0`), then `status=<last> in=<bytes consumed> out=<bytes> crc=<CRC-32 of the output>`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "miniz.h"
#include "miniz_check.h"

static void inflate_file(const char *path, int zlib, size_t in_chunk, size_t out_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL || in_chunk == 0 || out_size == 0) {
        printf("inflate: bad arguments\n");
        if (f != NULL) {
            fclose(f);
        }
        return;
    }
    tinfl_decompressor *r = malloc(sizeof(*r));
    uint8_t *dict = malloc(out_size);
    uint8_t *in = malloc(in_chunk);
    tinfl_init(r);
    mz_uint32 flags = TINFL_FLAG_HAS_MORE_INPUT | (zlib ? TINFL_FLAG_PARSE_ZLIB_HEADER : 0);
    size_t dict_pos = 0, consumed = 0, produced = 0;
    mz_ulong crc = mz_crc32(0, NULL, 0);
    int seen[8] = {0};
    char statuses[64] = "";
    tinfl_status status = TINFL_STATUS_NEEDS_MORE_INPUT;
    size_t got;
    while (status > 0 && (got = fread(in, 1, in_chunk, f)) > 0) {
        size_t pos = 0;
        do {
            size_t in_n = got - pos, out_n = out_size - dict_pos;
            status = tinfl_decompress(r, in + pos, &in_n, dict, dict + dict_pos, &out_n, flags);
            pos += in_n;
            consumed += in_n;
            crc = mz_crc32(crc, dict + dict_pos, out_n);
            produced += out_n;
            dict_pos = (dict_pos + out_n) & (out_size - 1);
            if (!seen[status + 3]++) {
                size_t used = strlen(statuses);
                snprintf(statuses + used, sizeof(statuses) - used, "%s%d", used ? "," : "", (int)status);
            }
        } while (status == TINFL_STATUS_HAS_MORE_OUTPUT || (status == TINFL_STATUS_NEEDS_MORE_INPUT && pos < got));
    }
    printf("statuses=%s\n", statuses);
    printf("status=%d in=%zu out=%zu crc=%08lx\n", (int)status, consumed, produced, (unsigned long)crc);
    free(in);
    free(dict);
    free(r);
    fclose(f);
}

bool miniz_check_command(const char *line)
{
    char path[256];
    int zlib = 0;
    unsigned in_chunk = 0, out_size = 0;
    if (sscanf(line, "inflate %255s %d %u %u", path, &zlib, &in_chunk, &out_size) != 4) {
        return false;
    }
    inflate_file(path, zlib, in_chunk, out_size);
    return true;
}
