#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "ota_agent.h"
#include "agent_callbacks.h"
#include "agent_config.h"
#include "app_installer.h"
#include "ota_progress.h"
#include "ota_record.h"

static const char *TAG = "ota_agent";

static ota_progress_t s_progress;
static int64_t s_current; /* the installer's last report */
static int64_t s_total;
static atomic_bool s_installing;
static bool (*s_cancelled)(void);

bool app_installer_present(void)
{
    return agent_cb_has_install();
}

void ota_agent_report_progress(size_t current, size_t total)
{
    if (!atomic_load(&s_installing)) {
        ESP_LOGW(TAG, "ota_agent_report_progress outside an installer's update; ignored");
        return;
    }
    s_current = (int64_t)current;
    s_total = total > 0 ? (int64_t)total : -1;
    if (ota_progress_reported(&s_progress, s_current)) {
        return; /* said already (an installer may report its last count twice) */
    }
    ota_progress_report(&s_progress, s_current, s_total, s_current == s_total);
}

bool ota_agent_cancel_requested(void)
{
    return atomic_load(&s_installing) && s_cancelled != NULL && s_cancelled();
}

/* The reason for an installer's error when it named none: esp_https_ota's and esp_ota_*'s errors. */
static ota_reason_t reason_of_error(esp_err_t err)
{
    switch (err) {
    case ESP_ERR_OTA_VALIDATE_FAILED:
        return OTA_REASON_INVALID_IMAGE;
    case ESP_ERR_INVALID_VERSION: /* esp_https_ota's chip id and chip revision checks */
        return OTA_REASON_WRONG_CHIP;
    case ESP_ERR_INVALID_SIZE:
        return OTA_REASON_TOO_LARGE;
    case ESP_ERR_TIMEOUT:
        return OTA_REASON_TIMEOUT;
    case ESP_ERR_OTA_PARTITION_CONFLICT:
    case ESP_ERR_OTA_SELECT_INFO_INVALID:
    case ESP_ERR_NOT_FOUND:
        return OTA_REASON_FLASH_ERROR;
    default:
        /* ESP_ERR_HTTP_* and ESP_FAIL, which esp_https_ota returns for a failed request */
        return OTA_REASON_CONNECT_FAILED;
    }
}

static void fail(ota_outcome_t *out, ota_reason_t reason, int http_status, const char *detail)
{
    out->reason = reason;
    out->state = reason == OTA_REASON_SAME_VERSION || reason == OTA_REASON_DOWNGRADE ? "rejected" : "failed";
    out->http_status = reason == OTA_REASON_HTTP_STATUS ? http_status : 0;
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
}

static void take_result(ota_outcome_t *out, esp_err_t err, const ota_agent_install_result_t *result, bool cancelled)
{
    ota_reason_t reason = cancelled ? OTA_REASON_CANCELLED : ota_reason_from_name(result->reason);
    if (reason == OTA_REASON_COUNT) {
        if (result->reason != NULL) {
            ESP_LOGW(TAG, "installer named unknown reason '%s'", result->reason);
        }
        reason = reason_of_error(err);
    }
    fail(out, reason, result->http_status, result->detail != NULL ? result->detail : esp_err_to_name(err));
}

/* The installer said ESP_OK: the image it wrote must be the one set to boot. */
static bool check_switched(ota_outcome_t *out, const esp_partition_t *target, ota_pending_t *pending)
{
    const esp_partition_t *boot = esp_ota_get_boot_partition();
    if (boot == NULL || boot->address != target->address) {
        fail(out, OTA_REASON_FLASH_ERROR, 0, "the installer returned ESP_OK without setting the new image to boot");
        return false;
    }
    esp_app_desc_t desc;
    if (esp_ota_get_partition_description(target, &desc) == ESP_OK) {
        snprintf(pending->version, sizeof(pending->version), "%.31s", desc.version);
        ota_record_save_pending(pending); /* with the version the image itself says */
    }
    return true;
}

ota_outcome_t app_installer_run(const ota_request_t *req, bool (*cancelled)(void))
{
    ota_outcome_t out = {.reason = OTA_REASON_NONE};
    const esp_partition_t *target = esp_ota_get_next_update_partition(NULL);
    if (target == NULL) {
        fail(&out, OTA_REASON_FLASH_ERROR, 0, "no OTA slot to write");
        return out;
    }
    snprintf(out.target_label, sizeof(out.target_label), "%s", target->label);
    /* Persisted before the installer runs, as ota_download does before the switch: the installer
       switches the boot partition itself, so whichever firmware boots next can name this request. */
    ota_pending_t pending = {.stage = OTA_RECORD_REBOOTING};
    snprintf(pending.id, sizeof(pending.id), "%s", req->id);
    snprintf(pending.version, sizeof(pending.version), "%s", req->version);
    snprintf(pending.target, sizeof(pending.target), "%s", target->label);
    snprintf(pending.previous, sizeof(pending.previous), "%s", esp_ota_get_running_partition()->label);
    esp_err_t err = ota_record_save_pending(&pending);
    if (err != ESP_OK) {
        fail(&out, OTA_REASON_FLASH_ERROR, 0, esp_err_to_name(err));
        return out;
    }

    ESP_LOGI(TAG, "installing %s into %s with the application's installer", req->url, target->label);
    ota_progress_init(&s_progress, req->id);
    s_current = 0;
    s_total = -1;
    s_cancelled = cancelled;
    atomic_store(&s_installing, true);
    ota_agent_install_result_t result = {0};
    static char ca_pem[AGENT_CONFIG_CA_MAX + 128];
    bool have_ca = agent_config_ca_pem(ca_pem, sizeof(ca_pem));
    err = agent_cb_install(req, have_ca ? ca_pem : NULL, &result);
    atomic_store(&s_installing, false);
    if (err == ESP_OK && !ota_progress_reported(&s_progress, s_current)) {
        ota_progress_report(&s_progress, s_current, s_total, true); /* the last one, when the size was unknown */
    }
    if (err == ESP_OK && check_switched(&out, target, &pending)) {
        return out;
    }
    if (err != ESP_OK) {
        take_result(&out, err, &result, cancelled());
    }
    ota_record_clear_pending();
    return out;
}
