/*
 * Host port of Bluedroid's esp_bt_main.c (components/bt/host/bluedroid/api/esp_bt_main.c, v5.5.4):
 * the host stack's states, with the same checks, return codes and error logs (tag BT_LOG).
 * esp_bluedroid_init() starts the BTC task (esp_gap_ble_api.c), which runs every GAP callback.
 *
 * Known differences from the chip: there is no BTU task or HCI layer behind the BTC task (it talks to
 * the port's controller directly, host_ble.h), so init, enable, disable and deinit change the state at
 * once instead of awaiting the BTC task. Disabling Bluedroid ends a scan without an event, as it does
 * on the chip; what it does to connections, advertising and profiles does not arise (none are ported).
 */
#include <stdbool.h>
#include "esp_bt.h"
#include "esp_bt_main.h"
#include "esp_log.h"
#include "host_ble.h"

static const char *TAG = "BT_LOG"; /* Bluedroid's LOG_ERROR tag */

static esp_bluedroid_status_t s_bt_host_state = ESP_BLUEDROID_STATUS_UNINITIALIZED;

esp_bluedroid_status_t esp_bluedroid_get_status(void)
{
    return s_bt_host_state;
}

esp_err_t esp_bluedroid_enable(void)
{
    if (s_bt_host_state == ESP_BLUEDROID_STATUS_UNINITIALIZED) {
        ESP_LOGE(TAG, "Bludroid not initialised");
        return ESP_ERR_INVALID_STATE;
    }
    if (s_bt_host_state == ESP_BLUEDROID_STATUS_ENABLED) {
        ESP_LOGE(TAG, "Bluedroid already enabled");
        return ESP_ERR_INVALID_STATE;
    }
    s_bt_host_state = ESP_BLUEDROID_STATUS_ENABLED;
    return ESP_OK;
}

esp_err_t esp_bluedroid_disable(void)
{
    if (s_bt_host_state != ESP_BLUEDROID_STATUS_ENABLED) {
        ESP_LOGE(TAG, "Bluedroid already disabled");
        return ESP_ERR_INVALID_STATE;
    }
    s_bt_host_state = ESP_BLUEDROID_STATUS_DISABLING;
    host_gap_ble_stop_silently();
    s_bt_host_state = ESP_BLUEDROID_STATUS_INITIALIZED;
    return ESP_OK;
}

esp_err_t esp_bluedroid_init(void)
{
    esp_bluedroid_config_t cfg = BT_BLUEDROID_INIT_CONFIG_DEFAULT();
    return esp_bluedroid_init_with_cfg(&cfg);
}

esp_err_t esp_bluedroid_init_with_cfg(esp_bluedroid_config_t *cfg)
{
    if (!cfg) {
        ESP_LOGE(TAG, "%s cfg is NULL", __func__);
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->sc_en) {
        /* SC_MODE_INCLUDED is FALSE for the ESP32's controller */
        ESP_LOGE(TAG, "Secure Connections should not be enabled when target controller is ESP32.");
        ESP_LOGE(TAG, "It may trigger unresolved bugs in the controller.");
        return ESP_ERR_INVALID_ARG;
    }
    if (esp_bt_controller_get_status() != ESP_BT_CONTROLLER_STATUS_ENABLED) {
        ESP_LOGE(TAG, "Controller not initialised");
        return ESP_ERR_INVALID_STATE;
    }
    if (s_bt_host_state != ESP_BLUEDROID_STATUS_UNINITIALIZED) {
        ESP_LOGE(TAG, "Bluedroid already initialised");
        return ESP_ERR_INVALID_STATE;
    }
    if (host_btc_start() != ESP_OK) {
        ESP_LOGE(TAG, "Bluedroid Initialize Fail");
        return ESP_FAIL;
    }
    s_bt_host_state = ESP_BLUEDROID_STATUS_INITIALIZED;
    return ESP_OK;
}

esp_err_t esp_bluedroid_deinit(void)
{
    if (s_bt_host_state == ESP_BLUEDROID_STATUS_UNINITIALIZED) {
        ESP_LOGE(TAG, "Bluedroid already de-initialised");
        return ESP_ERR_INVALID_STATE;
    }
    if (s_bt_host_state == ESP_BLUEDROID_STATUS_ENABLED || s_bt_host_state == ESP_BLUEDROID_STATUS_DISABLING) {
        ESP_LOGE(TAG, "Bludroid still enabled or stopping, disable first");
        return ESP_ERR_INVALID_STATE;
    }
    s_bt_host_state = ESP_BLUEDROID_STATUS_UNINITIALIZED;
    return ESP_OK;
}
