#include <stdio.h>
#include <string.h>
#include "cJSON.h"
#include "esp_app_desc.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "agent_callbacks.h"
#include "agent_config.h"
#include "boot_check.h"
#include "manifest.h"
#include "ota_updater.h"
#include "ota_events.h"
#include "ota_reason.h"
#include "ota_request.h"

static const char *TAG = "manifest";
static const char *MANIFEST_ID = "manifest";

#define MANIFEST_MAX_LEN 1024
#define MANIFEST_TIMEOUT_MS 10000
#define CONFIRM_POLL_MS 250

static QueueHandle_t s_checks;

/* A manifest event that is not an update's own (those come from ota_updater). */
static void report(const char *state, ota_reason_t reason, int http_status, const char *detail)
{
    cJSON *event = ota_event_new(MANIFEST_ID, state);
    ota_event_add_reason(event, reason);
    if (http_status > 0) {
        cJSON_AddNumberToObject(event, "http_status", http_status);
    }
    cJSON_AddStringToObject(event, "detail", detail);
    ota_event_send(event);
}

/* A check that ended without an update: the application hears it first (and resumes its tasks). */
static void end_check(const char *state, ota_reason_t reason, int http_status, const char *detail)
{
    agent_cb_ended(reason, detail);
    report(state, reason, http_status, detail);
}

/* GETs the manifest into buf; false (after reporting why) on any failure. */
static bool fetch(char *buf, size_t buf_len)
{
    esp_http_client_config_t config = {
        .url = agent_config_get()->manifest_url,
        .timeout_ms = MANIFEST_TIMEOUT_MS,
    };
    esp_http_client_handle_t http = esp_http_client_init(&config);
    if (http == NULL) {
        end_check("failed", OTA_REASON_BAD_COMMAND, 0, "manifest_url is not a valid URL");
        return false;
    }
    bool ok = false;
    esp_err_t err = esp_http_client_open(http, 0);
    if (err != ESP_OK) {
        end_check("failed", OTA_REASON_CONNECT_FAILED, 0, esp_err_to_name(err));
    } else if (esp_http_client_fetch_headers(http) < 0) {
        end_check("failed", OTA_REASON_CONNECT_FAILED, 0, "no response headers from the manifest server");
    } else if (esp_http_client_get_status_code(http) != 200) {
        end_check("failed", OTA_REASON_HTTP_STATUS, esp_http_client_get_status_code(http),
                  "manifest not served with status 200");
    } else {
        int total = 0;
        int n;
        while ((n = esp_http_client_read(http, buf + total, (int)buf_len - 1 - total)) > 0) {
            total += n;
        }
        buf[total] = '\0';
        ok = total > 0;
        if (!ok) {
            end_check("failed", OTA_REASON_CONNECT_FAILED, 0, "empty manifest");
        }
    }
    esp_http_client_close(http);
    esp_http_client_cleanup(http);
    return ok;
}

/* Turns a manifest into an update request; false (after reporting) when there is nothing to do. */
static bool to_request(const char *text, ota_request_t *req)
{
    if (!ota_json_depth_ok(text, strlen(text), OTA_JSON_MAX_DEPTH)) {
        end_check("rejected", OTA_REASON_BAD_COMMAND, 0, "manifest JSON nested too deeply");
        return false;
    }
    cJSON *manifest = cJSON_Parse(text);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(manifest, "version");
    char error[96];
    bool ok = false;
    if (!cJSON_IsString(version) || !ota_request_parse(manifest, req, error, sizeof(error))) {
        end_check("rejected", OTA_REASON_BAD_COMMAND, 0,
                  "manifest needs string fields version and url (and optional sha256)");
    } else {
        const char *running = esp_app_get_description()->version;
        int order = ota_version_compare(version->valuestring, running);
        if (order <= 0) {
            char detail[128]; /* up to 99 bytes: 96 made -Wformat-truncation (an error with -Werror=all) fire */
            snprintf(detail, sizeof(detail), "manifest version %.31s is not newer than %.31s", version->valuestring, running);
            end_check("rejected", order == 0 ? OTA_REASON_SAME_VERSION : OTA_REASON_DOWNGRADE, 0, detail);
        } else {
            snprintf(req->id, sizeof(req->id), "%s", MANIFEST_ID);
            req->app_checked = true;
            ok = true;
        }
    }
    cJSON_Delete(manifest);
    return ok;
}

/* An app that has not confirmed itself cannot start an update (esp_ota_begin refuses it with
   ESP_ERR_OTA_ROLLBACK_INVALID_STATE) and may yet roll back, so checks wait for the self-test, and for
   its `succeeded` to be sent: a check's own event under the same id must not come before it. A failed
   self-test reboots the device, which ends the wait. */
static void wait_until_confirmed(void)
{
    if (boot_check_confirmed()) {
        return;
    }
    ESP_LOGI(TAG, "waiting for the self-test before checking the manifest");
    while (!boot_check_confirmed()) {
        vTaskDelay(pdMS_TO_TICKS(CONFIRM_POLL_MS));
    }
}

static void check_once(void)
{
    static char text[MANIFEST_MAX_LEN];
    static ota_request_t req;
    wait_until_confirmed();
    const char *url = agent_config_get()->manifest_url;
    if (!agent_cb_check_start(MANIFEST_ID, url, "")) {
        report("rejected", OTA_REASON_BUSY, 0, "the application declined the check now (on_check_start); retry later");
        return;
    }
    if (!agent_cb_suspend_tasks()) {
        agent_cb_resume_tasks();
        report("rejected", OTA_REASON_BUSY, 0,
               "the application could not suspend its tasks (on_suspend_tasks); retry later");
        return;
    }
    ESP_LOGI(TAG, "checking %s", url);
    if (fetch(text, sizeof(text)) && to_request(text, &req)) {
        ESP_LOGI(TAG, "manifest offers %s; updating", req.version);
        ota_updater_submit(&req);
    }
}

static void manifest_task(void *arg)
{
    (void)arg;
    int dummy;
    /* The first check waits for the start-up delay, or for a `check` command, whichever comes first. */
    /* Seconds to ticks directly: pdMS_TO_TICKS(s * 1000) overflows for long delays (up to 86400 s). */
    xQueueReceive(s_checks, &dummy, (TickType_t)agent_config_get()->manifest_delay_s * configTICK_RATE_HZ);
    for (;;) {
        check_once();
        xQueueReceive(s_checks, &dummy, portMAX_DELAY);
    }
}

esp_err_t manifest_start(void)
{
    s_checks = xQueueCreate(1, sizeof(int));
    if (s_checks == NULL) {
        return ESP_ERR_NO_MEM;
    }
    if (agent_config_get()->manifest_url[0] == '\0') {
        return ESP_OK; /* manifest mode off; `check` then answers with an event */
    }
    return xTaskCreate(manifest_task, "manifest", 8192, NULL, 4, NULL) == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}

void manifest_request_check(void)
{
    if (agent_config_get()->manifest_url[0] == '\0') {
        report("rejected", OTA_REASON_BAD_COMMAND, 0, "no manifest_url configured (config set manifest_url ...)");
        return;
    }
    if (s_checks == NULL) {
        ESP_LOGW(TAG, "check before manifest_start(); ignored");
        return;
    }
    int token = 1;
    xQueueSend(s_checks, &token, 0); /* a check already queued covers this one */
}
