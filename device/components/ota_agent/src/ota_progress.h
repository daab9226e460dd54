/*
 * `downloading` events of one update, throttled: one per 5 % of the image (or per second when its size
 * is unknown), the first and the last always. Each event also reaches the application's on_progress.
 * A compressed download's events also say how many decompressed bytes were written (`written`).
 * Used by the agent's own downloader and by an application's installer (ota_agent_report_progress).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *request_id;
    int last_percent;  /* of the last event */
    int64_t last_bytes;
    int64_t last_us;
} ota_progress_t;

void ota_progress_init(ota_progress_t *progress, const char *request_id);
/* Sends an event for received of total bytes (total -1: unknown) when due, or always with force. */
void ota_progress_report(ota_progress_t *progress, int64_t received, int64_t total, bool force);
/* The same for a compressed download: received and total count the stream's bytes (what percent is of),
   written the decompressed bytes written to the slot (the event's `written`). */
void ota_progress_report_written(ota_progress_t *progress, int64_t received, int64_t total, int64_t written, bool force);
/* True when the last event already said received bytes. */
bool ota_progress_reported(const ota_progress_t *progress, int64_t received);
