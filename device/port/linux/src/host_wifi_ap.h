/*
 * The virtual board's access point, as its HIL_WIFI_AP file says (host_board.h has the record format):
 * whether it is on the air and at what RSSI the station hears it. Private to the host port's Wi-Fi
 * driver (esp_wifi.c), whose task is the only caller: nothing here locks.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define HOST_WIFI_AP_DEFAULT_RSSI (-42) /* a board whose AP nobody touched: in range, a strong signal */

/* Opens the board's AP file (HIL_WIFI_AP) and reads what is in it; returns a descriptor that is readable
   when the board appends to it, or -1 without one (an app run outside a board: the AP is always there). */
int host_wifi_ap_open(void);
/* Reads and applies the records appended since the last call (after a readable descriptor). */
void host_wifi_ap_update(void);
bool host_wifi_ap_present(void);
int host_wifi_ap_rssi(void);
/* CLOCK_MONOTONIC ns of the record that last changed host_wifi_ap_present() (0: never changed). */
int64_t host_wifi_ap_changed_ns(void);
