#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "agent_callbacks.h"
#include "agent_config.h"
#include "boot_check.h"
#include "mqtt_link.h"
#include "ota_events.h"
#include "ota_reason.h"
#include "ota_record.h"
#include "status.h"

/* The self-test decides whether a new image stays: that needs the app to confirm it. ESP-IDF master's
   default rollback mode confirms it before app_main (peers: BOOTLOADER_APP_ROLLBACK_CONFIRM_ON_STARTUP). */
#if CONFIG_BOOTLOADER_APP_ROLLBACK_CONFIRM_ON_STARTUP
#error "ota_agent confirms an update after its self-test: set CONFIG_BOOTLOADER_APP_ROLLBACK_CONFIRM_BY_APP=y"
#endif

static const char *TAG = "boot_check";
static const int UNREPORTED_FLUSH_MS = 5000; /* how long the broker may take to acknowledge them */
/* True from just before the image is marked valid until its `succeeded` is sent: the partition says valid,
   but the outcome is still being saved (NVS: tens of milliseconds of flash on a chip) and reported. */
static atomic_bool s_confirming;

bool boot_check_pending_verify(void)
{
    esp_ota_img_states_t state;
    return esp_ota_get_state_partition(esp_ota_get_running_partition(), &state) == ESP_OK &&
           state == ESP_OTA_IMG_PENDING_VERIFY;
}

bool boot_check_confirmed(void)
{
    /* The partition first: s_confirming is set before it turns valid, so valid and not confirming means done. */
    return !boot_check_pending_verify() && !atomic_load(&s_confirming);
}

static ota_result_t make_result(const char *id, const char *state, ota_reason_t reason, const char *version)
{
    ota_result_t result = {0};
    snprintf(result.id, sizeof(result.id), "%s", id);
    snprintf(result.state, sizeof(result.state), "%s", state);
    snprintf(result.reason, sizeof(result.reason), "%s", ota_reason_name(reason));
    snprintf(result.version, sizeof(result.version), "%s", version);
    return result;
}

static void save_result(const char *id, const char *state, ota_reason_t reason, const char *version)
{
    ota_result_t result = make_result(id, state, reason, version);
    ota_record_save_result(&result);
}

/* `pending`: the update's record, NULL when there is none. */
static void confirm(const ota_pending_t *pending)
{
    atomic_store(&s_confirming, true);
    esp_err_t err = esp_ota_mark_app_valid_cancel_rollback();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_mark_app_valid_cancel_rollback failed: %s", esp_err_to_name(err));
        atomic_store(&s_confirming, false);
        return;
    }
    const char *version = esp_app_get_description()->version;
    ESP_LOGI(TAG, "self-test passed; app %s marked valid, rollback cancelled", version);
    const char *id = pending != NULL ? pending->id : "";
    save_result(id, "succeeded", OTA_REASON_NONE, version);
    if (pending != NULL) {
        ota_record_clear_pending_if(pending);
    }
    cJSON *event = ota_event_new(id, "succeeded");
    cJSON_AddStringToObject(event, "version", version);
    ota_event_send(event);
    status_publish();
    atomic_store(&s_confirming, false);
}

static void roll_back(ota_pending_t *pending, bool have_pending, const char *why)
{
    ESP_LOGE(TAG, "self-test failed (%s); rolling back", why);
    if (have_pending) {
        pending->stage = OTA_RECORD_SELFTEST_FAILED;
        ota_record_save_pending(pending); /* the old firmware reports it after the reboot */
    }
    esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot();
    /* Only reached when no other image is bootable: stay on this one rather than brick. */
    ESP_LOGE(TAG, "esp_ota_mark_app_invalid_rollback_and_reboot failed: %s", esp_err_to_name(err));
}

void boot_check_run_selftest(void)
{
    ota_pending_t pending;
    bool have_pending = ota_record_load_pending(&pending);
    int timeout_s = agent_config_get()->selftest_timeout_s;
    ESP_LOGI(TAG, "new image pending verification; self-test (broker within %d s)", timeout_s);
    if (!mqtt_link_wait_connected(timeout_s * 1000)) {
        roll_back(&pending, have_pending, "broker not reachable");
        return;
    }
    boot_check_report_unreported(0); /* earlier updates' outcomes first, in the order they happened, if the
                                        link is still up (else after the self-test, from ota_agent_start) */
    if (!agent_cb_selftest()) {
        roll_back(&pending, have_pending, "application check");
    } else {
        confirm(have_pending ? &pending : NULL);
    }
}

/* The outcome of a previous update that did not stick, decided from the partitions as this boot finds them. */
static ota_reason_t failure_reason(const ota_pending_t *previous)
{
    const esp_partition_t *invalid = esp_ota_get_last_invalid_partition();
    if (previous->stage == OTA_RECORD_SELFTEST_FAILED) {
        return OTA_REASON_SELFTEST_FAILED;
    }
    if (invalid != NULL && strcmp(invalid->label, previous->target) == 0) {
        return OTA_REASON_BOOT_FAILED; /* crashed or reset before confirming: the bootloader rolled back */
    }
    return OTA_REASON_FLASH_ERROR; /* the switch never happened (power lost before it) */
}

/* An outcome NVS would not take (full, or failing): sent from RAM this boot, its pending record cleared only
   then, so that if this boot cannot send it the next one decides it again. */
static ota_result_t s_unqueued;
static ota_pending_t s_unqueued_pending;
static bool s_have_unqueued;

bool boot_check_take_previous_update(ota_pending_t *previous)
{
    if (!ota_record_load_pending(previous)) {
        return false;
    }
    const esp_partition_t *running = esp_ota_get_running_partition();
    if (strcmp(running->label, previous->target) == 0) {
        return true; /* the new image runs and is confirmed, but its report was lost (reset in between) */
    }
    /* Decided now and queued: an update that starts before the broker answers saves a pending record of its
       own and may reboot before this one is sent; queued, it is sent by whichever firmware reaches the broker. */
    ota_reason_t reason = failure_reason(previous);
    const char *state = reason == OTA_REASON_FLASH_ERROR ? "failed" : "rolled_back";
    ESP_LOGW(TAG, "update %s to %s did not stick (%s); running %s from %s", previous->id, previous->version,
             ota_reason_name(reason), esp_app_get_description()->version, running->label);
    ota_result_t outcome = make_result(previous->id, state, reason, previous->version);
    ota_record_save_result(&outcome);
    if (ota_record_add_unreported(&outcome) == ESP_OK) {
        ota_record_clear_pending_if(previous);
    } else {
        s_unqueued = outcome;
        s_unqueued_pending = *previous;
        s_have_unqueued = true;
    }
    return false;
}

void boot_check_report_previous_update(const ota_pending_t *previous)
{
    confirm(previous);
}

static bool send_outcome(const ota_result_t *outcome)
{
    cJSON *event = ota_event_new(outcome->id, outcome->state);
    ota_event_add_reason(event, ota_reason_from_name(outcome->reason));
    cJSON_AddStringToObject(event, "version", outcome->version);
    return ota_event_send(event) >= 0;
}

/* The queued outcomes were handed to the link in this boot: a later call only waits for the broker to have
   them (sending them again would repeat them in this boot). */
static bool s_sent_this_boot;

void boot_check_report_unreported(int wait_ms)
{
    ota_result_t outcomes[OTA_RECORD_UNREPORTED_MAX];
    size_t n = ota_record_load_unreported(outcomes, OTA_RECORD_UNREPORTED_MAX);
    if (n == 0 && !s_have_unqueued) {
        return;
    }
    if (!s_sent_this_boot) {
        if (!mqtt_link_wait_connected(wait_ms)) {
            return; /* still queued: sent by a later call, or by the next boot */
        }
        bool taken = true;
        for (size_t i = 0; i < n; i++) {
            taken = send_outcome(&outcomes[i]) && taken;
        }
        if (s_have_unqueued) {
            taken = send_outcome(&s_unqueued) && taken;
        }
        status_publish();
        if (!taken) {
            ESP_LOGW(TAG, "the link did not take every earlier update's outcome: kept for the next boot");
            return;
        }
        s_sent_this_boot = true;
    }
    /* Removed once the broker has them (esp-mqtt's outbox and a mesh node's are RAM: a reset or a reboot
       would lose them). Not acknowledged in time, they stay queued and the next boot sends them again: an
       outcome may come twice, never not at all. */
    if (!mqtt_link_flush(UNREPORTED_FLUSH_MS)) {
        ESP_LOGW(TAG, "earlier updates' outcomes not acknowledged within %d ms: kept for the next boot",
                 UNREPORTED_FLUSH_MS);
        return;
    }
    ota_record_remove_unreported(n);
    if (s_have_unqueued) {
        ota_record_clear_pending_if(&s_unqueued_pending);
        s_have_unqueued = false;
    }
}
