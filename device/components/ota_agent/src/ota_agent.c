/*
 * The component's public face (ota_agent.h): brings the agent's parts up in order. The parts are
 * agent_config (NVS settings), agent_console (provisioning), wifi_sta or mesh_link (ESP-WIFI-MESH),
 * mqtt_link and commands,
 * ota_updater (one update at a time), manifest (periodic checks), boot_check (self-test and
 * rollback) and status.
 */
#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "sdkconfig.h"
#include "ota_agent.h"
#include "agent_callbacks.h"
#include "agent_config.h"
#include "agent_console.h"
#include "boot_check.h"
#include "commands.h"
#include "manifest.h"
#include "mesh_link.h"
#include "mqtt_link.h"
#include "ota_events.h"
#include "ota_record.h"
#include "ota_updater.h"
#include "status.h"
#include "wifi_sta.h"

static const char *TAG = "ota_agent";

#define FIRST_IP_WAIT_MS 5000 /* at start-up, how long the MQTT client waits for the station's IP */

esp_err_t ota_agent_init(const ota_agent_config_t *config)
{
    if (config == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    agent_callbacks_set(&config->callbacks);
    esp_err_t err = agent_config_load();
    if (err == ESP_OK) {
        err = ota_record_init();
    }
    if (err == ESP_OK) {
        err = ota_events_init();
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "init failed: %s", esp_err_to_name(err));
        return err;
    }
    const esp_partition_t *running = esp_ota_get_running_partition();
    ESP_LOGI(TAG, "device %s, firmware %s on %s, ota_state %s, reset %s", agent_config_get()->device_id,
             esp_app_get_description()->version, running->label, status_ota_state_name(),
             status_reset_reason_name());
    return agent_console_start();
}

esp_err_t ota_agent_start(void)
{
    bool pending_verify = boot_check_pending_verify();
    if (agent_config_get()->broker_url[0] == '\0') {
        ESP_LOGW(TAG, "broker_url is not set: use 'config set broker_url mqtt://host:port', then 'reboot'");
        if (pending_verify) {
            boot_check_run_selftest(); /* cannot reach a broker: the update rolls back */
        }
        return ESP_ERR_INVALID_STATE;
    }
    /* Taken before the update task, the link and the manifest check start: an update one of them begins
       saves a record of its own, which must not be reported (and cleared) as this boot's previous one. */
    ota_pending_t previous;
    bool have_previous = !pending_verify && boot_check_take_previous_update(&previous);
    esp_err_t err = ESP_OK;
#if CONFIG_OTA_AGENT_MANAGE_WIFI
    err = wifi_sta_start();
    /* esp-mqtt started before the station has its address fails its first connect (no route) and
       waits a whole reconnect timeout; ESP-IDF's examples start it after IP_EVENT_STA_GOT_IP. An AP
       that stays away does not hold the agent up for long: esp-mqtt then connects when it comes. */
    if (err == ESP_OK && !wifi_sta_wait_connected(FIRST_IP_WAIT_MS)) {
        ESP_LOGW(TAG, "no IP address after %d ms; the broker is tried from now on", FIRST_IP_WAIT_MS);
    }
#endif
    if (err == ESP_OK) {
        err = ota_updater_start();
    }
#if CONFIG_OTA_AGENT_MESH
    mesh_link_attach(); /* before the link starts: on a mesh only the root has a broker session */
#endif
    if (err == ESP_OK) {
        err = mqtt_link_start(commands_handle);
    }
#if CONFIG_OTA_AGENT_MESH
    if (err == ESP_OK) {
        err = mesh_link_start(); /* after the link: the root starts its broker session from mesh events */
    }
#endif
    if (err == ESP_OK) {
        err = manifest_start();
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "start failed: %s", esp_err_to_name(err));
        return err;
    }
    if (pending_verify) {
        boot_check_run_selftest();
    } else {
        mqtt_link_wait_connected(30000);
        status_publish();
        if (have_previous) {
            boot_check_report_previous_update(&previous);
        }
    }
    boot_check_report_unreported(MQTT_LINK_WAIT_FOREVER); /* what the self-test's call could not send */
    return status_start_heartbeat();
}

const char *ota_agent_device_id(void)
{
    return agent_config_get()->device_id;
}

esp_err_t ota_agent_publish(const char *kind, const char *payload)
{
    return mqtt_link_publish_text(kind, payload, false) >= 0 ? ESP_OK : ESP_ERR_INVALID_STATE;
}
