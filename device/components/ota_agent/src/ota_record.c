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
static const char *KEY_UNREPORTED = "unreported";

/* The pending record has two writers: the update task saves a new one before it switches partitions, and
   after a boot boot_check clears the previous update's once it is reported. The lock keeps that clear from
   erasing a record saved meanwhile. */
static SemaphoreHandle_t s_pending_lock;
static const ota_pending_t NO_PENDING; /* all zero: stage OTA_RECORD_NONE, what a cleared record holds */

/* One blob, so that a queue change is one NVS write: a reset leaves the old queue or the new one. Only the
   main task's start-up (ota_agent_start) adds and removes: no lock. */
typedef struct {
    uint32_t count;
    ota_result_t items[OTA_RECORD_UNREPORTED_MAX];
} unreported_t;

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

static void load_unreported(unreported_t *queue)
{
    if (!load_blob(KEY_UNREPORTED, queue, sizeof(*queue)) || queue->count > OTA_RECORD_UNREPORTED_MAX) {
        memset(queue, 0, sizeof(*queue));
    }
}

esp_err_t ota_record_add_unreported(const ota_result_t *outcome)
{
    unreported_t queue;
    load_unreported(&queue);
    for (uint32_t i = 0; i < queue.count; i++) {
        if (memcmp(&queue.items[i], outcome, sizeof(*outcome)) == 0) {
            return ESP_OK;
        }
    }
    if (queue.count == OTA_RECORD_UNREPORTED_MAX) {
        ESP_LOGW(TAG, "%d outcomes not reported yet: dropping the oldest (%s %s)", OTA_RECORD_UNREPORTED_MAX,
                 queue.items[0].id, queue.items[0].state);
        memmove(&queue.items[0], &queue.items[1], (OTA_RECORD_UNREPORTED_MAX - 1) * sizeof(queue.items[0]));
        queue.count--;
    }
    queue.items[queue.count++] = *outcome;
    return save_blob(KEY_UNREPORTED, &queue, sizeof(queue));
}

size_t ota_record_load_unreported(ota_result_t *out, size_t max)
{
    unreported_t queue;
    load_unreported(&queue);
    size_t n = queue.count < max ? queue.count : max;
    memcpy(out, queue.items, n * sizeof(out[0]));
    return n;
}

esp_err_t ota_record_remove_unreported(size_t sent)
{
    unreported_t queue;
    load_unreported(&queue);
    if (sent >= queue.count) {
        memset(&queue, 0, sizeof(queue));
    } else {
        memmove(&queue.items[0], &queue.items[sent], (queue.count - sent) * sizeof(queue.items[0]));
        queue.count -= (uint32_t)sent;
        memset(&queue.items[queue.count], 0, (OTA_RECORD_UNREPORTED_MAX - queue.count) * sizeof(queue.items[0]));
    }
    return save_blob(KEY_UNREPORTED, &queue, sizeof(queue));
}
