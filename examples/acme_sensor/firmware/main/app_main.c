/*
 * The ACME BLE sensor: scans for BLE devices and publishes each new one over MQTT (ble_scanner.c).
 * Updates come through the ota_agent component: scanning pauses while one downloads, resumes if it
 * fails, and a new image keeps itself only if its BLE stack scans (the self-test).
 */
#include "esp_event.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#include "ota_agent.h"
#include "ble_scanner.h"

static const char *TAG = "acme";

#define SELFTEST_SCAN_WAIT_MS 5000

static bool pause_scanning(void *ctx)
{
    return ble_scanner_pause();
}

static void resume_scanning(void *ctx)
{
    ble_scanner_resume();
}

/* The new image stays only if it does its job: the BLE stack came up and a scan started. */
static bool scanner_works(void *ctx)
{
    for (int waited = 0; !ble_scanner_has_scanned() && waited < SELFTEST_SCAN_WAIT_MS; waited += 100) {
        vTaskDelay(pdMS_TO_TICKS(100)); /* the scanner has no event for this; polled, bounded */
    }
#if CONFIG_ACME_TEST_SELFTEST_FAILS
    ESP_LOGE(TAG, "self-test: failing on purpose (test variant ACME_TEST_SELFTEST_FAILS)");
    return false;
#else
    bool ok = ble_scanner_has_scanned();
    ESP_LOGI(TAG, "self-test: %s", ok ? "scanning" : "no scan started");
    return ok;
#endif
}

static void init_nvs(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
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
    config.callbacks.on_suspend_tasks = pause_scanning;
    config.callbacks.on_resume_tasks = resume_scanning;
    config.callbacks.selftest = scanner_works;
    ESP_ERROR_CHECK(ota_agent_init(&config));
    /* Scanning first: the self-test, run inside ota_agent_start() on a new image, checks it. */
    ESP_ERROR_CHECK(ble_scanner_start());
    esp_err_t err = ota_agent_start();
    if (err == ESP_ERR_INVALID_STATE) {
        return; /* not provisioned: the console waits for `config set broker_url ...` */
    }
    ESP_ERROR_CHECK(err);
    ESP_LOGI(TAG, "ready");
}
