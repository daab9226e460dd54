#include <stdint.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "agent_callbacks.h"

static const char *TAG = "ota_agent_cb";

static ota_agent_callbacks_t s_cb;

void agent_callbacks_set(const ota_agent_callbacks_t *callbacks)
{
    s_cb = *callbacks;
}

static ota_agent_update_t update_of(const ota_request_t *req)
{
    return (ota_agent_update_t){.id = req->id, .url = req->url, .version = req->version};
}

bool agent_cb_check_start(const char *id, const char *url, const char *version)
{
    ota_agent_update_t update = {.id = id, .url = url, .version = version};
    bool go = s_cb.on_check_start == NULL || s_cb.on_check_start(&update, s_cb.user_ctx);
    if (!go) {
        ESP_LOGW(TAG, "on_check_start refused update %s", id);
    }
    return go;
}

bool agent_cb_suspend_tasks(void)
{
    bool ok = s_cb.on_suspend_tasks == NULL || s_cb.on_suspend_tasks(s_cb.user_ctx);
    if (!ok) {
        ESP_LOGW(TAG, "on_suspend_tasks failed; the update is refused");
    }
    return ok;
}

void agent_cb_started(const ota_request_t *req)
{
    if (s_cb.on_started != NULL) {
        ota_agent_update_t update = update_of(req);
        s_cb.on_started(&update, s_cb.user_ctx);
    }
}

void agent_cb_progress(int64_t current, int64_t total)
{
    size_t known_total = total > 0 ? (size_t)total : 0;
    if (s_cb.on_progress != NULL) {
        s_cb.on_progress((size_t)current, known_total, s_cb.user_ctx);
    }
}

void agent_cb_finished(const ota_request_t *req)
{
    if (s_cb.on_finished != NULL) {
        ota_agent_update_t update = update_of(req);
        s_cb.on_finished(&update, s_cb.user_ctx);
    }
}

void agent_cb_resume_tasks(void)
{
    if (s_cb.on_resume_tasks != NULL) {
        s_cb.on_resume_tasks(s_cb.user_ctx);
    }
}

void agent_cb_ended(ota_reason_t reason, const char *detail)
{
    if (reason == OTA_REASON_SAME_VERSION) {
        const char *version = esp_app_get_description()->version; /* the offered one is the same */
        if (s_cb.on_up_to_date != NULL) {
            s_cb.on_up_to_date(version, s_cb.user_ctx);
        }
    } else {
        if (s_cb.on_failed != NULL) {
            s_cb.on_failed(ota_reason_name(reason), detail != NULL ? detail : "", s_cb.user_ctx);
        }
    }
    agent_cb_resume_tasks();
}

bool agent_cb_selftest(void)
{
    bool pass = s_cb.selftest == NULL || s_cb.selftest(s_cb.user_ctx);
    if (!pass) {
        ESP_LOGE(TAG, "the application's self-test failed");
    }
    return pass;
}

bool agent_cb_has_install(void)
{
    return s_cb.install != NULL;
}

esp_err_t agent_cb_install(const ota_request_t *req, const char *ca_cert_pem, ota_agent_install_result_t *result)
{
    ota_agent_update_t update = update_of(req);
    update.ca_cert_pem = ca_cert_pem;
    return s_cb.install(&update, result, s_cb.user_ctx);
}
