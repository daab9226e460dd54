/* OTA records in NVS, stored as fixed-size blobs so one write updates a whole record. */
#include <string.h>
#include "esp_log.h"
#include "nvs.h"
#include "ota_record.h"

static const char *TAG = "ota_record";
static const char *NVS_NAMESPACE = "ota";
static const char *KEY_PENDING = "pending";
static const char *KEY_RESULT = "result";

static esp_err_t save_blob(const char *key, const void *data, size_t len)
{
    nvs_handle_t nvs;
    esp_err_t err = nvs_open(NVS_NAMESPACE, NVS_READWRITE, &nvs);
    if (err == ESP_OK) {
        err = nvs_set_blob(nvs, key, data, len);
        if (err == ESP_OK) {
            err = nvs_commit(nvs);
        }
        nvs_close(nvs);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "saving %s failed: %s", key, esp_err_to_name(err));
    }
    return err;
}

static bool load_blob(const char *key, void *data, size_t len)
{
    nvs_handle_t nvs;
    if (nvs_open(NVS_NAMESPACE, NVS_READONLY, &nvs) != ESP_OK) {
        return false;
    }
    size_t got = len;
    esp_err_t err = nvs_get_blob(nvs, key, data, &got);
    nvs_close(nvs);
    return err == ESP_OK && got == len;
}

esp_err_t ota_record_save_pending(const ota_pending_t *pending)
{
    return save_blob(KEY_PENDING, pending, sizeof(*pending));
}

bool ota_record_load_pending(ota_pending_t *pending)
{
    return load_blob(KEY_PENDING, pending, sizeof(*pending)) && pending->stage != OTA_RECORD_NONE;
}

esp_err_t ota_record_clear_pending(void)
{
    ota_pending_t none;
    memset(&none, 0, sizeof(none));
    return save_blob(KEY_PENDING, &none, sizeof(none));
}

esp_err_t ota_record_save_result(const ota_result_t *result)
{
    return save_blob(KEY_RESULT, result, sizeof(*result));
}

bool ota_record_load_result(ota_result_t *result)
{
    return load_blob(KEY_RESULT, result, sizeof(*result));
}
