#include <stdio.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "agent_config.h"
#include "mqtt_link.h"
#include "ota_record.h"
#include "status.h"

static const char *TAG = "status";
static void (*s_extra)(cJSON *status);

void status_set_extra(void (*add)(cJSON *status))
{
    s_extra = add;
}

const char *status_reset_reason_name(void)
{
    switch (esp_reset_reason()) {
    case ESP_RST_POWERON: return "poweron";
    case ESP_RST_EXT: return "ext";
    case ESP_RST_SW: return "sw";
    case ESP_RST_PANIC: return "panic";
    case ESP_RST_INT_WDT: return "int_wdt";
    case ESP_RST_TASK_WDT: return "task_wdt";
    case ESP_RST_WDT: return "wdt";
    case ESP_RST_DEEPSLEEP: return "deepsleep";
    case ESP_RST_BROWNOUT: return "brownout";
    default: return "unknown";
    }
}

const char *status_ota_state_name(void)
{
    esp_ota_img_states_t state;
    if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &state) != ESP_OK) {
        return "undefined"; /* blank otadata: the bootloader's first boot of ota_0 */
    }
    switch (state) {
    case ESP_OTA_IMG_NEW: return "new";
    case ESP_OTA_IMG_PENDING_VERIFY: return "pending_verify";
    case ESP_OTA_IMG_VALID: return "valid";
    case ESP_OTA_IMG_INVALID: return "invalid";
    case ESP_OTA_IMG_ABORTED: return "aborted";
    default: return "undefined";
    }
}

static void add_last_ota(cJSON *status)
{
    ota_result_t result;
    if (!ota_record_load_result(&result)) {
        cJSON_AddNullToObject(status, "last_ota");
        return;
    }
    cJSON *last = cJSON_AddObjectToObject(status, "last_ota");
    cJSON_AddStringToObject(last, "id", result.id);
    cJSON_AddStringToObject(last, "state", result.state);
    if (result.reason[0] != '\0') {
        cJSON_AddStringToObject(last, "reason", result.reason);
    }
    cJSON_AddStringToObject(last, "version", result.version);
}

cJSON *status_build(void)
{
    const esp_app_desc_t *app = esp_app_get_description();
    const esp_partition_t *running = esp_ota_get_running_partition();
    cJSON *status = cJSON_CreateObject();
    cJSON_AddStringToObject(status, "device_id", agent_config_get()->device_id);
    cJSON_AddStringToObject(status, "version", app->version);
    cJSON_AddStringToObject(status, "project", app->project_name);
    cJSON_AddStringToObject(status, "partition", running != NULL ? running->label : "?");
    cJSON_AddStringToObject(status, "ota_state", status_ota_state_name());
    cJSON_AddStringToObject(status, "reset_reason", status_reset_reason_name());
    cJSON_AddNumberToObject(status, "uptime_s", (double)(esp_timer_get_time() / 1000000));
    cJSON_AddNumberToObject(status, "free_heap", esp_get_free_heap_size());
    wifi_ap_record_t ap;
    if (esp_wifi_sta_get_ap_info(&ap) == ESP_OK) {
        cJSON_AddNumberToObject(status, "rssi", ap.rssi);
    } else {
        cJSON_AddNullToObject(status, "rssi");
    }
    add_last_ota(status);
    if (s_extra != NULL) {
        s_extra(status); /* the mesh's part (mesh_link.c) */
    }
    return status;
}

void status_publish(void)
{
    cJSON *status = status_build();
    if (status != NULL) {
        mqtt_link_publish_json("status", status, true);
        cJSON_Delete(status);
    }
}

static void heartbeat_task(void *arg)
{
    (void)arg;
    for (;;) {
        /* Seconds to ticks directly: pdMS_TO_TICKS(s * 1000) overflows its 32-bit TickType_t
           arithmetic for long periods (heartbeat_s goes up to 86400). */
        vTaskDelay((TickType_t)agent_config_get()->heartbeat_s * configTICK_RATE_HZ);
        if (mqtt_link_is_connected()) {
            status_publish();
        }
    }
}

esp_err_t status_start_heartbeat(void)
{
    if (agent_config_get()->heartbeat_s == 0) {
        ESP_LOGI(TAG, "status heartbeat off");
        return ESP_OK;
    }
    return xTaskCreate(heartbeat_task, "heartbeat", 4096, NULL, 2, NULL) == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}
