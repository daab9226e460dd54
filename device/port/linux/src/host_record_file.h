/*
 * A record file the board appends to and the host port follows (host_board.h has the formats): the Wi-Fi
 * access point (host_wifi_ap.c) and the BLE air (host_ble_air.c). Each record is one line, appended with
 * one write(). The file is read from the start (what it says outlives the app's reboots), then tailed:
 * inotify says when to read again, or, once the user's inotify instances are used up (a fleet of over a
 * hundred boards), the owner's task reads it every HOST_RECORD_POLL_MS. A line still being written (no
 * newline yet) waits for the next read. No ESP-IDF counterpart. Only the owner's task calls: nothing locks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* How often a polled file is read: often enough for a test's down()/up(), rare enough that a thousand
   boards' reads cost little CPU. */
#define HOST_RECORD_POLL_MS 200
#define HOST_RECORD_LINE_MAX 256 /* the longest record any file has, plus its NUL */

typedef struct {
    const char *tag;                 /* the owner's log tag */
    void (*apply)(const char *line); /* one whole record, without its newline */
    size_t line_max;                 /* longest record accepted (bytes); a longer one is logged and skipped */
    int file;
    int notify;
    bool polled;
    bool too_long;
    size_t line_len;
    char line[HOST_RECORD_LINE_MAX];
} host_record_file_t;

#define HOST_RECORD_FILE_INIT(tag_, apply_, line_max_) \
    {.tag = (tag_), .apply = (apply_), .line_max = (line_max_), .file = -1, .notify = -1}

/* Opens path, applies what it holds, and returns a descriptor readable when the board appends to it; -1
   when it cannot be followed (logged) or is polled (host_record_file_polled()). */
int host_record_file_open(host_record_file_t *f, const char *path);
/* Reads and applies the records appended since the last call; true when there were any. */
bool host_record_file_update(host_record_file_t *f);
/* True when f is read every HOST_RECORD_POLL_MS instead of on inotify's word. */
bool host_record_file_polled(const host_record_file_t *f);
