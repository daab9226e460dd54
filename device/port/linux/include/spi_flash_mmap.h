/* Host port of spi_flash_mmap.h: the flash error codes. */
#pragma once

#include "esp_err.h"

#define ESP_ERR_FLASH_OP_FAIL    (ESP_ERR_FLASH_BASE + 1)
#define ESP_ERR_FLASH_OP_TIMEOUT (ESP_ERR_FLASH_BASE + 2)
#define SPI_FLASH_SEC_SIZE  4096
