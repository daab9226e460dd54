/*
 * The devices already reported since boot: each MAC is published once ("known MACs filtered").
 * Kept in RAM, so a reboot (an update among them) reports what is around again.
 */
#pragma once

#include <stdbool.h>
#include "esp_bt_defs.h"

bool known_devices_contains(const esp_bd_addr_t mac);
/* Remembers mac; once CONFIG_ACME_MAX_KNOWN_DEVICES are known, the oldest is forgotten. */
void known_devices_add(const esp_bd_addr_t mac);
