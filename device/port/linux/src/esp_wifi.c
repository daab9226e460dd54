/*
 * Wi-Fi station and netif for the virtual board: the host is always connected, so start and
 * connect post the events a chip posts when it finds its access point (STA_START, CONNECTED,
 * then IP_EVENT_STA_GOT_IP), through the default event loop, in that order.
 *
 * As on the chip, esp_wifi_connect() only asks the Wi-Fi driver's task to associate and returns;
 * that task posts CONNECTED and GOT_IP. Apps call esp_wifi_connect() from their STA_START handler,
 * that is from the event loop's own task: posting there, with the loop's queue full (an HTTP
 * download posts an event per chunk), would block that task on its own queue for ever.
 */
#include <string.h>
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"

static const char *TAG = "wifi";

ESP_EVENT_DEFINE_BASE(WIFI_EVENT);
ESP_EVENT_DEFINE_BASE(IP_EVENT);

struct esp_netif_obj {
    int unused;
};

static struct esp_netif_obj s_sta_netif;
static bool s_initialised;
static bool s_started;
static wifi_config_t s_config;
static QueueHandle_t s_driver_requests; /* one byte per esp_wifi_connect() */

#define VIRTUAL_AP_RSSI (-42)

esp_err_t esp_netif_init(void)
{
    return ESP_OK;
}

esp_netif_t *esp_netif_create_default_wifi_sta(void)
{
    return &s_sta_netif;
}

esp_err_t esp_wifi_init(const wifi_init_config_t *config)
{
    if (config == NULL || config->magic != WIFI_INIT_CONFIG_MAGIC) {
        return ESP_ERR_INVALID_ARG;
    }
    s_initialised = true;
    return ESP_OK;
}

esp_err_t esp_wifi_set_mode(wifi_mode_t mode)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    return mode == WIFI_MODE_STA ? ESP_OK : ESP_ERR_NOT_SUPPORTED;
}

esp_err_t esp_wifi_set_config(wifi_interface_t interface, wifi_config_t *conf)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (interface != WIFI_IF_STA || conf == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    s_config = *conf;
    return ESP_OK;
}

static void associate(void)
{
    ESP_LOGI(TAG, "virtual access point \"%.32s\" in range", (const char *)s_config.sta.ssid);
    if (esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_CONNECTED, NULL, 0, portMAX_DELAY) != ESP_OK) {
        return;
    }
    ip_event_got_ip_t got_ip = {.esp_netif = &s_sta_netif};
    got_ip.ip_info.ip.addr = 0x0100007F;      /* 127.0.0.1 in network byte order */
    got_ip.ip_info.netmask.addr = 0x000000FF; /* 255.0.0.0 */
    got_ip.ip_info.gw.addr = 0x0100007F;
    esp_event_post(IP_EVENT, IP_EVENT_STA_GOT_IP, &got_ip, sizeof(got_ip), portMAX_DELAY);
}

static void wifi_driver_task(void *arg)
{
    (void)arg;
    uint8_t request;
    for (;;) {
        if (xQueueReceive(s_driver_requests, &request, portMAX_DELAY) == pdPASS) {
            associate();
        }
    }
}

esp_err_t esp_wifi_start(void)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (s_driver_requests == NULL) {
        s_driver_requests = xQueueCreate(4, sizeof(uint8_t));
        if (s_driver_requests == NULL || xTaskCreate(wifi_driver_task, "wifi", 4096, NULL, 23, NULL) != pdPASS) {
            return ESP_ERR_NO_MEM;
        }
    }
    s_started = true;
    return esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_START, NULL, 0, portMAX_DELAY);
}

esp_err_t esp_wifi_connect(void)
{
    if (!s_started) {
        return ESP_ERR_WIFI_NOT_STARTED;
    }
    uint8_t request = 1;
    xQueueSend(s_driver_requests, &request, 0); /* a connect already pending covers this one */
    return ESP_OK;
}

esp_err_t esp_wifi_sta_get_ap_info(wifi_ap_record_t *ap_info)
{
    if (ap_info == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    memset(ap_info, 0, sizeof(*ap_info));
    memcpy(ap_info->ssid, s_config.sta.ssid, sizeof(s_config.sta.ssid));
    ap_info->rssi = VIRTUAL_AP_RSSI;
    return ESP_OK;
}
