/*
 * The HIL reference firmware: a thin app over the ota_agent component (components/ota_agent), which
 * does the MQTT-commanded OTA with rollback. See docs/protocol.md for the topics, commands and
 * events, and docs/architecture.md for how the harness tests it.
 */
#include "esp_event.h"
#include "esp_log.h"
#include "nvs_flash.h"
#include "ota_agent.h"
#include "app_hooks.h"

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
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    ota_agent_config_t config = OTA_AGENT_CONFIG_DEFAULT();
    app_hooks_fill(&config.callbacks);
    ESP_ERROR_CHECK(ota_agent_init(&config));
    ESP_ERROR_CHECK(app_hooks_register_console());
    esp_err_t err = ota_agent_start();
    if (err == ESP_ERR_INVALID_STATE) {
        return; /* not provisioned yet: the console waits for `config set broker_url ...` */
    }
    ESP_ERROR_CHECK(err);
    ESP_LOGI(TAG, "ready");
}
