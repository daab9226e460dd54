#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "cJSON.h"
#include "esp_bt.h"
#include "esp_bt_main.h"
#include "esp_gap_ble_api.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "ota_agent.h"
#include "ble_scanner.h"
#include "known_devices.h"

static const char *TAG = "ble_scan";

#define NAME_MAX_LEN 31        /* an advertisement's payload is 31 bytes at most */
#define QUEUE_LEN 32
#define STOP_TIMEOUT_MS 2000

/* Everything the scanner task hears, from the GAP callback (BTC task) and from the OTA callbacks. The
   task owns the scan state, so the callbacks only post here and never block on the network. */
typedef enum { MSG_PARAMS_SET, MSG_STARTED, MSG_RESULT, MSG_SCAN_DONE, MSG_STOPPED, MSG_PAUSE, MSG_RESUME } msg_kind_t;

typedef struct {
    msg_kind_t kind;
    esp_bd_addr_t mac;
    int rssi;
    char name[NAME_MAX_LEN + 1];
} scanner_msg_t;

typedef enum { STATE_STARTING, STATE_SCANNING, STATE_RESTING, STATE_PAUSED } scanner_state_t;

static QueueHandle_t s_queue;
static SemaphoreHandle_t s_stopped; /* given when a pause has taken effect */
static atomic_bool s_has_scanned;

static esp_ble_scan_params_t s_scan_params = {
    .scan_type = BLE_SCAN_TYPE_ACTIVE,
    .own_addr_type = BLE_ADDR_TYPE_PUBLIC,
    .scan_filter_policy = BLE_SCAN_FILTER_ALLOW_ALL,
    .scan_interval = 0x50, /* 50 ms in 0.625 ms units */
    .scan_window = 0x30,   /* 30 ms */
    /* one result per device per round: a device is reported once anyway (known_devices) */
    .scan_duplicate = BLE_SCAN_DUPLICATE_ENABLE,
};

static void post(const scanner_msg_t *msg)
{
    if (xQueueSend(s_queue, msg, 0) != pdPASS) {
        ESP_LOGW(TAG, "scanner queue full; event %d dropped", (int)msg->kind);
    }
}

static void post_kind(msg_kind_t kind)
{
    scanner_msg_t msg = {.kind = kind};
    post(&msg);
}

static void post_result(const struct ble_scan_result_evt_param *result)
{
    scanner_msg_t msg = {.kind = MSG_RESULT, .rssi = result->rssi};
    memcpy(msg.mac, result->bda, sizeof(msg.mac));
    uint8_t len = 0;
    uint8_t *name = esp_ble_resolve_adv_data_by_type((uint8_t *)result->ble_adv,
                                                     result->adv_data_len + result->scan_rsp_len,
                                                     ESP_BLE_AD_TYPE_NAME_CMPL, &len);
    if (name == NULL) {
        name = esp_ble_resolve_adv_data_by_type((uint8_t *)result->ble_adv,
                                                result->adv_data_len + result->scan_rsp_len,
                                                ESP_BLE_AD_TYPE_NAME_SHORT, &len);
    }
    if (name != NULL) {
        size_t n = len < NAME_MAX_LEN ? len : NAME_MAX_LEN;
        memcpy(msg.name, name, n);
        msg.name[n] = '\0';
    }
    post(&msg);
}

static void on_gap_event(esp_gap_ble_cb_event_t event, esp_ble_gap_cb_param_t *param)
{
    switch (event) {
    case ESP_GAP_BLE_SCAN_PARAM_SET_COMPLETE_EVT:
        post_kind(MSG_PARAMS_SET);
        break;
    case ESP_GAP_BLE_SCAN_START_COMPLETE_EVT:
        if (param->scan_start_cmpl.status != ESP_BT_STATUS_SUCCESS) {
            ESP_LOGE(TAG, "scan start failed, status %x", param->scan_start_cmpl.status);
        }
        post_kind(MSG_STARTED);
        break;
    case ESP_GAP_BLE_SCAN_RESULT_EVT:
        if (param->scan_rst.search_evt == ESP_GAP_SEARCH_INQ_RES_EVT) {
            post_result(&param->scan_rst);
        } else if (param->scan_rst.search_evt == ESP_GAP_SEARCH_INQ_CMPL_EVT) {
            post_kind(MSG_SCAN_DONE);
        }
        break;
    case ESP_GAP_BLE_SCAN_STOP_COMPLETE_EVT:
        post_kind(MSG_STOPPED);
        break;
    default:
        break;
    }
}

static void publish_new_device(const scanner_msg_t *msg)
{
    char mac[18];
    snprintf(mac, sizeof(mac), ESP_BD_ADDR_STR, ESP_BD_ADDR_HEX(msg->mac));
    if (known_devices_contains(msg->mac)) {
        /* once per device and round (the duplicate filter), so this line does not flood the console */
        ESP_LOGI(TAG, "device %s reported before; filtered", mac);
        return;
    }
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "mac", mac);
    cJSON_AddNumberToObject(json, "rssi", msg->rssi);
    cJSON_AddStringToObject(json, "name", msg->name);
    char *text = cJSON_PrintUnformatted(json);
    esp_err_t err = text != NULL ? ota_agent_publish("ble", text) : ESP_ERR_NO_MEM;
    cJSON_free(text);
    cJSON_Delete(json);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "device %s not published (%s); reported when seen again", mac, esp_err_to_name(err));
        return;
    }
    known_devices_add(msg->mac);
    ESP_LOGI(TAG, "new device %s rssi %d name '%s' published", mac, msg->rssi, msg->name);
}

static void start_round(scanner_state_t *state)
{
    esp_err_t err = esp_ble_gap_start_scanning(CONFIG_ACME_SCAN_DURATION_S);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ble_gap_start_scanning failed: %s", esp_err_to_name(err));
        *state = STATE_RESTING; /* try again after the pause */
        return;
    }
    *state = STATE_SCANNING;
}

static void pause_scanning(scanner_state_t *state)
{
    scanner_state_t was = *state;
    *state = STATE_PAUSED;
    if (was != STATE_SCANNING || esp_ble_gap_stop_scanning() != ESP_OK) {
        xSemaphoreGive(s_stopped); /* nothing to stop */
    } /* else MSG_STOPPED gives it */
}

/* Rounds: scan CONFIG_ACME_SCAN_DURATION_S, rest CONFIG_ACME_SCAN_PAUSE_S, again; paused during updates. */
static void scanner_task(void *arg)
{
    scanner_state_t state = STATE_STARTING;
    int64_t rest_until_us = 0;
    scanner_msg_t msg;
    for (;;) {
        TickType_t wait = portMAX_DELAY;
        if (state == STATE_RESTING) {
            int64_t left_ms = (rest_until_us - esp_timer_get_time()) / 1000;
            wait = left_ms > 0 ? pdMS_TO_TICKS(left_ms) : 0;
        }
        if (xQueueReceive(s_queue, &msg, wait) != pdPASS) {
            start_round(&state); /* the rest is over */
            continue;
        }
        switch (msg.kind) {
        case MSG_PARAMS_SET:
            if (state == STATE_STARTING) {
                start_round(&state);
            }
            break;
        case MSG_STARTED:
            atomic_store(&s_has_scanned, true);
            ESP_LOGI(TAG, "scanning for %d s", CONFIG_ACME_SCAN_DURATION_S);
            break;
        case MSG_RESULT:
            publish_new_device(&msg);
            break;
        case MSG_SCAN_DONE:
            if (state == STATE_SCANNING) {
                ESP_LOGI(TAG, "round over; next in %d s", CONFIG_ACME_SCAN_PAUSE_S);
                state = STATE_RESTING;
                rest_until_us = esp_timer_get_time() + (int64_t)CONFIG_ACME_SCAN_PAUSE_S * 1000000;
            }
            break;
        case MSG_STOPPED:
            if (state == STATE_PAUSED) {
                xSemaphoreGive(s_stopped);
            }
            break;
        case MSG_PAUSE:
            pause_scanning(&state);
            break;
        case MSG_RESUME:
            if (state == STATE_PAUSED) {
                ESP_LOGI(TAG, "resuming");
                start_round(&state);
            }
            break;
        }
    }
}

bool ble_scanner_pause(void)
{
    xSemaphoreTake(s_stopped, 0); /* a stale give from an earlier pause */
    post_kind(MSG_PAUSE);
    if (xSemaphoreTake(s_stopped, pdMS_TO_TICKS(STOP_TIMEOUT_MS)) != pdTRUE) {
        ESP_LOGW(TAG, "scanning did not stop within %d ms", STOP_TIMEOUT_MS);
        return false;
    }
    ESP_LOGI(TAG, "paused");
    return true;
}

void ble_scanner_resume(void)
{
    post_kind(MSG_RESUME);
}

bool ble_scanner_has_scanned(void)
{
    return atomic_load(&s_has_scanned);
}

static esp_err_t check(esp_err_t err, const char *what)
{
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "%s failed: %s", what, esp_err_to_name(err));
    }
    return err;
}

esp_err_t ble_scanner_start(void)
{
    s_queue = xQueueCreate(QUEUE_LEN, sizeof(scanner_msg_t));
    s_stopped = xSemaphoreCreateBinary();
    if (s_queue == NULL || s_stopped == NULL) {
        return ESP_ERR_NO_MEM;
    }
    /* BLE only: the classic BT controller's memory goes back to the heap */
    esp_err_t err = check(esp_bt_controller_mem_release(ESP_BT_MODE_CLASSIC_BT), "esp_bt_controller_mem_release");
    esp_bt_controller_config_t bt_config = BT_CONTROLLER_INIT_CONFIG_DEFAULT();
    if (err == ESP_OK) {
        err = check(esp_bt_controller_init(&bt_config), "esp_bt_controller_init");
    }
    if (err == ESP_OK) {
        err = check(esp_bt_controller_enable(ESP_BT_MODE_BLE), "esp_bt_controller_enable");
    }
    if (err == ESP_OK) {
        err = check(esp_bluedroid_init(), "esp_bluedroid_init");
    }
    if (err == ESP_OK) {
        err = check(esp_bluedroid_enable(), "esp_bluedroid_enable");
    }
    if (err == ESP_OK) {
        err = check(esp_ble_gap_register_callback(on_gap_event), "esp_ble_gap_register_callback");
    }
    if (err == ESP_OK && xTaskCreate(scanner_task, "ble_scan", 4096, NULL, 4, NULL) != pdPASS) {
        err = ESP_ERR_NO_MEM;
    }
    if (err == ESP_OK) {
        err = check(esp_ble_gap_set_scan_params(&s_scan_params), "esp_ble_gap_set_scan_params");
    }
    return err;
}
