/*
 * Host port of esp_secure_boot.h (components/bootloader_support/include, v5.5.5) and of the ESP32 ROM's
 * Secure Boot V2 structures (components/esp_rom/esp32/include/esp32/rom/secure_boot.h and rsa_pss.h,
 * CONFIG_ESP32_REV_MIN_FULL >= 300): the RSA-3072 signature block and sector, and the app-side API that
 * esp_ota_end() uses with CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT. Hardware secure boot is never
 * enabled on the virtual board (esp_secure_boot_enabled() is false), so the trusted keys are always
 * those of the running app's own signature block.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"
#include "sdkconfig.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SECURE_BOOT_NUM_BLOCKS 1 /* an ESP32 (v3.0+) trusts one key */
#define SECURE_BOOT_MAX_APPENDED_SIGN_BLOCKS_TO_IMAGE 3
#define CRC_SIGN_BLOCK_LEN 1196
#define ETS_SECURE_BOOT_V2_SIGNATURE_MAGIC 0xE7
#define ESP_SECURE_BOOT_DIGEST_LEN 32
#define ESP_SECURE_BOOT_KEY_DIGEST_LEN 32
#define ESP_SECURE_BOOT_KEY_DIGEST_SHA_256_LEN 32

typedef enum {
    ESP_SECURE_BOOT_V1_ECDSA = 0,
    ESP_SECURE_BOOT_V2_RSA = 2,
    ESP_SECURE_BOOT_V2_ECDSA = 3,
} esp_secure_boot_sig_scheme_t;

#if CONFIG_SECURE_SIGNED_APPS_RSA_SCHEME
#define ESP_SECURE_BOOT_SCHEME ESP_SECURE_BOOT_V2_RSA
#endif

static inline const char *esp_secure_boot_get_scheme_name(esp_secure_boot_sig_scheme_t scheme)
{
    switch (scheme) {
    case ESP_SECURE_BOOT_V2_RSA:
        return "RSA";
    case ESP_SECURE_BOOT_V1_ECDSA:
    case ESP_SECURE_BOOT_V2_ECDSA:
        return "ECDSA";
    default:
        return "Unknown";
    }
}

/* ets_rsa_pubkey_t (rom/rsa_pss.h): the key as the RSA peripheral takes it, little-endian bignums. */
typedef struct {
    uint8_t n[384];
    uint32_t e;
    uint8_t rinv[384];
    uint32_t mdash;
} ets_rsa_pubkey_t;

typedef struct {
    uint8_t magic_byte;
    uint8_t version;
    uint8_t _reserved1;
    uint8_t _reserved2;
    uint8_t image_digest[32];
    ets_rsa_pubkey_t key;
    uint8_t signature[384];
    uint32_t block_crc;
    uint8_t _padding[16];
} ets_secure_boot_sig_block_t;
_Static_assert(sizeof(ets_secure_boot_sig_block_t) == 1216, "invalid sig block size");

typedef struct {
    ets_secure_boot_sig_block_t block[SECURE_BOOT_MAX_APPENDED_SIGN_BLOCKS_TO_IMAGE];
    uint8_t _padding[4096 - (sizeof(ets_secure_boot_sig_block_t) * SECURE_BOOT_MAX_APPENDED_SIGN_BLOCKS_TO_IMAGE)];
} ets_secure_boot_signature_t;
_Static_assert(sizeof(ets_secure_boot_signature_t) == 4096, "invalid sig sector size");

typedef struct {
    uint8_t key_digests[SECURE_BOOT_NUM_BLOCKS][ESP_SECURE_BOOT_DIGEST_LEN];
    unsigned num_digests;
} esp_image_sig_public_key_digests_t;

static inline bool esp_secure_boot_enabled(void)
{
    return false; /* no eFuse ABS_DONE on the virtual board: the "no secure boot" schemes only */
}

/* Verifies the signature sector at the 4 KB boundary after `length` bytes from `src_addr` against
   the running app's key. ESP_OK, or ESP_ERR_IMAGE_INVALID / ESP_FAIL as on the chip. */
esp_err_t esp_secure_boot_verify_signature(uint32_t src_addr, uint32_t length);

/* Verifies a signature sector against the trusted key(s) for a precalculated image digest. */
esp_err_t esp_secure_boot_verify_sbv2_signature_block(const ets_secure_boot_signature_t *sig_block,
                                                      const uint8_t *image_digest, uint8_t *verified_digest);

/* The SHA-256 digests of the keys in the running app's valid signature blocks. */
esp_err_t esp_secure_boot_get_signature_blocks_for_running_app(bool digest_public_keys,
                                                                esp_image_sig_public_key_digests_t *public_key_digests);

#ifdef __cplusplus
}
#endif
