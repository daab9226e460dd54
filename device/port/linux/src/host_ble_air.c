/*
 * The board's BLE air (host_board.h, HIL_BLE_AIR): its records, "<t> adv ...", "<t> stop <addr>" and
 * "<t> clear", followed as host_record_file.h says. No ESP-IDF counterpart.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_log.h"
#include "host_ble_air.h"
#include "host_board.h"
#include "host_record_file.h"

static const char *TAG = "ble_air";

#define LINE_MAX_LEN 256  /* the longest record: "<t> adv <addr> <rssi> <interval> <62 hex digits>" */

static host_ble_advertiser_t s_devices[HOST_BLE_AIR_MAX_DEVICES];
static size_t s_count;

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

static host_record_file_t s_file = HOST_RECORD_FILE_INIT("ble_air", apply, LINE_MAX_LEN - 1);

void host_ble_air_update(void)
{
    host_record_file_update(&s_file);
}

bool host_ble_air_polled(void)
{
    return host_record_file_polled(&s_file);
}

int host_ble_air_open(void)
{
    const char *path = getenv(HOST_ENV_BLE_AIR);
    if (path == NULL || path[0] == '\0') {
        ESP_LOGD(TAG, "no " HOST_ENV_BLE_AIR ": nothing advertises");
        return -1;
    }
    return host_record_file_open(&s_file, path);
}

size_t host_ble_air_count(void)
{
    return s_count;
}

host_ble_advertiser_t *host_ble_air_device(size_t index)
{
    return index < s_count ? &s_devices[index] : NULL;
}
