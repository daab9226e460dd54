#include <string.h>
#include "esp_bit_defs.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "agent_config.h"
#include "wifi_sta.h"

static const char *TAG = "wifi_sta";

#define GOT_IP_BIT BIT0

static EventGroupHandle_t s_events;

static void on_wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        ESP_LOGW(TAG, "disconnected from the access point; reconnecting");
        xEventGroupClearBits(s_events, GOT_IP_BIT);
        esp_wifi_connect();
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *event = data;
        ESP_LOGI(TAG, "got ip:" IPSTR, IP2STR(&event->ip_info.ip));
        xEventGroupSetBits(s_events, GOT_IP_BIT);
    }
}

esp_err_t wifi_sta_start(void)
{
    s_events = xEventGroupCreate();
    if (s_events == NULL) {
        return ESP_ERR_NO_MEM;
    }
    ESP_ERROR_CHECK(esp_netif_init());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi_event, NULL, NULL));

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
    return esp_wifi_start();
}

bool wifi_sta_wait_connected(int timeout_ms)
{
    EventBits_t bits = xEventGroupWaitBits(s_events, GOT_IP_BIT, pdFALSE, pdTRUE, pdMS_TO_TICKS(timeout_ms));
    return (bits & GOT_IP_BIT) != 0;
}
