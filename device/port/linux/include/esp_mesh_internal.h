/*
 * Host port of esp_mesh_internal.h (components/esp_wifi/include, ESP-IDF v5.5.5). The mesh example includes
 * it next to esp_mesh.h; the port implements none of its tuning calls (attempts, parent switch, RSSI
 * thresholds, IE, announce interval), so it only supplies MESH_MAX_CONNECTIONS and what esp_mesh.h needs from
 * esp_wifi_crypto_types.h: mesh_crypto_funcs_t with v5.5.5's members.
 */
#pragma once

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mesh max connections */
#define MESH_MAX_CONNECTIONS (10)

/* esp_wifi_crypto_types.h, v5.5.5 */
typedef int (*esp_aes_128_encrypt_t)(const unsigned char *key, const unsigned char *iv, unsigned char *data, int data_len);
typedef int (*esp_aes_128_decrypt_t)(const unsigned char *key, const unsigned char *iv, unsigned char *data, int data_len);
typedef struct {
    esp_aes_128_encrypt_t aes_128_encrypt;          /**< Callback function used in mesh vendor IE encryption */
    esp_aes_128_decrypt_t aes_128_decrypt;          /**< Callback function used in mesh vendor IE decryption */
} mesh_crypto_funcs_t;

#ifdef __cplusplus
}
#endif
