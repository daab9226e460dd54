#include <string.h>
#include "sdkconfig.h"
#include "known_devices.h"

/* Only the scanner task calls these, so no lock. */
static esp_bd_addr_t s_known[CONFIG_ACME_MAX_KNOWN_DEVICES];
static size_t s_count;
static size_t s_next; /* where the next one goes once the table is full (oldest first) */

bool known_devices_contains(const esp_bd_addr_t mac)
{
    for (size_t i = 0; i < s_count; i++) {
        if (memcmp(s_known[i], mac, sizeof(esp_bd_addr_t)) == 0) {
            return true;
        }
    }
    return false;
}

void known_devices_add(const esp_bd_addr_t mac)
{
    memcpy(s_known[s_next], mac, sizeof(esp_bd_addr_t));
    s_next = (s_next + 1) % CONFIG_ACME_MAX_KNOWN_DEVICES;
    if (s_count < CONFIG_ACME_MAX_KNOWN_DEVICES) {
        s_count++;
    }
}
