/* App image verification for the host port, mirroring esp_image_verify(ESP_IMAGE_VERIFY). */
#pragma once

#include <stdbool.h>
#include "esp_err.h"
#include "esp_partition.h"

/* Verifies the image at the start of `partition`: magic, segment bounds, checksum, appended
   SHA-256 and chip id. Logs the reason with the bootloader's wording unless `silent`. */
esp_err_t host_image_verify(const esp_partition_t *partition, bool silent);
