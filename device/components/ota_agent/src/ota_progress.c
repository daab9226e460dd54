#include "cJSON.h"
#include "esp_timer.h"
#include "agent_callbacks.h"
#include "ota_events.h"
#include "ota_progress.h"

#define MIN_INTERVAL_US 1000000

void ota_progress_init(ota_progress_t *progress, const char *request_id)
{
    *progress = (ota_progress_t){.request_id = request_id, .last_bytes = -1};
}

void ota_progress_report(ota_progress_t *progress, int64_t received, int64_t total, bool force)
{
    ota_progress_report_written(progress, received, total, -1, force);
}

void ota_progress_report_written(ota_progress_t *progress, int64_t received, int64_t total, int64_t written, bool force)
{
    int percent = total > 0 ? (int)(received * 100 / total) : -1;
    int64_t now = esp_timer_get_time();
    bool due = progress->last_bytes < 0 || now - progress->last_us >= MIN_INTERVAL_US;
    if (!force && !due) {
        return;
    }
    agent_cb_progress(received, total);
    cJSON *event = ota_event_new(progress->request_id, "downloading");
    cJSON_AddNumberToObject(event, "bytes", (double)received);
    cJSON_AddNumberToObject(event, "total", (double)total);
    cJSON_AddNumberToObject(event, "percent", percent);
    if (written >= 0) {
        cJSON_AddNumberToObject(event, "written", (double)written);
    }
    ota_event_send(event);
    progress->last_bytes = received;
    progress->last_us = now;
}

bool ota_progress_reported(const ota_progress_t *progress, int64_t received)
{
    return progress->last_bytes == received;
}
