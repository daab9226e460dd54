/*
 * Reads the board's access point file (host_board.h, HIL_WIFI_AP): an append-only file of records, read
 * from the start (the AP's state outlives the app's reboots) and then tailed, as host_ble_air.c reads the
 * BLE air. The board appends each record with one write(); inotify tells the Wi-Fi driver's task when,
 * so it never polls the file. A line still being written (no newline yet) waits for the next read.
 * No ESP-IDF counterpart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "esp_log.h"
#include "host_board.h"
#include "host_wifi_ap.h"

static const char *TAG = "wifi_ap";

#define LINE_MAX_LEN 64 /* the longest record: "<t> rssi <dBm>" */

static bool s_present = true;
static int s_rssi = HOST_WIFI_AP_DEFAULT_RSSI;
static int64_t s_changed_ns;
static int s_file = -1;
static int s_notify = -1;
static bool s_polled; /* no inotify instance: the driver task reads the file every HOST_WIFI_AP_POLL_MS */
static char s_line[LINE_MAX_LEN];
static size_t s_line_len;
static bool s_line_too_long;

static void apply(const char *line)
{
    long long t_ns;
    char verb[8];
    int used = 0;
    int rssi;
    if (sscanf(line, "%lld %7s %n", &t_ns, verb, &used) >= 2) {
        bool present = strcmp(verb, "up") == 0;
        if (present || strcmp(verb, "down") == 0) {
            if (present != s_present) {
                s_present = present;
                s_changed_ns = t_ns;
            }
            return;
        }
        if (strcmp(verb, "rssi") == 0 && sscanf(line + used, "%d", &rssi) == 1 && rssi >= -128 && rssi <= 0) {
            s_rssi = rssi;
            return;
        }
    }
    ESP_LOGW(TAG, "record not understood: %s", line);
}

static void take(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (s_line_len < sizeof(s_line) - 1) {
                s_line[s_line_len++] = data[i];
            } else {
                s_line_too_long = true;
            }
            continue;
        }
        s_line[s_line_len] = '\0';
        if (s_line_too_long) {
            ESP_LOGW(TAG, "record longer than %d bytes ignored", LINE_MAX_LEN - 1);
        } else if (s_line_len > 0) {
            apply(s_line);
        }
        s_line_len = 0;
        s_line_too_long = false;
    }
}

bool host_wifi_ap_update(void)
{
    char buf[1024];
    char events[1024];
    /* Drain the notifications first: a write after this read is notified again. */
    while (s_notify >= 0 && read(s_notify, events, sizeof(events)) > 0) {
    }
    ssize_t n;
    bool read_any = false;
    while (s_file >= 0 && (n = read(s_file, buf, sizeof(buf))) > 0) {
        take(buf, (size_t)n);
        read_any = true;
    }
    return read_any;
}

bool host_wifi_ap_polled(void)
{
    return s_polled;
}

int host_wifi_ap_open(void)
{
    const char *path = getenv(HOST_ENV_WIFI_AP);
    if (path == NULL || path[0] == '\0') {
        ESP_LOGD(TAG, "no " HOST_ENV_WIFI_AP ": the access point is always in range");
        return -1;
    }
    s_notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    s_file = open(path, O_RDONLY | O_CLOEXEC);
    if (s_file >= 0 && s_notify < 0 && (errno == EMFILE || errno == ENFILE)) {
        /* Every inotify instance of the user is taken (a fleet of boards): read the file periodically. */
        ESP_LOGW(TAG, "no inotify instance left (%s): reading %s every %d ms instead", strerror(errno), path,
                 HOST_WIFI_AP_POLL_MS);
        s_polled = true;
        host_wifi_ap_update();
        return -1;
    }
    if (s_file < 0 || s_notify < 0 || inotify_add_watch(s_notify, path, IN_MODIFY) < 0) {
        ESP_LOGE(TAG, "cannot follow %s: %s", path, strerror(errno));
        if (s_file >= 0) {
            close(s_file);
            s_file = -1;
        }
        if (s_notify >= 0) {
            close(s_notify);
            s_notify = -1;
        }
        return -1;
    }
    host_wifi_ap_update();
    return s_notify;
}

bool host_wifi_ap_present(void)
{
    return s_present;
}

int host_wifi_ap_rssi(void)
{
    return s_rssi;
}

int64_t host_wifi_ap_changed_ns(void)
{
    return s_changed_ns;
}
