/*
 * Secure Boot V2 signature checks of an app build without hardware secure boot, for the virtual board:
 * ESP-IDF v5.5.5's components/bootloader_support/src/secure_boot_v2/secure_boot_signatures_app.c
 * (esp_secure_boot_verify_signature, esp_secure_boot_verify_sbv2_signature_block,
 * esp_secure_boot_get_signature_blocks_for_running_app) and secure_boot_rsa_signature.c
 * (verify_rsa_signature_block), with CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT and the RSA scheme:
 *
 * - a signature block is valid with magic 0xE7, the CRC32 of its first 1196 bytes, and version 2 (RSA);
 * - the trusted key digests are the SHA-256 of the key (n, e, rinv, mdash) of each valid block of the
 *   running app's own signature sector (its image padded to 4 KB): with no signed running app there is
 *   no trusted key and every update is refused ("No signatures were found for the running app");
 * - only the new image's first block is looked at (secure_boot_num_blocks is 1 with
 *   SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT), and only if its key digest is a trusted one;
 * - RSA-PSS verification: SHA-256, MGF1-SHA-256, any salt length (mbedtls_rsa_rsassa_pss_verify);
 *   the block's own image_digest field is not compared (the app's mbedtls path does not either).
 *
 * Known differences from the chip: the RSA public operation is OpenSSL's BN_mod_exp (the chip's mbedtls
 * uses the RSA peripheral), and EMSA-PSS decoding is written out here with mbedtls's steps and error codes,
 * so the log lines carry the numbers an ESP32 prints. No eFuse key digests and no key revocation: hardware
 * secure boot is never on in this scheme. ECDSA (V1, the ESP32's other scheme) is not implemented.
 */
#include <inttypes.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "esp_image_format.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_secure_boot.h"
#include "host_board.h"
#include "sdkconfig.h"

#if CONFIG_SECURE_SIGNED_APPS_RSA_SCHEME

static const char *TAG = "secure_boot_v2";
static const char *TAG_RSA = "secure_boot_v2_rsa";

#define FLASH_SECTOR_SIZE 0x1000
#define ALIGN_UP(num, align) (((num) + ((align) - 1)) & ~((align) - 1))
#define RSA_KEY_SIZE 384

/* mbedtls's error codes (mbedtls/rsa.h, bignum.h), which ESP-IDF logs as they are. */
#define MBEDTLS_ERR_MPI_BAD_INPUT_DATA  (-0x0004)
#define MBEDTLS_ERR_RSA_BAD_INPUT_DATA  (-0x4080)
#define MBEDTLS_ERR_RSA_INVALID_PADDING (-0x4100)
#define MBEDTLS_ERR_RSA_KEY_CHECK_FAILED (-0x4200)
#define MBEDTLS_ERR_RSA_PUBLIC_FAILED   (-0x4280)
#define MBEDTLS_ERR_RSA_VERIFY_FAILED   (-0x4380)

/* esp_rom_crc32_le(0, ...) is zlib's crc32. */
static esp_err_t validate_signature_block(const ets_secure_boot_sig_block_t *block)
{
    if (block->magic_byte != ETS_SECURE_BOOT_V2_SIGNATURE_MAGIC ||
        block->block_crc != (uint32_t)crc32(0, (const Bytef *)block, CRC_SIGN_BLOCK_LEN)) {
        return ESP_FAIL;
    }
    if (block->version != ESP_SECURE_BOOT_SCHEME) {
        ESP_LOGE(TAG, "%s signing scheme selected but signature block generated for %s scheme",
                 esp_secure_boot_get_scheme_name(ESP_SECURE_BOOT_SCHEME),
                 esp_secure_boot_get_scheme_name((esp_secure_boot_sig_scheme_t)block->version));
        return ESP_FAIL;
    }
    return ESP_OK;
}

static void key_digest(const ets_secure_boot_sig_block_t *block, uint8_t out[ESP_SECURE_BOOT_KEY_DIGEST_LEN])
{
    SHA256((const uint8_t *)&block->key, sizeof(block->key), out);
}

static void reverse_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        dst[len - 1 - i] = src[i];
    }
}

/* mbedtls_rsa_check_pubkey(): n odd and of a usable size, e odd, 3 <= e < n. */
static int check_pubkey(const BIGNUM *n, const BIGNUM *e)
{
    if (!BN_is_odd(n) || BN_num_bits(n) < 128 || BN_num_bits(n) > 4096 ||
        !BN_is_odd(e) || BN_num_bits(e) < 2 || BN_cmp(e, n) >= 0) {
        return MBEDTLS_ERR_RSA_KEY_CHECK_FAILED;
    }
    return 0;
}

/* SHA-256 of up to three pieces (OpenSSL's EVP: SHA256_Init() and friends are deprecated in 3.0). */
static void sha256_of(uint8_t out[SHA256_DIGEST_LENGTH], const void *a, size_t alen, const void *b, size_t blen,
                      const void *c, size_t clen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a, alen);
    EVP_DigestUpdate(ctx, b, blen);
    EVP_DigestUpdate(ctx, c, clen);
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

/* MGF1 with SHA-256 applied (XORed) to dst, as mbedtls's mgf_mask(). */
static void mgf1_mask(uint8_t *dst, size_t dlen, const uint8_t *seed, size_t slen)
{
    uint8_t counter[4] = {0};
    uint8_t mask[SHA256_DIGEST_LENGTH];
    while (dlen > 0) {
        sha256_of(mask, seed, slen, counter, sizeof(counter), NULL, 0);
        size_t use = dlen < sizeof(mask) ? dlen : sizeof(mask);
        for (size_t i = 0; i < use; i++) {
            *dst++ ^= mask[i];
        }
        dlen -= use;
        for (int i = 3; i >= 0 && ++counter[i] == 0; i--) {
        }
    }
}

/* mbedtls_rsa_rsassa_pss_verify_ext(SHA-256, MBEDTLS_RSA_SALT_LEN_ANY) on the recovered message `buf`. */
static int emsa_pss_verify(uint8_t *buf, size_t siglen, size_t msb, const uint8_t *hash)
{
    const size_t hlen = SHA256_DIGEST_LENGTH;
    if (buf[siglen - 1] != 0xBC) {
        return MBEDTLS_ERR_RSA_INVALID_PADDING;
    }
    if ((buf[0] >> (8 - siglen * 8 + msb)) != 0) {
        return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    }
    uint8_t *p = buf;
    if (msb % 8 == 0) {
        p++;
        siglen -= 1;
    }
    if (siglen < hlen + 2) {
        return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    }
    uint8_t *hash_start = p + siglen - hlen - 1;
    mgf1_mask(p, siglen - hlen - 1, hash_start, hlen);
    buf[0] &= 0xFF >> (siglen * 8 - msb);
    while (p < hash_start - 1 && *p == 0) {
        p++;
    }
    if (*p++ != 0x01) {
        return MBEDTLS_ERR_RSA_INVALID_PADDING;
    }
    static const uint8_t zeros[8] = {0};
    uint8_t expected[SHA256_DIGEST_LENGTH];
    sha256_of(expected, zeros, sizeof(zeros), hash, hlen, p, (size_t)(hash_start - p)); /* salt: any length */
    return memcmp(hash_start, expected, hlen) == 0 ? 0 : MBEDTLS_ERR_RSA_VERIFY_FAILED;
}

/* verify_rsa_signature_block() (secure_boot_rsa_signature.c): 0 when the trusted block's signature is
   an RSA-PSS signature of image_digest under its key, else mbedtls's error code. */
static int verify_rsa_signature_block(const uint8_t *image_digest, const ets_secure_boot_sig_block_t *trusted_block)
{
    uint8_t n_be[RSA_KEY_SIZE];
    uint8_t sig_be[RSA_KEY_SIZE];
    uint8_t buf[RSA_KEY_SIZE];
    reverse_copy(n_be, trusted_block->key.n, sizeof(n_be));
    reverse_copy(sig_be, trusted_block->signature, sizeof(sig_be)); /* "byte swapped into BE representation" */
    BN_CTX *bn_ctx = BN_CTX_new();
    BIGNUM *n = BN_bin2bn(n_be, sizeof(n_be), NULL);
    BIGNUM *e = BN_new();
    BIGNUM *s = BN_bin2bn(sig_be, sizeof(sig_be), NULL);
    BIGNUM *m = BN_new();
    int ret = 0;
    if (bn_ctx == NULL || n == NULL || e == NULL || s == NULL || m == NULL || !BN_set_word(e, trusted_block->key.e)) {
        ESP_LOGE(TAG_RSA, "Failed mbedtls_rsa_import, err: %d", MBEDTLS_ERR_RSA_BAD_INPUT_DATA);
        ret = MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
        goto exit;
    }
    ret = check_pubkey(n, e);
    if (ret != 0) {
        ESP_LOGI(TAG_RSA, "Key is not an RSA key -%0x", -ret);
        goto exit;
    }
    if (BN_cmp(s, n) >= 0 || !BN_mod_exp(m, s, e, n, bn_ctx) || BN_bn2binpad(m, buf, sizeof(buf)) < 0) {
        ret = MBEDTLS_ERR_RSA_PUBLIC_FAILED + MBEDTLS_ERR_MPI_BAD_INPUT_DATA;
        ESP_LOGE(TAG_RSA, "mbedtls_rsa_public failed, err: %d", ret);
        goto exit;
    }
    ret = emsa_pss_verify(buf, sizeof(buf), (size_t)BN_num_bits(n) - 1, image_digest);
    if (ret != 0) {
        ESP_LOGE(TAG_RSA, "Failed mbedtls_rsa_rsassa_pss_verify, err: %d", ret);
    } else {
        ESP_LOGI(TAG_RSA, "Signature verified successfully!");
    }
exit:
    BN_free(m);
    BN_free(s);
    BN_free(e);
    BN_free(n);
    BN_CTX_free(bn_ctx);
    return ret;
}

/* calculate_image_public_key_digests(verify_image_digest = false): the key digests of an image's
   valid signature blocks. */
static esp_err_t calculate_image_public_key_digests(bool digest_public_keys,
                                                    esp_image_sig_public_key_digests_t *public_key_digests,
                                                    const esp_partition_pos_t *part_pos)
{
    esp_image_metadata_t img_metadata = {0};
    esp_err_t ret = esp_image_get_metadata(part_pos, &img_metadata);
    if (ret != ESP_OK) {
        ESP_LOGE(TAG, "Error reading metadata from running app (err=0x%x)", ret);
        return ESP_FAIL;
    }
    const uint32_t sig_block_addr = img_metadata.start_addr + ALIGN_UP(img_metadata.image_len, FLASH_SECTOR_SIZE);
    memset(public_key_digests, 0, sizeof(*public_key_digests));
    for (unsigned i = 0; i < SECURE_BOOT_NUM_BLOCKS; i++) {
        const uint32_t addr = sig_block_addr + (uint32_t)sizeof(ets_secure_boot_sig_block_t) * i;
        if (addr + sizeof(ets_secure_boot_sig_block_t) > host_flash_size()) {
            ESP_LOGE(TAG, "Secure boot sign blocks cannot be read from image at %" PRIx32 " (err=0x%x)",
                     part_pos->offset, ESP_ERR_INVALID_SIZE);
            return ESP_FAIL;
        }
        ets_secure_boot_sig_block_t block;
        memcpy(&block, host_flash_data() + addr, sizeof(block));
        if (validate_signature_block(&block) == ESP_OK) {
            if (digest_public_keys) {
                key_digest(&block, public_key_digests->key_digests[public_key_digests->num_digests]);
            }
            public_key_digests->num_digests++;
        }
    }
    return public_key_digests->num_digests == 0 ? ESP_ERR_NOT_FOUND : ESP_OK;
}

esp_err_t esp_secure_boot_get_signature_blocks_for_running_app(bool digest_public_keys,
                                                                esp_image_sig_public_key_digests_t *public_key_digests)
{
    const esp_partition_t *running_app_part = esp_ota_get_running_partition();
    if (running_app_part == NULL) {
        ESP_LOGE(TAG, "Cannot get running partition");
        return ESP_FAIL;
    }
    const esp_partition_pos_t part_pos = {.offset = running_app_part->address, .size = running_app_part->size};
    esp_err_t err = calculate_image_public_key_digests(digest_public_keys, public_key_digests, &part_pos);
    if (public_key_digests->num_digests == 0) {
        ESP_LOGE(TAG, "No signatures were found for the running app");
    }
    return err;
}

static esp_err_t get_secure_boot_key_digests(esp_image_sig_public_key_digests_t *public_key_digests)
{
    /* esp_secure_boot_enabled() is false here: CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT. */
    ESP_LOGI(TAG, "Take trusted digest key(s) from running app");
    return esp_secure_boot_get_signature_blocks_for_running_app(true, public_key_digests);
}

esp_err_t esp_secure_boot_verify_sbv2_signature_block(const ets_secure_boot_signature_t *sig_block,
                                                      const uint8_t *image_digest, uint8_t *verified_digest)
{
    bool any_trusted_key = false;
    if (verified_digest != NULL) {
        memset(verified_digest, 0, ESP_SECURE_BOOT_DIGEST_LEN);
    }
    esp_image_sig_public_key_digests_t trusted = {0};
    if (get_secure_boot_key_digests(&trusted) != ESP_OK) {
        ESP_LOGE(TAG, "Could not read secure boot digests!");
        return ESP_FAIL;
    }
    int ret = 0;
    const unsigned secure_boot_num_blocks = 1; /* CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT */
    for (unsigned app_blk_idx = 0; app_blk_idx < secure_boot_num_blocks; app_blk_idx++) {
        const ets_secure_boot_sig_block_t *app_blk = &sig_block->block[app_blk_idx];
        const ets_secure_boot_sig_block_t *trusted_block = NULL;
        if (validate_signature_block(app_blk) != ESP_OK) {
            continue; /* Skip invalid signature blocks */
        }
        uint8_t app_blk_digest[ESP_SECURE_BOOT_KEY_DIGEST_SHA_256_LEN];
        key_digest(app_blk, app_blk_digest);
        for (unsigned trusted_key_idx = 0; trusted_key_idx < secure_boot_num_blocks; trusted_key_idx++) {
            if (memcmp(app_blk_digest, trusted.key_digests[trusted_key_idx], ESP_SECURE_BOOT_KEY_DIGEST_LEN) == 0) {
                ESP_LOGI(TAG, "#%d app key digest == #%d trusted key digest", app_blk_idx, trusted_key_idx);
                trusted_block = app_blk;
                any_trusted_key = true;
                break;
            }
            ESP_LOGV(TAG, "not trusting app sig %d trust idx %d", app_blk_idx, trusted_key_idx);
        }
        if (trusted_block == NULL) {
            continue; /* Skip the signature blocks with no trusted digest */
        }
        ESP_LOGI(TAG, "Verifying with RSA-PSS...");
        ret = verify_rsa_signature_block(image_digest, trusted_block);
        if (ret == 0) {
            break;
        }
    }
    return (ret != 0 || !any_trusted_key) ? ESP_ERR_IMAGE_INVALID : ESP_OK;
}

esp_err_t esp_secure_boot_verify_signature(uint32_t src_addr, uint32_t length)
{
    /* Rounding off length to the upper 4k boundary */
    const uint32_t padded_length = ALIGN_UP(length, FLASH_SECTOR_SIZE);
    if ((uint64_t)src_addr + padded_length + sizeof(ets_secure_boot_signature_t) > host_flash_size()) {
        ESP_LOGE(TAG, "Failed to mmap data at offset 0x%" PRIx32, src_addr + padded_length);
        return ESP_FAIL;
    }
    uint8_t digest[ESP_SECURE_BOOT_DIGEST_LEN];
    SHA256(host_flash_data() + src_addr, padded_length, digest);
    ets_secure_boot_signature_t *sig_block = malloc(sizeof(*sig_block));
    if (sig_block == NULL) {
        return ESP_ERR_NO_MEM;
    }
    memcpy(sig_block, host_flash_data() + src_addr + padded_length, sizeof(*sig_block));
    esp_err_t err = esp_secure_boot_verify_sbv2_signature_block(sig_block, digest, NULL);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "Secure Boot V2 verification failed.");
    }
    free(sig_block);
    return err;
}

#endif /* CONFIG_SECURE_SIGNED_APPS_RSA_SCHEME */
