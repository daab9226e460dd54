/*
 * The ACME sensor's job: scan for BLE devices in rounds (CONFIG_ACME_SCAN_DURATION_S of scanning, then
 * CONFIG_ACME_SCAN_PAUSE_S of rest) and publish each device it has not reported before, once, on
 * `<prefix>/<device id>/ble` as {"mac": "aa:bb:cc:dd:ee:ff", "rssi": -60, "name": "..."}.
 */
#pragma once

#include <stdbool.h>
#include "esp_err.h"

/* Brings up the BLE controller and Bluedroid and starts the scanning rounds. */
esp_err_t ble_scanner_start(void);
/* Stops scanning (waits for the stack to confirm) until ble_scanner_resume(); false if it did not stop. */
bool ble_scanner_pause(void);
void ble_scanner_resume(void);
/* True once a scan has started since boot: the BLE stack works. */
bool ble_scanner_has_scanned(void);
