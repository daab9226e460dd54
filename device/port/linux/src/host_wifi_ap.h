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
   when the board appends to it, or -1 without one (an app run outside a board: the AP is always there;
   or no inotify instance left: then host_wifi_ap_polled() is true and the caller reads every
   HOST_RECORD_POLL_MS, host_record_file.h). */
int host_wifi_ap_open(void);
/* Reads and applies the records appended since the last call; true when there were any. */
bool host_wifi_ap_update(void);
/* True when the file is followed by reading it periodically: the user's inotify instances
   (fs.inotify.max_user_instances, 128 by default) are used up, as with a fleet of over a hundred boards. */
bool host_wifi_ap_polled(void);
bool host_wifi_ap_present(void);
int host_wifi_ap_rssi(void);
/* CLOCK_MONOTONIC ns of the record that last changed host_wifi_ap_present() (0: never changed). */
int64_t host_wifi_ap_changed_ns(void);
