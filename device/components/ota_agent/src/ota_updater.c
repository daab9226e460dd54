#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "agent_config.h"
#include "agent_callbacks.h"
#include "app_installer.h"
#include "boot_check.h"
#include "mqtt_link.h"
#include "ota_updater.h"
#include "ota_download.h"
#include "ota_push.h"
#include "mesh_dist.h"
#include "ota_events.h"
#include "ota_record.h"
#include "ota_request.h"
#include "status.h"

static const char *TAG = "ota_agent";

static QueueHandle_t s_requests;
static atomic_bool s_busy;
static atomic_bool s_cancel;
static char s_running_id[48];
/* What the running request pushes, to know its command when a pusher sends it again (repeats_running_push) */
static bool s_running_push;
static int64_t s_running_size;
static uint8_t s_running_sha256[32];

static bool is_https(const char *url)
{
    return strncmp(url, "https://", 8) == 0;
}

void ota_updater_reject(const char *id, ota_reason_t reason, const char *detail)
{
    ESP_LOGW(TAG, "request %s rejected: %s (%s)", id, ota_reason_name(reason), detail);
    cJSON *event = ota_event_new(id, "rejected");
    ota_event_add_reason(event, reason);
    cJSON_AddStringToObject(event, "detail", detail);
    ota_event_send(event);
}

/* A command its parser refused: `rejected`/`bad_command` under its id when that is a usable one. */
static void reject_unparsed(const cJSON *command, const char *error)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(command, "id");
    const char *req_id = cJSON_IsString(id) && strlen(id->valuestring) < 48 ? id->valuestring : "";
    ota_updater_reject(req_id, OTA_REASON_BAD_COMMAND, error);
}

void ota_updater_handle_ota(const cJSON *command)
{
    ota_request_t req;
    char error[96];
    if (!ota_request_parse(command, &req, error, sizeof(error))) {
        reject_unparsed(command, error);
        return;
    }
    ota_updater_submit(&req);
}

void ota_updater_handle_mesh_rx(const cJSON *command)
{
    static ota_request_t req; /* off the command task's stack, as a push's */
    char error[96];
    if (!ota_request_parse_mesh_rx(command, &req, error, sizeof(error))) {
        reject_unparsed(command, error);
        return;
    }
    ota_updater_submit(&req);
}

void ota_updater_handle_push(const cJSON *command)
{
    static ota_request_t req; /* 400 bytes: off the command task's stack */
    char error[96];
    if (!ota_request_parse_push(command, &req, error, sizeof(error))) {
        reject_unparsed(command, error);
        return;
    }
    ota_updater_submit(&req);
}

/* A submitted request refused before it ran. One whose application callbacks already ran (a manifest
   check) hears how it ended too, so that it resumes its tasks. */
static void refuse(const ota_request_t *req, ota_reason_t reason, const char *detail)
{
    if (req->app_checked) {
        agent_cb_ended(reason, detail);
    }
    ota_updater_reject(req->id, reason, detail);
}

/* The same id, size and SHA-256 as the push running (or queued to run) now. */
static bool repeats_running_push(const ota_request_t *req)
{
    return req->push && s_running_push && req->id[0] != '\0' && strcmp(req->id, s_running_id) == 0 &&
           req->size == s_running_size && memcmp(req->sha256, s_running_sha256, sizeof(s_running_sha256)) == 0;
}

void ota_updater_submit(const ota_request_t *req)
{
    if (!req->push && !req->mesh_rx && agent_config_get()->require_https && !is_https(req->url)) {
        refuse(req, OTA_REASON_BAD_COMMAND, "plain http refused: require_https is set");
        return;
    }
    if (boot_check_pending_verify()) {
        /* esp_ota_begin() refuses to write while the running image is unconfirmed
         * (ESP_ERR_OTA_ROLLBACK_INVALID_STATE): say so before downloading anything. */
        refuse(req, OTA_REASON_BUSY, "the running firmware is still verifying itself; retry after it confirms");
        return;
    }
    bool expected = false;
    if (!atomic_compare_exchange_strong(&s_busy, &expected, true)) {
        if (repeats_running_push(req)) { /* not a second push: its pusher missed the first answer */
            ESP_LOGI(TAG, "push %s sent again: acknowledging where it is", req->id);
            ota_push_ack_again();
            return;
        }
        refuse(req, OTA_REASON_BUSY, "another update is running");
        return;
    }
    atomic_store(&s_cancel, false);
    snprintf(s_running_id, sizeof(s_running_id), "%s", req->id);
    s_running_push = req->push;
    s_running_size = req->size;
    memcpy(s_running_sha256, req->sha256, sizeof(s_running_sha256));
    if (xQueueSend(s_requests, req, 0) != pdPASS) {
        atomic_store(&s_busy, false);
        refuse(req, OTA_REASON_BUSY, "request queue full");
    }
}

void ota_updater_handle_cancel(const cJSON *command)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(command, "id");
    const char *wanted = cJSON_IsString(id) ? id->valuestring : "";
    if (!atomic_load(&s_busy) || (wanted[0] != '\0' && strcmp(wanted, s_running_id) != 0)) {
        ota_updater_reject(wanted, OTA_REASON_BAD_COMMAND, "no such update is running");
        return;
    }
    ESP_LOGI(TAG, "cancel requested for %s", s_running_id);
    atomic_store(&s_cancel, true);
}

void ota_updater_handle_reboot(const cJSON *command)
{
    (void)command;
    ESP_LOGI(TAG, "reboot requested over MQTT");
    if (atomic_load(&s_busy)) {
        ota_updater_reject("", OTA_REASON_BUSY, "an update is running; cancel it first");
        return;
    }
    mqtt_link_flush(1000);
    esp_restart();
}

static void save_result(const ota_request_t *req, const char *state, ota_reason_t reason)
{
    ota_result_t result = {0};
    snprintf(result.id, sizeof(result.id), "%s", req->id);
    snprintf(result.state, sizeof(result.state), "%s", state);
    snprintf(result.reason, sizeof(result.reason), "%s", ota_reason_name(reason));
    snprintf(result.version, sizeof(result.version), "%s", req->version);
    ota_record_save_result(&result);
}

static bool cancel_requested(void)
{
    return atomic_load(&s_cancel);
}

/* Asks the application (on_check_start, on_suspend_tasks) unless a manifest check already did;
   false after answering the request `rejected`/`busy`. */
static bool application_agrees(const ota_request_t *req)
{
    if (req->app_checked) {
        return true;
    }
    const char *detail = NULL;
    if (!agent_cb_check_start(req->id, req->url, req->version)) {
        detail = "the application declined the update now (on_check_start); retry later";
    } else if (!agent_cb_suspend_tasks()) {
        agent_cb_resume_tasks();
        detail = "the application could not suspend its tasks (on_suspend_tasks); retry later";
    } else {
        return true;
    }
    atomic_store(&s_busy, false); /* as after an outcome: free before anyone hears of it */
    ota_updater_reject(req->id, OTA_REASON_BUSY, detail);
    return false;
}

static void run_request(const ota_request_t *req)
{
    if (!application_agrees(req)) {
        return;
    }
    ota_event_send(ota_event_new(req->id, "accepted"));
    agent_cb_started(req);
    /* A push is always the agent's: an application's installer fetches from a URL. Either way it runs
       here, on the one update task, so a URL update and a push exclude each other (s_busy). */
    ota_outcome_t outcome = req->push                 ? ota_push_receive(req, cancel_requested)
                            : req->mesh_rx            ? mesh_dist_receive(req, cancel_requested)
                            : app_installer_present() ? app_installer_run(req, cancel_requested)
                                                      : ota_download_and_switch(req, cancel_requested);
    if (outcome.reason == OTA_REASON_NONE) {
        mesh_dist_after_switch(req, &outcome); /* a mesh root serves the image before it reboots */
        ESP_LOGI(TAG, "update %s written to %s; rebooting", req->id, outcome.target_label);
        agent_cb_finished(req);
        ota_event_send(ota_event_new(req->id, "rebooting"));
        mqtt_link_flush(2000);
        esp_restart();
    }
    const char *state = outcome.reason == OTA_REASON_CANCELLED ? "cancelled" : outcome.state;
    cJSON *event = ota_event_new(req->id, state);
    ota_event_add_reason(event, outcome.reason);
    if (outcome.http_status > 0) {
        cJSON_AddNumberToObject(event, "http_status", outcome.http_status);
    }
    if (outcome.detail[0] != '\0') {
        cJSON_AddStringToObject(event, "detail", outcome.detail);
    }
    if (outcome.compressed) { /* how much of the inflated image reached the slot (docs/protocol.md) */
        cJSON_AddNumberToObject(event, "written", (double)outcome.written);
    }
    save_result(req, state, outcome.reason);
    agent_cb_ended(outcome.reason, outcome.detail);
    /* Ready for the next update before anyone hears that this one ended: a client that sends its next
     * request as soon as it sees the outcome must not find the agent still busy. A request taken now
     * waits in s_requests until this task has published the outcome and the status. */
    atomic_store(&s_busy, false);
    ota_event_send(event);
    status_publish();
}

static void ota_task(void *arg)
{
    (void)arg;
    static ota_request_t req;
    for (;;) {
        if (xQueueReceive(s_requests, &req, portMAX_DELAY) == pdPASS) {
            run_request(&req); /* returns only when the update ended without a reboot, no longer busy */
        }
    }
}

esp_err_t ota_updater_start(void)
{
    s_requests = xQueueCreate(1, sizeof(ota_request_t));
    if (s_requests == NULL) {
        return ESP_ERR_NO_MEM;
    }
    esp_err_t err = ota_push_init();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "ota_push_init failed: %s", esp_err_to_name(err));
        return err;
    }
    return xTaskCreate(ota_task, "ota", 8192, NULL, 5, NULL) == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}
