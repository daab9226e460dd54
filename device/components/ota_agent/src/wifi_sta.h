/* Wi-Fi station: connects with the configured SSID and keeps reconnecting, with a backoff. */
#pragma once

#include <stdbool.h>
#include "esp_err.h"

esp_err_t wifi_sta_start(void);
/* Waits for an IP address; false on timeout. */
bool wifi_sta_wait_connected(int timeout_ms);
