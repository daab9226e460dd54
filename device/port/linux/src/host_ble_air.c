/*
 * Reads the board's BLE air (host_board.h, HIL_BLE_AIR): an append-only file of records, read from
 * the start (the air outlives the app's reboots) and then tailed. The board appends each record with
 * one write(); inotify tells the radio task when, so it never polls the file. A line the board is
 * still writing (no newline yet) waits for the next read. No ESP-IDF counterpart.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "esp_log.h"
#include "host_ble_air.h"
#include "host_board.h"

static const char *TAG = "ble_air";

#define LINE_MAX_LEN 256  /* the longest record: "<t> adv <addr> <rssi> <interval> <62 hex digits>" */

static host_ble_advertiser_t s_devices[HOST_BLE_AIR_MAX_DEVICES];
static size_t s_count;
static int s_file = -1;
static int s_notify = -1;
static char s_line[LINE_MAX_LEN];
static size_t s_line_len;
static bool s_line_too_long;

static bool parse_addr(const char *text, uint8_t addr[6])
{
    unsigned int b[6];
    char end;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        addr[i] = (uint8_t)b[i];
    }
    return true;
}

static bool parse_hex(const char *text, uint8_t *out, uint8_t *len)
{
    size_t digits = strlen(text);
    if (strcmp(text, "-") == 0) {
        *len = 0;
        return true;
    }
    if (digits % 2 != 0 || digits / 2 > HOST_BLE_ADV_DATA_MAX) {
        return false;
    }
    for (size_t i = 0; i < digits / 2; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) {
            return false;
        }
        out[i] = (uint8_t)byte;
    }
    *len = (uint8_t)(digits / 2);
    return true;
}

static host_ble_advertiser_t *find(const uint8_t addr[6])
{
    for (size_t i = 0; i < s_count; i++) {
        if (memcmp(s_devices[i].addr, addr, 6) == 0) {
            return &s_devices[i];
        }
    }
    return NULL;
}

static void remove_device(const uint8_t addr[6])
{
    host_ble_advertiser_t *dev = find(addr);
    if (dev != NULL) {
        *dev = s_devices[--s_count]; /* order does not matter: the radio hears them by time */
    }
}

static bool apply_adv(int64_t t_ns, const char *args)
{
    char addr_text[24], hex[2 * HOST_BLE_ADV_DATA_MAX + 2];
    int rssi;
    unsigned int interval_ms;
    host_ble_advertiser_t dev = {.first_ns = t_ns};
    if (sscanf(args, "%23s %d %u %63s", addr_text, &rssi, &interval_ms, hex) != 4 ||
        !parse_addr(addr_text, dev.addr) || !parse_hex(hex, dev.adv, &dev.adv_len) || interval_ms == 0) {
        return false;
    }
    dev.rssi = rssi;
    dev.interval_ns = (int64_t)interval_ms * 1000000;
    host_ble_advertiser_t *slot = find(dev.addr);
    if (slot != NULL) {
        dev.heard_until_ns = slot->heard_until_ns; /* the radio has heard this address up to there */
    } else if (s_count < HOST_BLE_AIR_MAX_DEVICES) {
        slot = &s_devices[s_count++];
    } else {
        ESP_LOGW(TAG, "more than %d devices advertising: %s ignored", HOST_BLE_AIR_MAX_DEVICES, addr_text);
        return true;
    }
    *slot = dev;
    return true;
}

static void apply(const char *line)
{
    long long t_ns;
    char verb[8];
    int used = 0;
    bool ok = false;
    if (sscanf(line, "%lld %7s %n", &t_ns, verb, &used) >= 2) {
        const char *args = line + used;
        uint8_t addr[6];
        if (strcmp(verb, "adv") == 0) {
            ok = apply_adv(t_ns, args);
        } else if (strcmp(verb, "stop") == 0 && parse_addr(args, addr)) {
            remove_device(addr);
            ok = true;
        } else if (strcmp(verb, "clear") == 0) {
            s_count = 0;
            ok = true;
        }
    }
    if (!ok) {
        ESP_LOGW(TAG, "record not understood: %s", line);
    }
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

void host_ble_air_update(void)
{
    char buf[4096];
    char events[4096];
    /* Drain the notifications first: a write after this read is notified again. */
    while (s_notify >= 0 && read(s_notify, events, sizeof(events)) > 0) {
    }
    ssize_t n;
    while (s_file >= 0 && (n = read(s_file, buf, sizeof(buf))) > 0) {
        take(buf, (size_t)n);
    }
}

int host_ble_air_open(void)
{
    const char *path = getenv(HOST_ENV_BLE_AIR);
    if (path == NULL || path[0] == '\0') {
        ESP_LOGD(TAG, "no " HOST_ENV_BLE_AIR ": nothing advertises");
        return -1;
    }
    s_notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    s_file = open(path, O_RDONLY | O_CLOEXEC);
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
    host_ble_air_update();
    return s_notify;
}

size_t host_ble_air_count(void)
{
    return s_count;
}

host_ble_advertiser_t *host_ble_air_device(size_t index)
{
    return index < s_count ? &s_devices[index] : NULL;
}
