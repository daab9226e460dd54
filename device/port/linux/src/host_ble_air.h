/*
 * The BLE air around the virtual board: the devices advertising now, as the board's HIL_BLE_AIR file
 * says (host_board.h has the record format). Private to the host port's Bluetooth controller
 * (esp_bt.c), whose radio task is the only caller: nothing here locks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOST_BLE_ADV_DATA_MAX 31  /* legacy advertising PDU payload (ESP_BLE_ADV_DATA_LEN_MAX) */
#define HOST_BLE_AIR_MAX_DEVICES 64

typedef struct {
    uint8_t addr[6];
    int rssi;
    int64_t first_ns;     /* CLOCK_MONOTONIC of its first advertisement, then one every interval_ns */
    int64_t interval_ns;
    uint8_t adv_len;
    uint8_t adv[HOST_BLE_ADV_DATA_MAX];
    int64_t heard_until_ns; /* the radio's: advertisements before this were heard or missed */
} host_ble_advertiser_t;

/* Opens the board's air (HIL_BLE_AIR) and reads what is in it; returns a descriptor that is readable
   when the board appends to it, or -1 without an air (an app run outside a board: nothing advertises;
   or no inotify instance left: then host_ble_air_polled() is true and the caller reads every
   HOST_RECORD_POLL_MS, host_record_file.h). */
int host_ble_air_open(void);
/* Reads and applies the records appended since the last call (after a readable descriptor). */
void host_ble_air_update(void);
/* True when the air is read every HOST_RECORD_POLL_MS instead of on inotify's word. */
bool host_ble_air_polled(void);
size_t host_ble_air_count(void);
host_ble_advertiser_t *host_ble_air_device(size_t index);
