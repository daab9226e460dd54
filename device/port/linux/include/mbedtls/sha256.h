/*
 * Host port of the mbedTLS 3.x SHA-256 API that ESP-IDF v5.5 ships (mbedtls/sha256.h),
 * implemented over OpenSSL so the host build needs no second crypto library.
 */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mbedtls_sha256_context {
    void *evp; /* OpenSSL EVP_MD_CTX */
} mbedtls_sha256_context;

void mbedtls_sha256_init(mbedtls_sha256_context *ctx);
void mbedtls_sha256_free(mbedtls_sha256_context *ctx);
int mbedtls_sha256_starts(mbedtls_sha256_context *ctx, int is224);
int mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen);
int mbedtls_sha256_finish(mbedtls_sha256_context *ctx, unsigned char *output);

#ifdef __cplusplus
}
#endif
