/*
 * Host port of esp_https_ota (see esp_https_ota.c): esp_https_ota_perform(), step by step as in
 * components/esp_https_ota/src/esp_https_ota.c (v5.5.4). The first call starts the flash update
 * (esp_ota_begin, or esp_ota_resume) and writes the image header once the chip id and revision
 * pass; each later call reads up to one OTA buffer from the stream and writes it. With
 * partial_http_download, the call that reaches the end of one Range response sends the request
 * for the next max_http_request_size bytes.
 */
#include <errno.h>
#include <stdlib.h>

#include "esp_log.h"
#include "https_ota_priv.h"
#include "sdkconfig.h"

static const char *TAG = HTTPS_OTA_TAG;

#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
static esp_err_t https_ota_decrypt_cb(esp_https_ota_t *handle, decrypt_cb_arg_t *args)
{
    https_ota_dispatch_event(ESP_HTTPS_OTA_DECRYPT_CB, NULL, 0);

    esp_err_t ret = handle->decrypt_cb(args, handle->decrypt_user_ctx);
    if (ret != ESP_OK) {
        ESP_LOGE(TAG, "Decrypt callback failed %d", ret);
        return ret;
    }
    if (args->data_out_len > 0) {
        return ESP_OK;
    }
    /* Nothing decrypted yet (the callback is buffering). ESP-IDF (v5.5.4 and master) returns the
     * state value ESP_HTTPS_OTA_IN_PROGRESS (2) here, not ESP_ERR_HTTPS_OTA_IN_PROGRESS, so
     * esp_https_ota_perform() returns 2 and a caller's loop stops: kept, as the chip does it. */
    return ESP_HTTPS_OTA_IN_PROGRESS;
}
#endif

static esp_err_t ota_write(esp_https_ota_t *handle, const void *buffer, size_t buf_len)
{
    if (buffer == NULL || handle == NULL) {
        return ESP_FAIL;
    }
    esp_err_t err = esp_ota_write(handle->update_handle, buffer, buf_len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "Error: esp_ota_write failed! err=0x%x", err);
    } else {
        handle->binary_file_len += buf_len;
        ESP_LOGD(TAG, "Written image length %d", handle->binary_file_len);
        err = ESP_ERR_HTTPS_OTA_IN_PROGRESS;
    }
    /* Posted after a failed write too, as on the chip, with the length written so far. */
    https_ota_dispatch_event(ESP_HTTPS_OTA_WRITE_FLASH, &handle->binary_file_len, sizeof(int));
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    free((void *)buffer); /* the callback's data_out */
#endif
    return err;
}

static bool final_is_image(const esp_https_ota_t *handle)
{
    return handle->partition.final->type == ESP_PARTITION_TYPE_APP ||
           handle->partition.final->type == ESP_PARTITION_TYPE_BOOTLOADER;
}

/* State BEGIN: esp_ota_begin(), then the header (already read by get_img_desc, or read now) is
 * checked and written. */
static esp_err_t perform_begin(esp_https_ota_t *handle, size_t erase_size)
{
    esp_err_t err = esp_ota_begin(handle->partition.staging, erase_size, &handle->update_handle);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_begin failed (%s)", esp_err_to_name(err));
        return err;
    }
    esp_ota_set_final_partition(handle->update_handle, handle->partition.final, handle->partition.finalize_with_copy);
    handle->state = ESP_HTTPS_OTA_IN_PROGRESS;

    /* A data partition has no image header to check. */
    if (!final_is_image(handle)) {
        return ESP_ERR_HTTPS_OTA_IN_PROGRESS;
    }
    int binary_file_len = 0;
    if (handle->binary_file_len) {
        binary_file_len = handle->binary_file_len;
    } else {
        if (https_ota_read_header(handle) != ESP_OK) {
            return ESP_FAIL;
        }
        binary_file_len = IMAGE_HEADER_SIZE;
    }
    /* ota_write() counts these bytes again as it writes them. */
    handle->binary_file_len = 0;

    const void *data_buf = handle->ota_upgrade_buf;
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    decrypt_cb_arg_t args = {};
    args.data_in = handle->ota_upgrade_buf;
    args.data_in_len = binary_file_len;
    err = https_ota_decrypt_cb(handle, &args);
    if (err == ESP_OK) {
        data_buf = args.data_out;
        binary_file_len = args.data_out_len;
    } else {
        ESP_LOGE(TAG, "Decryption of image header failed");
        return ESP_FAIL;
    }
#endif
    err = https_ota_verify_chip_id(data_buf);
    if (err != ESP_OK) {
        return err;
    }
    err = https_ota_verify_chip_revision(data_buf);
    if (err != ESP_OK) {
        return err;
    }
    return ota_write(handle, data_buf, binary_file_len);
}

/* State IN_PROGRESS: one read. ESP_OK once the current response has ended (the state then says
 * whether the image is complete), ESP_ERR_HTTPS_OTA_IN_PROGRESS after a write or a read timeout. */
static esp_err_t perform_read(esp_https_ota_t *handle)
{
    int data_read = esp_http_client_read(handle->http_client, handle->ota_upgrade_buf, handle->ota_upgrade_buf_size);
    if (data_read == 0) {
        if (!esp_http_client_is_complete_data_received(handle->http_client)) {
            ESP_LOGE(TAG, "Connection closed before complete data was received!");
            return ESP_FAIL;
        }
        ESP_LOGD(TAG, "Connection closed");
    } else if (data_read > 0) {
        const void *data_buf = handle->ota_upgrade_buf;
        int data_len = data_read;
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
        decrypt_cb_arg_t args = {};
        args.data_in = handle->ota_upgrade_buf;
        args.data_in_len = data_read;
        esp_err_t err = https_ota_decrypt_cb(handle, &args);
        if (err != ESP_OK) {
            return err;
        }
        data_buf = args.data_out;
        data_len = args.data_out_len;
#endif
        return ota_write(handle, data_buf, data_len);
    } else {
        if (data_read == -ESP_ERR_HTTP_EAGAIN) {
            ESP_LOGD(TAG, "ESP_ERR_HTTP_EAGAIN invoked: Call timed out before data was ready");
            return ESP_ERR_HTTPS_OTA_IN_PROGRESS;
        }
        ESP_LOGE(TAG, "data read %d, errno %d", data_read, errno);
        return ESP_FAIL;
    }
    if (!handle->partial_http_download || handle->image_length == handle->binary_file_len) {
        handle->state = ESP_HTTPS_OTA_SUCCESS;
    }
    return ESP_OK;
}

/* partial_http_download: the request for the next max_http_request_size bytes (the rest of the
 * image when fewer are left). */
static esp_err_t request_next_range(esp_https_ota_t *handle)
{
    /* Without keep-alive the connection is closed; with it, esp_http_client_open() reuses it. */
    if (!esp_http_client_is_persistent_connection(handle->http_client)) {
        esp_http_client_close(handle->http_client);
    }
    int header_size = 0;
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    header_size = handle->enc_img_header_size;
#endif
    const int first = handle->binary_file_len + header_size;
    const int last = (handle->image_length - handle->binary_file_len) > handle->max_http_request_size
                     ? first + handle->max_http_request_size - 1 : -1;
    if (https_ota_set_range_header(handle->http_client, first, last) != ESP_OK) {
        return ESP_ERR_NO_MEM;
    }
    if (https_ota_http_connect(handle) != ESP_OK) {
        ESP_LOGE(TAG, "Failed to establish HTTP connection");
        return ESP_FAIL;
    }
    ESP_LOGD(TAG, "Connection start");
    return ESP_ERR_HTTPS_OTA_IN_PROGRESS;
}

esp_err_t esp_https_ota_perform(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL) {
        ESP_LOGE(TAG, "esp_https_ota_perform: Invalid argument");
        return ESP_ERR_INVALID_ARG;
    }
    if (handle->state < ESP_HTTPS_OTA_BEGIN) {
        ESP_LOGE(TAG, "esp_https_ota_perform: Invalid state");
        return ESP_FAIL;
    }

    esp_err_t err;
    const size_t erase_size = handle->bulk_flash_erase
                              ? (handle->image_length > 0 ? (size_t)handle->image_length : OTA_SIZE_UNKNOWN)
                              : OTA_WITH_SEQUENTIAL_WRITES;
    switch (handle->state) {
    case ESP_HTTPS_OTA_BEGIN:
        return perform_begin(handle, erase_size);
    case ESP_HTTPS_OTA_RESUME:
        ESP_LOGD(TAG, "OTA resumption case");
        err = esp_ota_resume(handle->partition.staging, erase_size, handle->binary_file_len, &handle->update_handle);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_ota_resume failed (%s)", esp_err_to_name(err));
            return err;
        }
        esp_ota_set_final_partition(handle->update_handle, handle->partition.final,
                                    handle->partition.finalize_with_copy);
        handle->state = ESP_HTTPS_OTA_IN_PROGRESS;
        /* falls through */
    case ESP_HTTPS_OTA_IN_PROGRESS:
        err = perform_read(handle);
        if (err != ESP_OK) {
            return err;
        }
        break;
    default:
        ESP_LOGE(TAG, "Invalid ESP HTTPS OTA State");
        return ESP_FAIL;
    }
    if (handle->partial_http_download && handle->state == ESP_HTTPS_OTA_IN_PROGRESS &&
        handle->image_length > handle->binary_file_len) {
        return request_next_range(handle);
    }
    return ESP_OK;
}

bool esp_https_ota_is_complete_data_received(esp_https_ota_handle_t https_ota_handle)
{
    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle->partial_http_download) {
        return handle->image_length == handle->binary_file_len;
    }
    return esp_http_client_is_complete_data_received(handle->http_client);
}
