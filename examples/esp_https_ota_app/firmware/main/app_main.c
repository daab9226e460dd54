/*
 * The HTTPS OTA meter: a small app that installs its updates with esp_https_ota itself
 * (https_installer.c, in the manner of ESP-IDF's advanced_https_ota example) and leaves the update
 * commands, their events, the self-test and rollback to the ota_agent component.
 */
#include "esp_event.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "nvs_flash.h"
#include "ota_agent.h"
#include "https_installer.h"

static const char *TAG = "meter";

/* advanced_https_ota's diagnostic() stands here: a product checks its peripherals. */
static bool diagnostic(void *ctx)
{
    const esp_partition_t *running = esp_ota_get_running_partition();
    ESP_LOGI(TAG, "self-test: diagnostics on %s pass", running->label);
    return true;
}

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    ESP_ERROR_CHECK(https_installer_init());
    ota_agent_config_t config = OTA_AGENT_CONFIG_DEFAULT();
    config.callbacks.install = https_installer_install;
    config.callbacks.selftest = diagnostic;
    ESP_ERROR_CHECK(ota_agent_init(&config));
    err = ota_agent_start();
    if (err == ESP_ERR_INVALID_STATE) {
        return; /* not provisioned: the console waits for `config set broker_url ...` */
    }
    ESP_ERROR_CHECK(err);
    ESP_LOGI(TAG, "ready");
}
