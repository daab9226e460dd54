/*
 * Internals shared by the host port's esp_https_ota files. Private to the port: firmware never
 * includes it. The component is split by concern:
 *
 *   esp_https_ota.c     the public API except perform: begin (with the partial-download HEAD and
 *                       the resumption fallback), finish, abort, the getters, esp_https_ota()
 *   https_ota_perform.c esp_https_ota_perform(): the state machine, flash writes, next Range
 *   https_ota_image.c   the image header read, the app / bootloader description, chip checks
 *   https_ota_http.c    connecting over esp_http_client: status codes, redirects, Range, events
 *
 * Known differences from the chip are listed at the top of esp_https_ota.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_https_ota.h"
#include "esp_ota_ops.h"

#define HTTPS_OTA_TAG "esp_https_ota"

/* Covers the image header, the first segment header and esp_app_desc_t; also the smallest
 * OTA buffer (ESP-IDF's IMAGE_HEADER_SIZE and DEFAULT_OTA_BUF_SIZE). */
#define IMAGE_HEADER_SIZE (1024)
#define DEFAULT_OTA_BUF_SIZE (IMAGE_HEADER_SIZE)
#define DEFAULT_REQUEST_SIZE (64 * 1024)

_Static_assert(DEFAULT_OTA_BUF_SIZE > (sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t) +
                                       sizeof(esp_app_desc_t) + 1), "OTA data buffer too small");

typedef enum {
    ESP_HTTPS_OTA_INIT,
    ESP_HTTPS_OTA_BEGIN,
    ESP_HTTPS_OTA_IN_PROGRESS,
    ESP_HTTPS_OTA_SUCCESS,
    ESP_HTTPS_OTA_RESUME,
} esp_https_ota_state;

struct esp_https_ota_handle {
    esp_ota_handle_t update_handle;
    struct {
        const esp_partition_t *staging;
        const esp_partition_t *final;
        bool finalize_with_copy;
    } partition;
    esp_http_client_handle_t http_client;
    char *ota_upgrade_buf;
    size_t ota_upgrade_buf_size;
    int binary_file_len;        /* image bytes written (or held in ota_upgrade_buf before the first write) */
    int image_length;           /* Content-Length of the image (HEAD's with partial_http_download) */
    int max_http_request_size;
    esp_https_ota_state state;
    bool bulk_flash_erase;
    bool partial_http_download;
    bool ota_resumption;
    int max_authorization_retries;
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    decrypt_cb_t decrypt_cb;
    void *decrypt_user_ctx;
    uint16_t enc_img_header_size;
#endif
};

typedef struct esp_https_ota_handle esp_https_ota_t;

/* ---- https_ota_http.c */
/* Posts an ESP_HTTPS_OTA_EVENT on the default loop; logs (does not fail) when that fails. */
void https_ota_dispatch_event(int32_t event_id, const void *event_data, size_t event_data_size);
/* Opens the request, writes any post field, reads the headers; follows redirects and 401 retries
 * until a final status. ESP_OK for a status the download can go on with. */
esp_err_t https_ota_http_connect(esp_https_ota_t *handle);
void https_ota_http_cleanup(esp_http_client_handle_t client);
/* Sets "Range: bytes=<first>-<last>", or "bytes=<first>-" when last < 0. */
esp_err_t https_ota_set_range_header(esp_http_client_handle_t client, int first, int last);

/* ---- https_ota_image.c */
/* Reads IMAGE_HEADER_SIZE bytes of the body into ota_upgrade_buf; binary_file_len = bytes read. */
esp_err_t https_ota_read_header(esp_https_ota_t *handle);
esp_err_t https_ota_verify_chip_id(const void *image_header);
esp_err_t https_ota_verify_chip_revision(const void *image_header);
