/*
 * `downloading` events of one update, throttled to at most one per second: the first and the last always,
 * between them one once a second has passed since the previous one. A slow link (64 KB/s) thus costs
 * the broker one message a second per device, a fast one two per update; a per-percent step would send
 * 20 a second on a slow link. Each event also reaches the application's on_progress.
 * A compressed download's events also say how many decompressed bytes were written (`written`).
 * Used by the agent's own downloader and by an application's installer (ota_agent_report_progress).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *request_id;
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
