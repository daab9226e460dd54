#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "app_config.h"
#include "boot_check.h"
#include "manifest.h"
#include "mqtt_link.h"
#include "ota_agent.h"
#include "ota_download.h"
#include "ota_events.h"
#include "ota_record.h"
#include "ota_request.h"
#include "status.h"

static const char *TAG = "ota_agent";

static QueueHandle_t s_requests;
static atomic_bool s_busy;
static atomic_bool s_cancel;
static char s_running_id[48];

static bool is_https(const char *url)
{
    return strncmp(url, "https://", 8) == 0;
}

static void reject(const char *id, const char *reason, const char *detail)
{
    ESP_LOGW(TAG, "request %s rejected: %s (%s)", id, reason, detail);
    cJSON *event = ota_event_new(id, "rejected");
    cJSON_AddStringToObject(event, "reason", reason);
    cJSON_AddStringToObject(event, "detail", detail);
    ota_event_send(event);
}

static void handle_ota_command(const cJSON *command)
{
    ota_request_t req;
    char error[96];
    if (!ota_request_parse(command, &req, error, sizeof(error))) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(command, "id");
        reject(cJSON_IsString(id) && strlen(id->valuestring) < 48 ? id->valuestring : "", "bad_command", error);
        return;
    }
    ota_agent_submit(&req);
}

void ota_agent_submit(const ota_request_t *req)
{
    if (app_config_get()->require_https && !is_https(req->url)) {
        reject(req->id, "bad_command", "plain http refused: require_https is set");
        return;
    }
    if (boot_check_pending_verify()) {
        /* esp_ota_begin() refuses to write while the running image is unconfirmed
         * (ESP_ERR_OTA_ROLLBACK_INVALID_STATE): say so before downloading anything. */
        reject(req->id, "busy", "the running firmware is still verifying itself; retry after it confirms");
        return;
    }
    bool expected = false;
    if (!atomic_compare_exchange_strong(&s_busy, &expected, true)) {
        reject(req->id, "busy", "another update is running");
        return;
    }
    atomic_store(&s_cancel, false);
    snprintf(s_running_id, sizeof(s_running_id), "%s", req->id);
    if (xQueueSend(s_requests, req, 0) != pdPASS) {
        atomic_store(&s_busy, false);
        reject(req->id, "busy", "request queue full");
    }
}

static void handle_cancel_command(const cJSON *command)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(command, "id");
    const char *wanted = cJSON_IsString(id) ? id->valuestring : "";
    if (!atomic_load(&s_busy) || (wanted[0] != '\0' && strcmp(wanted, s_running_id) != 0)) {
        reject(wanted, "bad_command", "no such update is running");
        return;
    }
    ESP_LOGI(TAG, "cancel requested for %s", s_running_id);
    atomic_store(&s_cancel, true);
}

static void handle_reboot_command(void)
{
    ESP_LOGI(TAG, "reboot requested over MQTT");
    if (atomic_load(&s_busy)) {
        reject("", "busy", "an update is running; cancel it first");
        return;
    }
    mqtt_link_flush(1000);
    esp_restart();
}

void ota_agent_handle_command(const mqtt_link_command_t *cmd)
{
    if (cmd->kind == MQTT_LINK_COMMAND_QUEUE_FULL) {
        reject(cmd->id, "busy", "command queue full; send it again later");
        return;
    }
    if (cmd->kind == MQTT_LINK_COMMAND_TOO_LONG) {
        reject("", "bad_command", "command longer than 4096 bytes");
        return;
    }
    const char *payload = cmd->payload;
    int len = cmd->len;
    if (!ota_json_depth_ok(payload, (size_t)len, OTA_JSON_MAX_DEPTH)) {
        reject("", "bad_command", "JSON nested too deeply for a command");
        return;
    }
    cJSON *command = cJSON_ParseWithLength(payload, (size_t)len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(command, "type");
    if (command == NULL || !cJSON_IsObject(command) || !cJSON_IsString(type)) {
        reject("", "bad_command", "not a JSON object with a string \"type\"");
    } else if (strcmp(type->valuestring, "ota") == 0 || strcmp(type->valuestring, "ota_trigger") == 0) {
        handle_ota_command(command);
    } else if (strcmp(type->valuestring, "cancel") == 0) {
        handle_cancel_command(command);
    } else if (strcmp(type->valuestring, "status") == 0) {
        status_publish();
    } else if (strcmp(type->valuestring, "reboot") == 0) {
        handle_reboot_command();
    } else if (strcmp(type->valuestring, "check") == 0) {
        manifest_request_check();
    } else {
        reject("", "bad_command", "unknown command type");
    }
    cJSON_Delete(command);
}

static void save_result(const ota_request_t *req, const char *state, const char *reason)
{
    ota_result_t result = {0};
    snprintf(result.id, sizeof(result.id), "%s", req->id);
    snprintf(result.state, sizeof(result.state), "%s", state);
    snprintf(result.reason, sizeof(result.reason), "%s", reason != NULL ? reason : "");
    snprintf(result.version, sizeof(result.version), "%s", req->version);
    ota_record_save_result(&result);
}

static bool cancel_requested(void)
{
    return atomic_load(&s_cancel);
}

static void run_request(const ota_request_t *req)
{
    ota_event_send(ota_event_new(req->id, "accepted"));
    ota_outcome_t outcome = ota_download_and_switch(req, cancel_requested);
    if (outcome.reason == NULL) {
        ESP_LOGI(TAG, "update %s written to %s; rebooting", req->id, outcome.target_label);
        ota_event_send(ota_event_new(req->id, "rebooting"));
        mqtt_link_flush(2000);
        esp_restart();
    }
    const char *state = strcmp(outcome.reason, "cancelled") == 0 ? "cancelled" : outcome.state;
    cJSON *event = ota_event_new(req->id, state);
    cJSON_AddStringToObject(event, "reason", outcome.reason);
    if (outcome.http_status > 0) {
        cJSON_AddNumberToObject(event, "http_status", outcome.http_status);
    }
    if (outcome.detail[0] != '\0') {
        cJSON_AddStringToObject(event, "detail", outcome.detail);
    }
    ota_event_send(event);
    save_result(req, state, outcome.reason);
    status_publish();
}

static void ota_task(void *arg)
{
    (void)arg;
    static ota_request_t req;
    for (;;) {
        if (xQueueReceive(s_requests, &req, portMAX_DELAY) == pdPASS) {
            run_request(&req);
            atomic_store(&s_busy, false);
        }
    }
}

esp_err_t ota_agent_start(void)
{
    s_requests = xQueueCreate(1, sizeof(ota_request_t));
    if (s_requests == NULL) {
        return ESP_ERR_NO_MEM;
    }
    return xTaskCreate(ota_task, "ota", 8192, NULL, 5, NULL) == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}
