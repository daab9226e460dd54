/*
 * The board's access point file (host_board.h, HIL_WIFI_AP): its records, "<t> up", "<t> down" and
 * "<t> rssi <dBm>", followed as host_record_file.h says. No ESP-IDF counterpart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_log.h"
#include "host_board.h"
#include "host_record_file.h"
#include "host_wifi_ap.h"

static const char *TAG = "wifi_ap";

#define LINE_MAX_LEN 64 /* the longest record: "<t> rssi <dBm>" */

static bool s_present = true;
static int s_rssi = HOST_WIFI_AP_DEFAULT_RSSI;
static int64_t s_changed_ns;

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

static host_record_file_t s_file = HOST_RECORD_FILE_INIT("wifi_ap", apply, LINE_MAX_LEN - 1);

bool host_wifi_ap_update(void)
{
    return host_record_file_update(&s_file);
}

bool host_wifi_ap_polled(void)
{
    return host_record_file_polled(&s_file);
}

int host_wifi_ap_open(void)
{
    const char *path = getenv(HOST_ENV_WIFI_AP);
    if (path == NULL || path[0] == '\0') {
        ESP_LOGD(TAG, "no " HOST_ENV_WIFI_AP ": the access point is always in range");
        return -1;
    }
    return host_record_file_open(&s_file, path);
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
