/* OTA records in NVS, stored as fixed-size blobs so one write updates a whole record. */
#include <string.h>
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "nvs.h"
#include "ota_record.h"

static const char *TAG = "ota_record";
static const char *NVS_NAMESPACE = "ota";
static const char *KEY_PENDING = "pending";
static const char *KEY_RESULT = "result";

/* The pending record has two writers: the update task saves a new one before it switches partitions, and
   after a boot boot_check clears the previous update's once it is reported. The lock keeps that clear from
   erasing a record saved meanwhile. */
static SemaphoreHandle_t s_pending_lock;
static const ota_pending_t NO_PENDING; /* all zero: stage OTA_RECORD_NONE, what a cleared record holds */

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

esp_err_t ota_record_init(void)
{
    if (s_pending_lock == NULL) {
        s_pending_lock = xSemaphoreCreateMutex();
    }
    return s_pending_lock != NULL ? ESP_OK : ESP_ERR_NO_MEM;
}

esp_err_t ota_record_save_pending(const ota_pending_t *pending)
{
    xSemaphoreTake(s_pending_lock, portMAX_DELAY);
    esp_err_t err = save_blob(KEY_PENDING, pending, sizeof(*pending));
    xSemaphoreGive(s_pending_lock);
    return err;
}

bool ota_record_load_pending(ota_pending_t *pending)
{
    return load_blob(KEY_PENDING, pending, sizeof(*pending)) && pending->stage != OTA_RECORD_NONE;
}

esp_err_t ota_record_clear_pending(void)
{
    return ota_record_save_pending(&NO_PENDING);
}

esp_err_t ota_record_clear_pending_if(const ota_pending_t *expected)
{
    ota_pending_t stored;
    esp_err_t err = ESP_OK;
    xSemaphoreTake(s_pending_lock, portMAX_DELAY);
    if (load_blob(KEY_PENDING, &stored, sizeof(stored)) && memcmp(&stored, expected, sizeof(stored)) == 0) {
        err = save_blob(KEY_PENDING, &NO_PENDING, sizeof(NO_PENDING));
    } else {
        ESP_LOGI(TAG, "the pending record is a newer update's now: kept");
    }
    xSemaphoreGive(s_pending_lock);
    return err;
}

esp_err_t ota_record_save_result(const ota_result_t *result)
{
    return save_blob(KEY_RESULT, result, sizeof(*result));
}

bool ota_record_load_result(ota_result_t *result)
{
    return load_blob(KEY_RESULT, result, sizeof(*result));
}
