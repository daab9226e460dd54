/*
 * The Wi-Fi station: connects with the provisioned SSID and keeps reconnecting, as ESP-IDF's station
 * examples do, with a backoff: each WIFI_EVENT_STA_DISCONNECTED is logged with its reason (number and
 * name), then esp_wifi_connect() is called again after CONFIG_OTA_AGENT_WIFI_BACKOFF_MIN_MS, doubling
 * up to CONFIG_OTA_AGENT_WIFI_BACKOFF_MAX_MS while attempts fail (each failed scan is one more
 * STA_DISCONNECTED with WIFI_REASON_NO_AP_FOUND), back to the minimum once IP_EVENT_STA_GOT_IP comes.
 * The wait runs in a task of its own: the event loop's task must not sleep (it delivers MQTT and HTTP
 * events too).
 *
 * Nothing else is done on a disconnect: esp_netif_down() has already aborted the TCP connections, and
 * esp-mqtt reconnects on its own, an HTTP download retries on its own path (ota_download.c).
 */
#include <inttypes.h>
#include <string.h>
#include "esp_bit_defs.h"
#include "esp_err.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "agent_config.h"
#include "sdkconfig.h"
#include "wifi_sta.h"

#if !CONFIG_OTA_AGENT_MANAGE_WIFI
/* The application runs Wi-Fi itself (OTA_AGENT_MANAGE_WIFI off): nothing to start, and whether the
   network is up is its business, so a download's retry does not wait for it. */
esp_err_t wifi_sta_start(void)
{
    return ESP_OK;
}

bool wifi_sta_wait_connected(int timeout_ms)
{
    (void)timeout_ms;
    return true;
}
#else

static const char *TAG = "wifi_sta";

#define GOT_IP_BIT BIT0
#define RECONNECT_BIT BIT1     /* disconnected: the reconnect task calls esp_wifi_connect() after the backoff */
#define BACKOFF_RESET_BIT BIT2 /* got an IP: the next disconnect waits the minimum again */

static EventGroupHandle_t s_events;

/* Names of the reasons (wifi_err_reason_t) a station reports when it loses or cannot find its AP. */
static const char *reason_name(uint8_t reason)
{
    switch (reason) {
    case WIFI_REASON_UNSPECIFIED: return "UNSPECIFIED";
    case WIFI_REASON_AUTH_EXPIRE: return "AUTH_EXPIRE";
    case WIFI_REASON_AUTH_LEAVE: return "AUTH_LEAVE";
    case WIFI_REASON_DISASSOC_DUE_TO_INACTIVITY: return "DISASSOC_DUE_TO_INACTIVITY";
    case WIFI_REASON_ASSOC_LEAVE: return "ASSOC_LEAVE";
    case WIFI_REASON_4WAY_HANDSHAKE_TIMEOUT: return "4WAY_HANDSHAKE_TIMEOUT";
    case WIFI_REASON_BEACON_TIMEOUT: return "BEACON_TIMEOUT";
    case WIFI_REASON_NO_AP_FOUND: return "NO_AP_FOUND";
    case WIFI_REASON_AUTH_FAIL: return "AUTH_FAIL";
    case WIFI_REASON_ASSOC_FAIL: return "ASSOC_FAIL";
    case WIFI_REASON_HANDSHAKE_TIMEOUT: return "HANDSHAKE_TIMEOUT";
    case WIFI_REASON_CONNECTION_FAIL: return "CONNECTION_FAIL";
    case WIFI_REASON_AP_TSF_RESET: return "AP_TSF_RESET";
    case WIFI_REASON_ROAMING: return "ROAMING";
    case WIFI_REASON_ASSOC_COMEBACK_TIME_TOO_LONG: return "ASSOC_COMEBACK_TIME_TOO_LONG";
    case WIFI_REASON_SA_QUERY_TIMEOUT: return "SA_QUERY_TIMEOUT";
    case WIFI_REASON_NO_AP_FOUND_W_COMPATIBLE_SECURITY: return "NO_AP_FOUND_W_COMPATIBLE_SECURITY";
    case WIFI_REASON_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD: return "NO_AP_FOUND_IN_AUTHMODE_THRESHOLD";
    case WIFI_REASON_NO_AP_FOUND_IN_RSSI_THRESHOLD: return "NO_AP_FOUND_IN_RSSI_THRESHOLD";
    default: return "OTHER";
    }
}

static void connect_or_log(void)
{
    esp_err_t err = esp_wifi_connect();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_wifi_connect failed: %s", esp_err_to_name(err));
    }
}

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        connect_or_log();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        const wifi_event_sta_disconnected_t *event = data;
        ESP_LOGW(TAG, "disconnected from \"%.*s\": reason %u %s, rssi %d", event->ssid_len, (const char *)event->ssid,
                 (unsigned)event->reason, reason_name(event->reason), event->rssi);
        xEventGroupClearBits(s_events, GOT_IP_BIT);
        xEventGroupSetBits(s_events, RECONNECT_BIT);
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *event = data;
        ESP_LOGI(TAG, "got ip:" IPSTR, IP2STR(&event->ip_info.ip));
        xEventGroupSetBits(s_events, GOT_IP_BIT | BACKOFF_RESET_BIT);
    } else if (base == IP_EVENT && id == IP_EVENT_STA_LOST_IP) {
        ESP_LOGW(TAG, "lost ip");
    }
}

static void reconnect_task(void *arg)
{
    (void)arg;
    uint32_t delay_ms = CONFIG_OTA_AGENT_WIFI_BACKOFF_MIN_MS;
    unsigned attempt = 0;
    for (;;) {
        EventBits_t bits = xEventGroupWaitBits(s_events, RECONNECT_BIT | BACKOFF_RESET_BIT, pdTRUE, pdFALSE,
                                               portMAX_DELAY);
        if (bits & BACKOFF_RESET_BIT) {
            delay_ms = CONFIG_OTA_AGENT_WIFI_BACKOFF_MIN_MS;
            attempt = 0;
        }
        if (!(bits & RECONNECT_BIT)) {
            continue;
        }
        attempt++;
        ESP_LOGI(TAG, "reconnecting in %" PRIu32 " ms (attempt %u)", delay_ms, attempt);
        vTaskDelay(pdMS_TO_TICKS(delay_ms));
        connect_or_log();
        delay_ms = delay_ms >= CONFIG_OTA_AGENT_WIFI_BACKOFF_MAX_MS / 2 ? CONFIG_OTA_AGENT_WIFI_BACKOFF_MAX_MS
                                                                       : delay_ms * 2;
    }
}

esp_err_t wifi_sta_start(void)
{
    s_events = xEventGroupCreate();
    if (s_events == NULL) {
        return ESP_ERR_NO_MEM;
    }
    if (xTaskCreate(reconnect_task, "wifi_reconnect", 3072, NULL, 5, NULL) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    ESP_ERROR_CHECK(esp_netif_init());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_LOST_IP, on_wifi_event, NULL, NULL));

    wifi_config_t config = {0};
    const agent_config_t *cfg = agent_config_get();
    /* ssid[32] and password[64] need no terminating NUL when full. memcpy of the length (which
       app_config already bounds) instead of strncpy(dst, src, sizeof dst): GCC reports that as
       -Wstringop-truncation at -O2 (CONFIG_COMPILER_OPTIMIZATION_PERF), an error under -Werror=all. */
    memcpy(config.sta.ssid, cfg->wifi_ssid, strnlen(cfg->wifi_ssid, sizeof(config.sta.ssid)));
    memcpy(config.sta.password, cfg->wifi_password, strnlen(cfg->wifi_password, sizeof(config.sta.password)));
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &config));
    ESP_LOGI(TAG, "connecting to \"%s\"", cfg->wifi_ssid); /* never the password */
    esp_err_t err = esp_wifi_start();
    if (err != ESP_OK) {
        return err;
    }
    /* How long without a beacon before the station gives the AP up (and its TCP connections with it). */
    err = esp_wifi_set_inactive_time(WIFI_IF_STA, (uint16_t)cfg->wifi_beacon_timeout_s);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "esp_wifi_set_inactive_time(%d s) failed: %s", cfg->wifi_beacon_timeout_s, esp_err_to_name(err));
    }
    return ESP_OK;
}

bool wifi_sta_wait_connected(int timeout_ms)
{
    if (s_events == NULL) {
        return true; /* the station is not started: the network is the application's */
    }
    EventBits_t bits = xEventGroupWaitBits(s_events, GOT_IP_BIT, pdFALSE, pdTRUE, pdMS_TO_TICKS(timeout_ms));
    return (bits & GOT_IP_BIT) != 0;
}
#endif /* CONFIG_OTA_AGENT_MANAGE_WIFI */
