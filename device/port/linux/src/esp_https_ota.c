/*
 * Host port of ESP-IDF's esp_https_ota (components/esp_https_ota/src/esp_https_ota.c, v5.5.4).
 * ESP-IDF does not build the component for its linux target; this one follows the real code
 * step by step over the host port's esp_http_client (libcurl underneath) and esp_ota_ops (the
 * virtual board's flash): same states, return codes, events (ids and data) and log lines under
 * the tag "esp_https_ota".
 *
 * The code is split by concern (src/https_ota_priv.h lists the files): this file is begin,
 * finish, abort, the getters and the one-call esp_https_ota().
 *
 * Implemented as on the chip: http_config, http_client_init_cb, bulk_flash_erase,
 * partial_http_download (a HEAD for the size, then GETs with Range of max_http_request_size bytes,
 * the first one "bytes=0-<max-1>" and only when the image is larger than one request),
 * max_http_request_size, ota_resumption / ota_image_bytes_written, partition.staging / final /
 * finalize_with_copy, and decrypt_cb / decrypt_user_ctx / enc_img_header_size with
 * CONFIG_ESP_HTTPS_OTA_DECRYPT_CB (Kconfig default n, as in ESP-IDF). Redirects are followed with
 * esp_http_client_set_redirection(). CONFIG_ESP_HTTPS_OTA_ALLOW_HTTP decides whether a config
 * without cert_pem, use_global_ca_store or crt_bundle_attach is refused.
 *
 * Accepted but ignored:
 *  - buffer_caps: the host has one heap, so the OTA buffer is always malloc()'ed. On the chip
 *    heap_caps_malloc() with capabilities the chip lacks fails with ESP_ERR_NO_MEM; here it does not.
 *
 * Known differences from the chip:
 *  - No flash encryption: a resumption offset is not rounded down to 16 bytes.
 *  - The host port's esp_ota_begin() takes OTA app partitions only, so a data or bootloader
 *    staging partition fails at the first esp_https_ota_perform(); esp_https_ota_get_bootloader_img_desc()
 *    is there, but the virtual board's table has no bootloader partition to point it at.
 *  - A 401 ends the download: the host port's esp_http_client_add_auth() answers no challenge
 *    (ESP_ERR_NOT_SUPPORTED, as with ESP-IDF's default Kconfig), so begin fails with it.
 *  - Between Range requests of a partial download the keep-alive connection is reused by
 *    libcurl (v5.5.4 opens the request again on the same client, as here).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/param.h>

#include "esp_log.h"
#include "https_ota_priv.h"
#include "sdkconfig.h"

ESP_EVENT_DEFINE_BASE(ESP_HTTPS_OTA_EVENT);

static const char *TAG = HTTPS_OTA_TAG;

static const int DEFAULT_MAX_AUTH_RETRIES = 10;

static bool is_server_verification_enabled(const esp_https_ota_config_t *ota_config)
{
    return ota_config->http_config->cert_pem || ota_config->http_config->use_global_ca_store ||
           ota_config->http_config->crt_bundle_attach != NULL;
}

static void take_config(esp_https_ota_t *handle, const esp_https_ota_config_t *ota_config)
{
    handle->partial_http_download = ota_config->partial_http_download;
    handle->max_http_request_size = ota_config->max_http_request_size == 0 ? DEFAULT_REQUEST_SIZE
                                    : ota_config->max_http_request_size;
    handle->ota_resumption = ota_config->ota_resumption;
    handle->max_authorization_retries = ota_config->http_config->max_authorization_retries;
    if (handle->max_authorization_retries == 0) {
        handle->max_authorization_retries = DEFAULT_MAX_AUTH_RETRIES;
    } else if (handle->max_authorization_retries == -1) {
        handle->max_authorization_retries = 0;
    }
    /* Resumption only once at least one OTA buffer made it to flash. */
    if (ota_config->ota_resumption && ota_config->ota_image_bytes_written >= DEFAULT_OTA_BUF_SIZE) {
        handle->binary_file_len = (int)ota_config->ota_image_bytes_written;
        ESP_LOGD(TAG, "Resuming OTA from offset: %d", handle->binary_file_len);
    }
}

/* partial_http_download: a HEAD gives the image size, then the first GET asks for the first
 * max_http_request_size bytes (no Range when one request covers the image). */
static esp_err_t partial_download_start(esp_https_ota_t *handle, const esp_https_ota_config_t *ota_config)
{
    esp_http_client_set_method(handle->http_client, HTTP_METHOD_HEAD);
    esp_err_t err = esp_http_client_perform(handle->http_client);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "ESP HTTP client perform failed: %d", err);
        return err;
    }
    int status = esp_http_client_get_status_code(handle->http_client);
    if (status != HttpStatus_Ok) {
        ESP_LOGE(TAG, "Received incorrect http status %d", status);
        return ESP_FAIL;
    }
    handle->image_length = (int)esp_http_client_get_content_length(handle->http_client);
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    /* The pre-encrypted image's own header is not part of the image written to flash. */
    handle->image_length -= ota_config->enc_img_header_size;
#endif
    esp_http_client_close(handle->http_client);

    const int range_start = handle->binary_file_len;
    /* ESP-IDF's end is image_length (one past the last byte) when the rest fits in one request. */
    const int range_end = (handle->image_length > handle->max_http_request_size + range_start)
                          ? (range_start + handle->max_http_request_size - 1) : handle->image_length;
    if ((range_end - range_start) < handle->image_length) {
        err = https_ota_set_range_header(handle->http_client, range_start, range_end);
        if (err != ESP_OK) {
            return err;
        }
    }
    esp_http_client_set_method(handle->http_client, HTTP_METHOD_GET);
    return ESP_OK;
}

/* The server refused the resumption's Range (416, or a 200 to it): start again from byte 0. */
static esp_err_t restart_without_resumption(esp_https_ota_t *handle, esp_err_t err)
{
    ESP_LOGE(TAG, "OTA resumption failed with err: %d.", err);
    ESP_LOGI(TAG, "Falling back to OTA without resumption and restarting download from beginning");
    handle->ota_resumption = false;
    handle->binary_file_len = 0;
    esp_http_client_delete_header(handle->http_client, "Range");
    if (handle->partial_http_download && handle->image_length > handle->max_http_request_size) {
        err = https_ota_set_range_header(handle->http_client, 0, handle->max_http_request_size - 1);
        if (err != ESP_OK) {
            return err;
        }
    }
    esp_http_client_close(handle->http_client);
    esp_http_client_clear_response_buffer(handle->http_client);
    return https_ota_http_connect(handle);
}

static esp_err_t select_partitions(esp_https_ota_t *handle, const esp_https_ota_config_t *ota_config)
{
    handle->partition.staging = ota_config->partition.staging != NULL
                                ? esp_partition_verify(ota_config->partition.staging)
                                : esp_ota_get_next_update_partition(NULL);
    if (handle->partition.staging == NULL) {
        ESP_LOGE(TAG, "Given staging partition or another suitable Passive OTA partition could not be found");
        return ESP_FAIL;
    }
    ESP_LOGI(TAG, "Writing to <%s> partition at offset 0x%" PRIx32, handle->partition.staging->label,
             handle->partition.staging->address);

    if (ota_config->partition.final == NULL) {
        handle->partition.final = handle->partition.staging;
    } else if (ota_config->partition.staging != ota_config->partition.final) {
        const esp_partition_t *final = esp_partition_verify(ota_config->partition.final);
        if (final == NULL) {
            ESP_LOGE(TAG, "Given final partition not found");
            return ESP_FAIL;
        }
        handle->partition.final = final;
        handle->partition.finalize_with_copy = ota_config->partition.finalize_with_copy;
    }
    /* When the config names one partition as both staging and final, ESP-IDF (v5.5.4 and master)
     * leaves final NULL and the next call dereferences it: the chip panics, and so does this port. */
    return ESP_OK;
}

esp_err_t esp_https_ota_begin(const esp_https_ota_config_t *ota_config, esp_https_ota_handle_t *handle)
{
    https_ota_dispatch_event(ESP_HTTPS_OTA_START, NULL, 0);

    esp_err_t err;
    if (handle == NULL || ota_config == NULL || ota_config->http_config == NULL) {
        ESP_LOGE(TAG, "esp_https_ota_begin: Invalid argument");
        if (handle) {
            *handle = NULL;
        }
        return ESP_ERR_INVALID_ARG;
    }

    if (!is_server_verification_enabled(ota_config)) {
#if CONFIG_ESP_HTTPS_OTA_ALLOW_HTTP
        ESP_LOGW(TAG, "Continuing with insecure option because CONFIG_ESP_HTTPS_OTA_ALLOW_HTTP is set.");
#else
        ESP_LOGE(TAG, "No option for server verification is enabled in esp_http_client config.");
        *handle = NULL;
        return ESP_ERR_INVALID_ARG;
#endif
    }

#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    if (ota_config->decrypt_cb == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (ota_config->ota_resumption) {
        /* No resumption of a pre-encrypted image. */
        return ESP_ERR_NOT_SUPPORTED;
    }
#endif

    esp_https_ota_t *https_ota_handle = calloc(1, sizeof(esp_https_ota_t));
    if (!https_ota_handle) {
        ESP_LOGE(TAG, "Couldn't allocate memory to upgrade data buffer");
        *handle = NULL;
        return ESP_ERR_NO_MEM;
    }
    take_config(https_ota_handle, ota_config);

    https_ota_handle->http_client = esp_http_client_init(ota_config->http_config);
    if (https_ota_handle->http_client == NULL) {
        ESP_LOGE(TAG, "Failed to initialise HTTP connection");
        err = ESP_FAIL;
        goto failure;
    }

    if (ota_config->http_client_init_cb) {
        err = ota_config->http_client_init_cb(https_ota_handle->http_client);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "http_client_init_cb returned 0x%x", err);
            goto http_cleanup;
        }
    }

    /* A resumption asks for the rest of the image first, so a server without Range support
     * is found out at once ("bytes=0-" when starting afresh). */
    if (https_ota_handle->ota_resumption && !https_ota_handle->partial_http_download) {
        err = https_ota_set_range_header(https_ota_handle->http_client, https_ota_handle->binary_file_len, -1);
        if (err != ESP_OK) {
            goto http_cleanup;
        }
    }

    if (https_ota_handle->partial_http_download) {
        err = partial_download_start(https_ota_handle, ota_config);
        if (err != ESP_OK) {
            goto http_cleanup;
        }
    }

    err = https_ota_http_connect(https_ota_handle);
    if (err == ESP_ERR_HTTP_RANGE_NOT_SATISFIABLE && https_ota_handle->ota_resumption) {
        err = restart_without_resumption(https_ota_handle, err);
    }
    if (err != ESP_OK) {
        if (err != ESP_ERR_HTTP_NOT_MODIFIED) {
            ESP_LOGE(TAG, "Failed to establish HTTP connection");
        }
        goto http_cleanup;
    }
    https_ota_dispatch_event(ESP_HTTPS_OTA_CONNECTED, NULL, 0);

    if (!https_ota_handle->partial_http_download) {
        https_ota_handle->image_length = (int)esp_http_client_get_content_length(https_ota_handle->http_client);
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
        https_ota_handle->image_length -= ota_config->enc_img_header_size;
#endif
    }

    ESP_LOGI(TAG, "Starting OTA...");
    err = select_partitions(https_ota_handle, ota_config);
    if (err != ESP_OK) {
        goto http_cleanup;
    }

    /* buffer_caps is ignored: one heap on the host (see the file header). */
    const int alloc_size = MAX(ota_config->http_config->buffer_size, DEFAULT_OTA_BUF_SIZE);
    https_ota_handle->ota_upgrade_buf = malloc(alloc_size);
    if (!https_ota_handle->ota_upgrade_buf) {
        ESP_LOGE(TAG, "Couldn't allocate memory to upgrade data buffer");
        err = ESP_ERR_NO_MEM;
        goto http_cleanup;
    }
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    https_ota_handle->decrypt_cb = ota_config->decrypt_cb;
    https_ota_handle->decrypt_user_ctx = ota_config->decrypt_user_ctx;
    https_ota_handle->enc_img_header_size = ota_config->enc_img_header_size;
#endif
    https_ota_handle->ota_upgrade_buf_size = alloc_size;
    https_ota_handle->bulk_flash_erase = ota_config->bulk_flash_erase;
    *handle = (esp_https_ota_handle_t)https_ota_handle;
    https_ota_handle->state = https_ota_handle->binary_file_len ? ESP_HTTPS_OTA_RESUME : ESP_HTTPS_OTA_BEGIN;
    return ESP_OK;

http_cleanup:
    https_ota_http_cleanup(https_ota_handle->http_client);
failure:
    free(https_ota_handle);
    *handle = NULL;
    return err;
}

/* The flash update (if begun) is ended with `end`, then the buffer and the client go. */
static esp_err_t release(esp_https_ota_t *handle, esp_err_t (*end)(esp_ota_handle_t), esp_err_t invalid_state_err)
{
    esp_err_t err = ESP_OK;
    switch (handle->state) {
    case ESP_HTTPS_OTA_SUCCESS:
    case ESP_HTTPS_OTA_IN_PROGRESS:
        err = end(handle->update_handle);
        /* falls through */
    case ESP_HTTPS_OTA_BEGIN:
    case ESP_HTTPS_OTA_RESUME:
        free(handle->ota_upgrade_buf);
        if (handle->http_client) {
            https_ota_http_cleanup(handle->http_client);
        }
        break;
    default:
        err = invalid_state_err;
        ESP_LOGE(TAG, "Invalid ESP HTTPS OTA State");
        break;
    }
    return err;
}

esp_err_t esp_https_ota_finish(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (handle->state < ESP_HTTPS_OTA_BEGIN) {
        return ESP_FAIL;
    }

    /* esp_ota_end() validates the whole image; an unknown state is only logged here. */
    esp_err_t err = release(handle, esp_ota_end, ESP_OK);

    /* Only a complete download (state SUCCESS) switches the boot partition, and never to a
     * factory partition: that would erase otadata, the app may do it itself. */
    if (handle->partition.final->type == ESP_PARTITION_TYPE_APP && err == ESP_OK &&
        handle->state == ESP_HTTPS_OTA_SUCCESS) {
        if (handle->partition.final->subtype >= ESP_PARTITION_SUBTYPE_APP_OTA_0 &&
            handle->partition.final->subtype < ESP_PARTITION_SUBTYPE_APP_OTA_MAX) {
            err = esp_ota_set_boot_partition(handle->partition.staging);
        }
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_ota_set_boot_partition failed! err=0x%x", err);
        } else {
            https_ota_dispatch_event(ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION, &handle->partition.final->subtype,
                                     sizeof(esp_partition_subtype_t));
        }
    }
    free(handle);
    https_ota_dispatch_event(ESP_HTTPS_OTA_FINISH, NULL, 0);
    return err;
}

esp_err_t esp_https_ota_abort(esp_https_ota_handle_t https_ota_handle)
{
    https_ota_dispatch_event(ESP_HTTPS_OTA_ABORT, NULL, 0);

    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (handle->state < ESP_HTTPS_OTA_BEGIN) {
        return ESP_FAIL;
    }
    esp_err_t err = release(handle, esp_ota_abort, ESP_ERR_INVALID_STATE);
    free(handle);
    return err;
}

int esp_https_ota_get_status_code(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL || handle->http_client == NULL) {
        return -1;
    }
    return esp_http_client_get_status_code(handle->http_client);
}

int esp_https_ota_get_image_len_read(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL || handle->state < ESP_HTTPS_OTA_IN_PROGRESS) {
        return -1;
    }
    return handle->binary_file_len;
}

int esp_https_ota_get_image_size(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL || handle->state < ESP_HTTPS_OTA_BEGIN) {
        return -1;
    }
    return handle->image_length;
}

esp_err_t esp_https_ota(const esp_https_ota_config_t *ota_config)
{
    if (ota_config == NULL || ota_config->http_config == NULL) {
        ESP_LOGE(TAG, "esp_https_ota: Invalid argument");
        return ESP_ERR_INVALID_ARG;
    }
    if (ota_config->ota_resumption) {
        ESP_LOGE(TAG, "OTA resumption is not supported in esp_https_ota API");
        return ESP_ERR_NOT_SUPPORTED;
    }

    esp_https_ota_handle_t https_ota_handle = NULL;
    esp_err_t err = esp_https_ota_begin(ota_config, &https_ota_handle);
    if (err != ESP_OK) {
        return err;
    }
    if (https_ota_handle == NULL) {
        return ESP_FAIL;
    }
    do {
        err = esp_https_ota_perform(https_ota_handle);
    } while (err == ESP_ERR_HTTPS_OTA_IN_PROGRESS);

    if (err != ESP_OK) {
        esp_https_ota_abort(https_ota_handle);
        return err;
    }
    return esp_https_ota_finish(https_ota_handle);
}
