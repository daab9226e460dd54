/*
 * What the virtual board hands the app at each boot (environment variables), and the exit
 * codes the app uses to tell the board why it stopped. Private to the host port: firmware
 * code never includes this.
 */
#pragma once

#include <stdint.h>

/* Environment set by the board (harness/virtual/board.py) before it starts the app. */
#define HOST_ENV_FLASH_FILE      "HIL_FLASH_FILE"      /* path of the 4 MB flash image */
#define HOST_ENV_APP_OFFSET      "HIL_APP_OFFSET"      /* flash offset of the partition the bootloader loaded */
#define HOST_ENV_RESET_REASON    "HIL_RESET_REASON"    /* esp_reset_reason_t of this boot, as a number */
#define HOST_ENV_MAC             "HIL_MAC"             /* factory MAC, 12 hex digits */
#define HOST_ENV_POWER_CUT_AT    "HIL_POWER_CUT_AT"    /* lose power at this flash write/erase (1-based) */

/* Exit codes: how the board tells a restart from a crash from a power cut. */
#define HOST_EXIT_RESTART   0   /* esp_restart() */
#define HOST_EXIT_PANIC     3   /* abort(), a fatal signal: the panic handler ran */
#define HOST_EXIT_POWER_CUT 4   /* the flash operation counter reached HIL_POWER_CUT_AT */
#define HOST_EXIT_TASK_WDT  5   /* the task watchdog fired */

/* The mapped flash file; maps it on first use. */
uint8_t *host_flash_data(void);
uint32_t host_flash_size(void);
/* Counts a flash write or erase and cuts power when the board asked for it at this one. */
void host_flash_count_operation(void);
/* Offset of the running app's partition, as the bootloader reported it. */
uint32_t host_running_app_offset(void);
