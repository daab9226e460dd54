/*
 * Host port of esp_https_ota (see esp_https_ota.c): talking to the server. Everything goes
 * through the host port's esp_http_client API, as components/esp_https_ota/src/esp_https_ota.c
 * (v5.5.4) does on the chip: open, write the post field, fetch_headers, then the status code
 * decides (redirect, 401 retry, 304, 416, 4xx, 5xx). Also the Range header and the events.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "esp_event.h"
#include "esp_log.h"
#include "https_ota_priv.h"
#include "sdkconfig.h"

static const char *TAG = HTTPS_OTA_TAG;

#if CONFIG_ESP_HTTPS_OTA_EVENT_POST_TIMEOUT == -1
#define ESP_HTTPS_OTA_EVENT_POST_TIMEOUT portMAX_DELAY
#else
#define ESP_HTTPS_OTA_EVENT_POST_TIMEOUT pdMS_TO_TICKS(CONFIG_ESP_HTTPS_OTA_EVENT_POST_TIMEOUT)
#endif

/* Names for the "Failed to post" log line, indexed by esp_https_ota_event_t. */
static const char *ota_event_name_table[] = {
    "ESP_HTTPS_OTA_START",
    "ESP_HTTPS_OTA_CONNECTED",
    "ESP_HTTPS_OTA_GET_IMG_DESC",
    "ESP_HTTPS_OTA_VERIFY_CHIP_ID",
    "ESP_HTTPS_OTA_VERIFY_CHIP_REVISION",
    "ESP_HTTPS_OTA_DECRYPT_CB",
    "ESP_HTTPS_OTA_WRITE_FLASH",
    "ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION",
    "ESP_HTTPS_OTA_FINISH",
    "ESP_HTTPS_OTA_ABORT",
};

void https_ota_dispatch_event(int32_t event_id, const void *event_data, size_t event_data_size)
{
    if (esp_event_post(ESP_HTTPS_OTA_EVENT, event_id, event_data, event_data_size,
                       ESP_HTTPS_OTA_EVENT_POST_TIMEOUT) != ESP_OK) {
        ESP_LOGE(TAG, "Failed to post https_ota event: %s", ota_event_name_table[event_id]);
    }
}

static bool redirection_required(int status_code)
{
    switch (status_code) {
    case HttpStatus_MovedPermanently:
    case HttpStatus_Found:
    case HttpStatus_SeeOther:
    case HttpStatus_TemporaryRedirect:
    case HttpStatus_PermanentRedirect:
        return true;
    default:
        return false;
    }
}

/* Statuses after which the same request is sent again: redirects and 401. */
static bool process_again(int status_code)
{
    return redirection_required(status_code) || status_code == HttpStatus_Unauthorized;
}

static esp_err_t http_handle_response_code(esp_https_ota_t *handle, int status_code)
{
    esp_err_t err;
    if (redirection_required(status_code)) {
        err = esp_http_client_set_redirection(handle->http_client);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "URL redirection Failed");
            return err;
        }
    } else if (status_code == HttpStatus_NotModified) {
        ESP_LOGI(TAG, "OTA image not modified since last request (status code: %d)", status_code);
        return ESP_ERR_HTTP_NOT_MODIFIED;
    } else if (status_code == HttpStatus_RangeNotSatisfiable) {
        ESP_LOGI(TAG, "Requested range is incorrect (status code: %d)", status_code);
        return ESP_ERR_HTTP_RANGE_NOT_SATISFIABLE;
    } else if (status_code == HttpStatus_Unauthorized) {
        if (handle->max_authorization_retries == 0) {
            /* ESP-IDF prints the status code here, not the retry count. */
            ESP_LOGE(TAG, "Reached max_authorization_retries (%d)", status_code);
            return ESP_FAIL;
        }
        handle->max_authorization_retries--;
        err = esp_http_client_add_auth(handle->http_client);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "Authorization Failed");
            return err;
        }
    } else if (status_code == HttpStatus_NotFound || status_code == HttpStatus_Forbidden) {
        ESP_LOGE(TAG, "File not found(%d)", status_code);
        return ESP_FAIL;
    } else if (status_code >= HttpStatus_BadRequest && status_code < HttpStatus_InternalError) {
        ESP_LOGE(TAG, "Client error (%d)", status_code);
        return ESP_FAIL;
    } else if (status_code >= HttpStatus_InternalError) {
        ESP_LOGE(TAG, "Server error (%d)", status_code);
        return ESP_FAIL;
    } else if (handle->ota_resumption && status_code != HttpStatus_PartialContent) {
        /* v5.5.4 skips this for partial_http_download only under a Kconfig option it does not
         * define yet, so a resumption needs a 206 in both modes. */
        ESP_LOGW(TAG, "Server ignored the requested Range header");
        ESP_LOGW(TAG, "OTA resumption requires server with range request support.");
        return ESP_ERR_HTTP_RANGE_NOT_SATISFIABLE;
    }

    if (process_again(status_code)) {
        /* The redirect's (or 401's) body is read out so the next request starts clean. */
        char upgrade_data_buf[256];
        while (esp_http_client_read(handle->http_client, upgrade_data_buf, sizeof(upgrade_data_buf)) > 0) {
        }
    }
    return ESP_OK;
}

esp_err_t https_ota_http_connect(esp_https_ota_t *handle)
{
    esp_err_t err;
    int status_code;
    do {
        /* A post field set by http_client_init_cb is sent (not with partial_http_download). */
        char *post_data = NULL;
        int post_len = esp_http_client_get_post_field(handle->http_client, &post_data);
        err = esp_http_client_open(handle->http_client, post_len);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "Failed to open HTTP connection: %s", esp_err_to_name(err));
            return err;
        }
        while (post_len > 0) {
            int write_len = esp_http_client_write(handle->http_client, post_data, post_len);
            if (write_len < 0) {
                ESP_LOGE(TAG, "Write failed");
                return ESP_FAIL;
            }
            post_len -= write_len;
            post_data += write_len;
        }
        int64_t header_ret = esp_http_client_fetch_headers(handle->http_client);
        if (header_ret < 0) {
            return (esp_err_t)header_ret;
        }
        status_code = esp_http_client_get_status_code(handle->http_client);
        err = http_handle_response_code(handle, status_code);
        if (err != ESP_OK) {
            return err;
        }
    } while (process_again(status_code));
    return err;
}

void https_ota_http_cleanup(esp_http_client_handle_t client)
{
    esp_http_client_close(client);
    esp_http_client_cleanup(client);
}

esp_err_t https_ota_set_range_header(esp_http_client_handle_t client, int first, int last)
{
    char *header_val = NULL;
    int len = last < 0 ? asprintf(&header_val, "bytes=%d-", first) : asprintf(&header_val, "bytes=%d-%d", first, last);
    if (len < 0 || header_val == NULL) {
        ESP_LOGE(TAG, "Failed to allocate memory for HTTP header");
        return ESP_ERR_NO_MEM;
    }
    esp_http_client_set_header(client, "Range", header_val);
    free(header_val);
    return ESP_OK;
}
