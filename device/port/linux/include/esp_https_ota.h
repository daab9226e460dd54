/*
 * Host port of ESP-IDF's esp_https_ota.h (components/esp_https_ota/include, v5.5.4), implemented
 * in src/esp_https_ota.c and the src/https_ota_*.c files beside it, over the host port's own
 * esp_http_client and esp_ota_ops, as the real component is layered.
 *
 * Types, event ids, error codes, config field names/types/order and function signatures are those
 * of v5.5.4 (which has no CONFIG_ESP_HTTPS_OTA_ENABLE_PARTIAL_DOWNLOAD yet: partial_http_download
 * and max_http_request_size are always there; master puts them behind that option). The decrypt
 * callback fields exist only with CONFIG_ESP_HTTPS_OTA_DECRYPT_CB, as on the chip. Like the real
 * header it includes esp_http_client.h, bootloader_common.h, esp_app_desc.h,
 * esp_bootloader_desc.h, sdkconfig.h, esp_event.h and esp_partition.h.
 *
 * What the host port accepts but ignores is listed at the top of src/esp_https_ota.c.
 */
#pragma once

#include <esp_http_client.h>
#include <bootloader_common.h>
#include "esp_app_desc.h"
#include "esp_bootloader_desc.h"
#if defined(__has_include)
#if __has_include("sdkconfig.h")
#include <sdkconfig.h>
#endif
#endif

#include "esp_event.h"
#include "esp_partition.h"

#ifdef __cplusplus
extern "C" {
#endif

ESP_EVENT_DECLARE_BASE(ESP_HTTPS_OTA_EVENT);

/**
 * @brief Events of an OTA update, posted on the default event loop
 */
typedef enum {
    ESP_HTTPS_OTA_START,                    /*!< OTA started (no data) */
    ESP_HTTPS_OTA_CONNECTED,                /*!< Connected to the server (no data) */
    ESP_HTTPS_OTA_GET_IMG_DESC,             /*!< Reading the app / bootloader description (no data) */
    ESP_HTTPS_OTA_VERIFY_CHIP_ID,           /*!< Checking the image's chip id (data: esp_chip_id_t) */
    ESP_HTTPS_OTA_VERIFY_CHIP_REVISION,     /*!< Checking the image's chip revision (data: uint16_t min_chip_rev_full) */
    ESP_HTTPS_OTA_DECRYPT_CB,               /*!< Calling the decrypt callback (no data) */
    ESP_HTTPS_OTA_WRITE_FLASH,              /*!< Data written to flash (data: int, bytes written so far) */
    ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION,    /*!< Boot partition switched (data: esp_partition_subtype_t) */
    ESP_HTTPS_OTA_FINISH,                   /*!< OTA finished (no data) */
    ESP_HTTPS_OTA_ABORT,                    /*!< OTA aborted (no data) */
} esp_https_ota_event_t;

typedef void *esp_https_ota_handle_t;
typedef esp_err_t(*http_client_init_cb_t)(esp_http_client_handle_t);

#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB || __DOXYGEN__
/**
 * @brief Arguments of the decrypt callback
 */
typedef struct {
    const char *data_in;    /*!< Data to decrypt */
    size_t data_in_len;     /*!< Its length */
    char *data_out;         /*!< Decrypted data, malloc'ed by the callback; freed once written to flash */
    size_t data_out_len;    /*!< Its length (0: nothing to write yet) */
} decrypt_cb_arg_t;

typedef esp_err_t(*decrypt_cb_t)(decrypt_cb_arg_t *args, void *user_ctx);
#endif // CONFIG_ESP_HTTPS_OTA_DECRYPT_CB || __DOXYGEN__

/**
 * @brief OTA configuration
 */
typedef struct {
    const esp_http_client_config_t *http_config;   /*!< HTTP client configuration */
    http_client_init_cb_t http_client_init_cb;     /*!< Called once the HTTP client is initialised */
    bool bulk_flash_erase;                         /*!< Erase up front (image size or whole partition), not sector by sector */
    bool partial_http_download;                    /*!< Download the image over several Range requests */
    int max_http_request_size;                     /*!< Bytes per request with partial_http_download (0: 64 KB) */
    uint32_t buffer_caps;                          /*!< Memory capabilities of the OTA buffer (0: MALLOC_CAP_DEFAULT) */
    bool ota_resumption;                           /*!< Resume a download interrupted by a reboot */
    size_t ota_image_bytes_written;                /*!< Image bytes already in the staging partition, for ota_resumption */
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB || __DOXYGEN__
    decrypt_cb_t decrypt_cb;                       /*!< External decryption layer */
    void *decrypt_user_ctx;                        /*!< Its user context */
    uint16_t enc_img_header_size;                  /*!< Size of the pre-encrypted image's header */
#endif
    struct {
        const esp_partition_t *staging;             /*!< Downloaded into (NULL: the next OTA app partition) */
        const esp_partition_t *final;               /*!< Meant for (NULL: staging); its type decides the checks */
        bool finalize_with_copy;                    /*!< Copy staging to final at the end */
    } partition;                                    /*!< Staging and final partitions */
} esp_https_ota_config_t;

#define ESP_ERR_HTTPS_OTA_BASE            (0x9000)
#define ESP_ERR_HTTPS_OTA_IN_PROGRESS     (ESP_ERR_HTTPS_OTA_BASE + 1)  /* OTA operation in progress */

/**
 * @brief Whole OTA in one call: begin, perform until done, finish (abort on failure).
 * @return ESP_OK (reboot to run the new image), ESP_FAIL, ESP_ERR_INVALID_ARG,
 *         ESP_ERR_OTA_VALIDATE_FAILED, ESP_ERR_NO_MEM, ESP_ERR_FLASH_OP_TIMEOUT / _FAIL,
 *         ESP_ERR_HTTP_NOT_MODIFIED, ESP_ERR_NOT_SUPPORTED (ota_resumption), esp_ota_ops errors
 */
esp_err_t esp_https_ota(const esp_https_ota_config_t *ota_config);

/**
 * @brief Create the OTA context and connect (the response headers are read). *handle is NULL on error.
 * @return ESP_OK, ESP_FAIL, ESP_ERR_INVALID_ARG, ESP_ERR_HTTP_NOT_MODIFIED, esp_http_client errors
 */
esp_err_t esp_https_ota_begin(const esp_https_ota_config_t *ota_config, esp_https_ota_handle_t *handle);

/**
 * @brief One step: read from the HTTP stream and write to the OTA partition. Call in a loop.
 * @return ESP_ERR_HTTPS_OTA_IN_PROGRESS (call again), ESP_OK (all received), ESP_FAIL,
 *         ESP_ERR_INVALID_ARG, ESP_ERR_INVALID_VERSION (chip id or revision),
 *         ESP_ERR_OTA_VALIDATE_FAILED, ESP_ERR_NO_MEM, flash errors
 */
esp_err_t esp_https_ota_perform(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief Whether the whole image has been received (call before esp_https_ota_finish()).
 */
bool esp_https_ota_is_complete_data_received(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief Validate the image, switch the boot partition to it, close the connection and free the context.
 * @note Not to be called after esp_https_ota_abort().
 * @return ESP_OK, ESP_ERR_INVALID_STATE, ESP_ERR_INVALID_ARG, ESP_ERR_OTA_VALIDATE_FAILED
 */
esp_err_t esp_https_ota_finish(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief Give up: close the connection and free the context.
 * @note Not to be called after esp_https_ota_finish().
 * @return ESP_OK, ESP_ERR_INVALID_STATE, ESP_FAIL (not started), ESP_ERR_NOT_FOUND, ESP_ERR_INVALID_ARG
 */
esp_err_t esp_https_ota_abort(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief The new image's app description, between esp_https_ota_begin() and esp_https_ota_perform().
 * @return ESP_OK, ESP_ERR_INVALID_ARG, ESP_ERR_INVALID_STATE, ESP_FAIL
 */
esp_err_t esp_https_ota_get_img_desc(esp_https_ota_handle_t https_ota_handle, esp_app_desc_t *new_app_info);

/**
 * @brief The new image's bootloader description (final partition of type bootloader).
 * @return ESP_OK, ESP_ERR_INVALID_ARG, ESP_ERR_INVALID_STATE, ESP_FAIL
 */
esp_err_t esp_https_ota_get_bootloader_img_desc(esp_https_ota_handle_t https_ota_handle, esp_bootloader_desc_t *new_img_info);

/**
 * @brief Image bytes read so far (after esp_https_ota_perform() ran at least once); -1 on failure.
 */
int esp_https_ota_get_image_len_read(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief HTTP status code of the last response (after esp_https_ota_begin()); -1 on failure.
 */
int esp_https_ota_get_status_code(esp_https_ota_handle_t https_ota_handle);

/**
 * @brief Total image size (after esp_https_ota_begin()); -1 on failure or with a chunked response.
 */
int esp_https_ota_get_image_size(esp_https_ota_handle_t https_ota_handle);

#ifdef __cplusplus
}
#endif
