/*
 * Host port of esp_https_ota (see esp_https_ota.c): the image itself. The first
 * IMAGE_HEADER_SIZE bytes are read before anything is written, so the app (or bootloader)
 * description can be handed out and the chip id and revision checked, as
 * components/esp_https_ota/src/esp_https_ota.c (v5.5.4) does; the full image verification
 * (segments, checksum, SHA-256) is esp_ota_end()'s, in esp_ota_ops.c.
 */
#include <errno.h>
#include <string.h>

#include "bootloader_common.h"
#include "esp_app_format.h"
#include "esp_log.h"
#include "https_ota_priv.h"
#include "sdkconfig.h"

static const char *TAG = HTTPS_OTA_TAG;

esp_err_t https_ota_read_header(esp_https_ota_t *handle)
{
    /* The header may come in several reads; a read that times out is simply tried again. */
    int data_read_size = IMAGE_HEADER_SIZE;
    int data_read = 0, bytes_read = 0;
    while (data_read_size > 0 && !esp_http_client_is_complete_data_received(handle->http_client)) {
        data_read = esp_http_client_read(handle->http_client, handle->ota_upgrade_buf + bytes_read, data_read_size);
        if (data_read < 0) {
            if (data_read == -ESP_ERR_HTTP_EAGAIN) {
                ESP_LOGD(TAG, "ESP_ERR_HTTP_EAGAIN invoked: Call timed out before data was ready");
                continue;
            }
            ESP_LOGE(TAG, "Connection closed, errno = %d", errno);
            break;
        }
        data_read_size -= data_read;
        bytes_read += data_read;
    }
    if (data_read_size > 0) {
        ESP_LOGE(TAG, "Complete headers were not received");
        return ESP_FAIL;
    }
    handle->binary_file_len = bytes_read;
    return ESP_OK;
}

/* esp_app_desc_t (final partition of type app) or esp_bootloader_desc_t (type bootloader): from
 * flash once perform has written it, else from the header read here. */
static esp_err_t get_description_from_image(esp_https_ota_handle_t https_ota_handle, void *new_img_info)
{
    https_ota_dispatch_event(ESP_HTTPS_OTA_GET_IMG_DESC, NULL, 0);

#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    /* An encrypted image's description is the decrypt callback's business. */
    return ESP_ERR_NOT_SUPPORTED;
#endif

    esp_https_ota_t *handle = (esp_https_ota_t *)https_ota_handle;
    if (handle == NULL || new_img_info == NULL) {
        ESP_LOGE(TAG, "esp_https_ota_get_img_desc: Invalid argument");
        return ESP_ERR_INVALID_ARG;
    }
    if (handle->state < ESP_HTTPS_OTA_BEGIN) {
        ESP_LOGE(TAG, "esp_https_ota_get_img_desc: Invalid state");
        return ESP_ERR_INVALID_STATE;
    }

    unsigned img_info_len = 0;
    if (handle->partition.final->type == ESP_PARTITION_TYPE_APP) {
        img_info_len = sizeof(esp_app_desc_t);
    } else if (handle->partition.final->type == ESP_PARTITION_TYPE_BOOTLOADER) {
        img_info_len = sizeof(esp_bootloader_desc_t);
    } else {
        ESP_LOGE(TAG, "This partition type (%d) is not supported", handle->partition.final->type);
        return ESP_FAIL;
    }

    const int offset = sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t);
    void *img_info = NULL;
    if (handle->binary_file_len >= (int)(offset + img_info_len)) {
        esp_err_t ret = esp_partition_read(handle->partition.staging, offset, handle->ota_upgrade_buf, img_info_len);
        if (ret != ESP_OK) {
            /* ESP_RETURN_ON_ERROR's line */
            ESP_LOGE(TAG, "%s(%d): partition read failed %d", __func__, __LINE__, ret);
            return ret;
        }
        img_info = handle->ota_upgrade_buf;
    } else {
        if (https_ota_read_header(handle) != ESP_OK) {
            return ESP_FAIL;
        }
        img_info = &handle->ota_upgrade_buf[offset];
    }

    if (handle->partition.final->type == ESP_PARTITION_TYPE_APP) {
        const esp_app_desc_t *app_info = img_info;
        if (app_info->magic_word != ESP_APP_DESC_MAGIC_WORD) {
            ESP_LOGE(TAG, "Incorrect app descriptor magic");
            return ESP_FAIL;
        }
    } else {
        const esp_bootloader_desc_t *bootloader_info = img_info;
        if (bootloader_info->magic_byte != ESP_BOOTLOADER_DESC_MAGIC_BYTE) {
            ESP_LOGE(TAG, "Incorrect bootloader descriptor magic");
            return ESP_FAIL;
        }
    }
    memcpy(new_img_info, img_info, img_info_len);
    return ESP_OK;
}

esp_err_t esp_https_ota_get_img_desc(esp_https_ota_handle_t https_ota_handle, esp_app_desc_t *new_app_info)
{
    return get_description_from_image(https_ota_handle, new_app_info);
}

esp_err_t esp_https_ota_get_bootloader_img_desc(esp_https_ota_handle_t https_ota_handle,
                                                esp_bootloader_desc_t *new_img_info)
{
    return get_description_from_image(https_ota_handle, new_img_info);
}

esp_err_t https_ota_verify_chip_id(const void *image_header)
{
    const esp_image_header_t *data = image_header;
    https_ota_dispatch_event(ESP_HTTPS_OTA_VERIFY_CHIP_ID, &data->chip_id, sizeof(esp_chip_id_t));

    if (data->chip_id != CONFIG_IDF_FIRMWARE_CHIP_ID) {
        ESP_LOGE(TAG, "Mismatch chip id, expected %d, found %d", CONFIG_IDF_FIRMWARE_CHIP_ID, data->chip_id);
        return ESP_ERR_INVALID_VERSION;
    }
    return ESP_OK;
}

esp_err_t https_ota_verify_chip_revision(const void *image_header)
{
    const esp_image_header_t *data = image_header;
    https_ota_dispatch_event(ESP_HTTPS_OTA_VERIFY_CHIP_REVISION, &data->min_chip_rev_full, sizeof(uint16_t));

    if (!bootloader_common_check_chip_revision_validity(data, true)) {
        return ESP_ERR_INVALID_VERSION;
    }
    return ESP_OK;
}
