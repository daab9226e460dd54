/*
 * Between the host port's Bluetooth controller (esp_bt.c: the radio, which hears the board's BLE air)
 * and its Bluedroid host (esp_bt_main.c, esp_gap_ble_api.c), in place of the chip's VHCI: the two HCI
 * commands and the one event BLE scanning needs. Private to the host port.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"
#include "host_ble_air.h"

/* An LE Advertising Report of the scan `scan_id` (the number the host gave host_ble_scan_enable()). */
typedef struct {
    uint32_t scan_id;
    uint8_t addr[6];
    int8_t rssi;
    uint8_t adv_len;
    uint8_t adv[HOST_BLE_ADV_DATA_MAX];
} host_ble_report_t;

/* Called on the radio task, which must not wait for the host: the report is queued or dropped. */
typedef void (*host_ble_report_cb_t)(const host_ble_report_t *report);

/* HCI LE Set Scan Enable (enable): the radio reports what it hears to `on_report` until disabled.
   filter_duplicates clears and uses the controller's duplicate filter (esp_bt_controller_config_t's
   scan_duplicate_type, normal_adv_size, dup_list_refresh_period); white_list_only reports nothing, the
   white list being empty. ESP_ERR_INVALID_STATE unless the controller is enabled with BLE. */
esp_err_t host_ble_scan_enable(uint32_t scan_id, bool filter_duplicates, bool white_list_only,
                               host_ble_report_cb_t on_report);
/* HCI LE Set Scan Enable (disable): no report is made after this returns. */
void host_ble_scan_disable(void);

/* Bluedroid's BTC task (esp_gap_ble_api.c): started by esp_bluedroid_init(), kept for the process. */
esp_err_t host_btc_start(void);
/* esp_bluedroid_disable(): ends a scan without an event, as disabling Bluedroid does. */
void host_gap_ble_stop_silently(void);
