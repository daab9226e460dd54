/*
 * The HIL reference firmware: an MQTT-commanded OTA agent with rollback. See docs/protocol.md
 * for the topics, commands and events, and docs/architecture.md for how the harness tests it.
 */
#include "esp_app_desc.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "nvs_flash.h"
#include "app_config.h"
#include "app_console.h"
#include "boot_check.h"
#include "commands.h"
#include "manifest.h"
#include "mqtt_link.h"
#include "ota_agent.h"
#include "ota_events.h"
#include "status.h"
#include "wifi_sta.h"

static const char *TAG = "app";

static void init_nvs(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_LOGW(TAG, "nvs partition unusable (%s); erasing it", esp_err_to_name(err));
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
}

void app_main(void)
{
    init_nvs();
    ESP_ERROR_CHECK(app_config_load());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    ESP_ERROR_CHECK(ota_events_init());
    const app_config_t *cfg = app_config_get();
    const esp_partition_t *running = esp_ota_get_running_partition();
    ESP_LOGI(TAG, "device %s, firmware %s on %s, ota_state %s, reset %s", cfg->device_id,
             esp_app_get_description()->version, running->label, status_ota_state_name(),
             status_reset_reason_name());
    ESP_ERROR_CHECK(app_console_start());

    bool pending_verify = boot_check_pending_verify();
    if (cfg->broker_url[0] == '\0') {
        ESP_LOGW(TAG, "broker_url is not set: use 'config set broker_url mqtt://host:port', then 'reboot'");
        if (pending_verify) {
            boot_check_run_selftest(); /* cannot reach a broker: the update rolls back */
        }
        return;
    }
    ESP_ERROR_CHECK(wifi_sta_start());
    ESP_ERROR_CHECK(ota_agent_start());
    ESP_ERROR_CHECK(mqtt_link_start(commands_handle));
    ESP_ERROR_CHECK(manifest_start());
    if (pending_verify) {
        boot_check_run_selftest();
    } else {
        mqtt_link_wait_connected(30000);
        status_publish();
        boot_check_report_previous_update();
    }
    ESP_ERROR_CHECK(status_start_heartbeat());
    ESP_LOGI(TAG, "ready");
}
