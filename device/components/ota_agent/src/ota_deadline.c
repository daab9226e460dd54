#include "esp_timer.h"
#include "ota_deadline.h"

void ota_deadline_start(ota_deadline_t *deadline, const ota_request_t *req, bool (*cancelled)(void))
{
    int64_t now = esp_timer_get_time();
    *deadline = (ota_deadline_t){
        .cancelled = cancelled,
        .deadline_us = now + (int64_t)req->timeout_s * 1000000,
        .last_data_us = now,
        .idle_us = (int64_t)req->idle_timeout_s * 1000000,
    };
}

void ota_deadline_restart_idle(ota_deadline_t *deadline)
{
    deadline->last_data_us = esp_timer_get_time();
}

int64_t ota_deadline_left_us(const ota_deadline_t *deadline)
{
    return deadline->deadline_us - esp_timer_get_time();
}

bool ota_deadline_check(const ota_deadline_t *deadline, bool check_idle, const char *idle_detail, ota_outcome_t *out)
{
    int64_t now = esp_timer_get_time();
    if (deadline->cancelled()) {
        return ota_outcome_fail(out, "cancelled", OTA_REASON_CANCELLED, "cancelled by command");
    }
    if (now >= deadline->deadline_us) {
        return ota_outcome_fail(out, "failed", OTA_REASON_TIMEOUT, "overall deadline passed");
    }
    if (check_idle && now - deadline->last_data_us >= deadline->idle_us) {
        return ota_outcome_fail(out, "failed", OTA_REASON_IDLE_TIMEOUT, idle_detail);
    }
    return true;
}
