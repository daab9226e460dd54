/*
 * The update itself, written the way ESP-IDF's examples/system/ota/advanced_https_ota does it:
 * esp_https_ota_begin(), a look at the new image's description before anything is written, the
 * esp_https_ota_perform() loop, a check that the whole image arrived, esp_https_ota_finish().
 * Errors are handed back to the ota_agent component, which reports them.
 */
#include <string.h>
#include "esp_app_desc.h"
#include "esp_event.h"
#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "sdkconfig.h"
#include "https_installer.h"

static const char *TAG = "https_installer";

/* The status of the last response: esp_https_ota_begin() cleans its HTTP client up when the server
   refuses, so the status is taken while the client still exists, from HTTP_EVENT_DISCONNECTED (which
   esp_http_client_close() sends during that clean-up). HTTP_EVENT_ON_HEADER comes too early: the client
   sets its status code once all headers are parsed. */
static int s_last_status;

static esp_err_t on_http_event(esp_http_client_event_t *event)
{
    if (event->event_id == HTTP_EVENT_DISCONNECTED) {
        s_last_status = esp_http_client_get_status_code(event->client);
    }
    return ESP_OK;
}

static void on_ota_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    switch (id) {
    case ESP_HTTPS_OTA_START:
        ESP_LOGI(TAG, "OTA started");
        break;
    case ESP_HTTPS_OTA_CONNECTED:
        ESP_LOGI(TAG, "Connected to server");
        break;
    case ESP_HTTPS_OTA_GET_IMG_DESC:
        ESP_LOGI(TAG, "Reading image description");
        break;
    case ESP_HTTPS_OTA_VERIFY_CHIP_ID:
        ESP_LOGI(TAG, "Verifying chip id of new image: %d", *(esp_chip_id_t *)data);
        break;
    case ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION:
        ESP_LOGI(TAG, "Boot partition updated. Next partition: %d", *(esp_partition_subtype_t *)data);
        break;
    case ESP_HTTPS_OTA_FINISH:
        ESP_LOGI(TAG, "OTA finish");
        break;
    case ESP_HTTPS_OTA_ABORT:
        ESP_LOGI(TAG, "OTA abort");
        break;
    default:
        break;
    }
}

esp_err_t https_installer_init(void)
{
    return esp_event_handler_register(ESP_HTTPS_OTA_EVENT, ESP_EVENT_ANY_ID, on_ota_event, NULL);
}

/* Fails the update with a reason of the protocol (docs/protocol.md) where the error does not say it. */
static esp_err_t fail(ota_agent_install_result_t *result, const char *reason, const char *detail, esp_err_t err)
{
    result->reason = reason;
    result->detail = detail;
    return err;
}

/* Like advanced_https_ota's validate_image_header(): the same version is not installed again. */
static esp_err_t check_new_version(esp_https_ota_handle_t ota, ota_agent_install_result_t *result)
{
    esp_app_desc_t incoming;
    esp_err_t err = esp_https_ota_get_img_desc(ota, &incoming);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_https_ota_get_img_desc failed: %s", esp_err_to_name(err));
        return fail(result, "invalid_image", "no image header and description at the start of the download", err);
    }
    const esp_app_desc_t *running = esp_app_get_description();
    ESP_LOGI(TAG, "Running firmware version: %s, new: %.32s", running->version, incoming.version);
    if (memcmp(incoming.version, running->version, sizeof(incoming.version)) == 0) {
        ESP_LOGW(TAG, "Current running version is the same as the new one; not updating");
        return fail(result, "same_version", "the image is the running version", ESP_FAIL);
    }
    return ESP_OK;
}

/* esp_https_ota_perform() until the image is written, reporting progress; the agent's cancel stops it. */
static esp_err_t download(esp_https_ota_handle_t ota, ota_agent_install_result_t *result)
{
    int size = esp_https_ota_get_image_size(ota); /* -1 when the server sent no length */
    esp_err_t err;
    while ((err = esp_https_ota_perform(ota)) == ESP_ERR_HTTPS_OTA_IN_PROGRESS) {
        int read = esp_https_ota_get_image_len_read(ota);
        ota_agent_report_progress((size_t)read, size > 0 ? (size_t)size : 0);
        if (ota_agent_cancel_requested()) {
            return fail(result, "cancelled", "cancelled by command", ESP_ERR_INVALID_STATE);
        }
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_https_ota_perform failed: %s", esp_err_to_name(err));
        return err; /* ESP_ERR_INVALID_VERSION: another chip; ESP_ERR_OTA_VALIDATE_FAILED: not an image */
    }
    ota_agent_report_progress((size_t)esp_https_ota_get_image_len_read(ota), size > 0 ? (size_t)size : 0);
    if (!esp_https_ota_is_complete_data_received(ota)) {
        ESP_LOGE(TAG, "Complete data was not received.");
        return fail(result, "connect_failed", "the connection ended before the whole image arrived", ESP_FAIL);
    }
    return ESP_OK;
}

esp_err_t https_installer_install(const ota_agent_update_t *update, ota_agent_install_result_t *result,
                                  void *user_ctx)
{
    esp_http_client_config_t http = {
        .url = update->url,
        .cert_pem = update->ca_cert_pem,
        .timeout_ms = CONFIG_APP_OTA_RECV_TIMEOUT_MS,
        .keep_alive_enable = true,
        .event_handler = on_http_event,
    };
    esp_https_ota_config_t config = {
        .http_config = &http,
#if CONFIG_APP_OTA_PARTIAL_HTTP_DOWNLOAD
        .partial_http_download = true,
        .max_http_request_size = CONFIG_APP_OTA_HTTP_REQUEST_SIZE,
#endif
    };
    s_last_status = 0;
    esp_https_ota_handle_t ota = NULL;
    esp_err_t err = esp_https_ota_begin(&config, &ota);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "ESP HTTPS OTA Begin failed: %s", esp_err_to_name(err));
        if (s_last_status >= 300) {
            result->http_status = s_last_status;
            return fail(result, "http_status", "the server did not serve the image", err);
        }
        return err; /* the agent names connection and TLS failures */
    }
    err = check_new_version(ota, result);
    if (err == ESP_OK) {
        err = download(ota, result);
    }
    if (err != ESP_OK) {
        esp_https_ota_abort(ota);
        return err;
    }
    err = esp_https_ota_finish(ota);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "ESP_HTTPS_OTA upgrade failed: %s", esp_err_to_name(err));
        if (err == ESP_ERR_OTA_VALIDATE_FAILED) {
            ESP_LOGE(TAG, "Image validation failed, image is corrupted");
        }
        return err;
    }
    ESP_LOGI(TAG, "ESP_HTTPS_OTA upgrade successful");
    return ESP_OK;
}
