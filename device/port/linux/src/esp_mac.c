/* esp_read_mac() for the virtual chip. */
#include <stdio.h>
#include <stdlib.h>
#include "esp_mac.h"
#include "host_board.h"

esp_err_t esp_read_mac(uint8_t *mac, esp_mac_type_t type)
{
    if (mac == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    /* Espressif's OUI and a board-chosen tail, so each virtual board has its own MAC. */
    unsigned int b[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
    const char *env = getenv(HOST_ENV_MAC);
    if (env != NULL && sscanf(env, "%2x%2x%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        return ESP_ERR_INVALID_MAC;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)b[i];
    }
    mac[5] = (uint8_t)(mac[5] + (type == ESP_MAC_WIFI_STA ? 0 : (int)type)); /* per-interface MACs */
    return ESP_OK;
}
