/* mbedTLS 3.x SHA-256 calls over OpenSSL's EVP interface; 0 is success, as in mbedTLS. */
#include <openssl/evp.h>
#include "mbedtls/sha256.h"

#define SHA_FAILED (-0x0080) /* a generic failure code; the firmware only tests for non-zero */

void mbedtls_sha256_init(mbedtls_sha256_context *ctx)
{
    ctx->evp = EVP_MD_CTX_new();
}

void mbedtls_sha256_free(mbedtls_sha256_context *ctx)
{
    if (ctx != NULL && ctx->evp != NULL) {
        EVP_MD_CTX_free(ctx->evp);
        ctx->evp = NULL;
    }
}

int mbedtls_sha256_starts(mbedtls_sha256_context *ctx, int is224)
{
    const EVP_MD *md = is224 ? EVP_sha224() : EVP_sha256();
    return (ctx->evp != NULL && EVP_DigestInit_ex(ctx->evp, md, NULL) == 1) ? 0 : SHA_FAILED;
}

int mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen)
{
    return EVP_DigestUpdate(ctx->evp, input, ilen) == 1 ? 0 : SHA_FAILED;
}

int mbedtls_sha256_finish(mbedtls_sha256_context *ctx, unsigned char *output)
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(ctx->evp, output, &len) == 1 ? 0 : SHA_FAILED;
}
