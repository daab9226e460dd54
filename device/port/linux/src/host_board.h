/*
 * What the virtual board hands the app at each boot (environment variables), and the exit
 * codes the app uses to tell the board why it stopped. Private to the host port: firmware
 * code never includes this. harness/virtual/host_abi.py mirrors its constants for the board
 * (tests_unit/test_host_abi.py checks the two agree).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Environment set by the board (harness/virtual/board.py) before it starts the app. */
#define HOST_ENV_FLASH_FILE      "HIL_FLASH_FILE"      /* path of the 4 MB flash image */
#define HOST_ENV_APP_OFFSET      "HIL_APP_OFFSET"      /* flash offset of the partition the bootloader loaded */
#define HOST_ENV_RESET_REASON    "HIL_RESET_REASON"    /* esp_reset_reason_t of this boot, as a number */
#define HOST_ENV_MAC             "HIL_MAC"             /* factory MAC, 12 hex digits */
#define HOST_ENV_POWER_CUT_AT    "HIL_POWER_CUT_AT"    /* lose power at this value of HOST_FC_OPS (1-based) */
#define HOST_ENV_FLASH_CONTROL   "HIL_FLASH_CONTROL"   /* file of HOST_FC_WORDS u32s shared with the board */
#define HOST_ENV_BOOT_TIME_US    "HIL_BOOT_TIME_US"    /* µs since reset when the app starts (ROM + bootloader) */
#define HOST_ENV_MQTT_TRACE      "HIL_MQTT_TRACE"      /* file each MQTT publish of the app is appended to */
#define HOST_ENV_BLE_AIR         "HIL_BLE_AIR"         /* file of the BLE advertisements around the board */
#define HOST_ENV_WIFI_AP         "HIL_WIFI_AP"         /* file of the board's Wi-Fi access point: on the air or not, RSSI */
#define HOST_ENV_EFUSE_FILE      "HIL_EFUSE_FILE"      /* the board's eFuses (src/esp_efuse.c) */
#define HOST_ENV_MESH            "HIL_MESH"            /* Unix socket of the mesh medium (src/esp_mesh.c) */
#define HOST_ENV_BOARD_PID       "HIL_BOARD_PID"       /* pid of the harness process running the board: the app dies with it */
#define HOST_ENV_FLASH_TIMING    "HIL_FLASH_TIMING"    /* "<write bytes/s> <erase bytes/s>": flash takes a chip's time */

/* HIL_EFUSE_FILE: the eFuse fields the port emulates, little-endian u32s, owned by the board and kept
   across boots like the flash. Bits only go from 0 to 1 (burning), in the app and in the virtual
   bootloader (harness/virtual/efuse.py). Word 0: ESP32's SECURE_VERSION field (EFUSE_BLK3, 32 bits),
   the anti-rollback counter as the number of bits set. */
#define HOST_EFUSE_WORDS 1

/* HIL_MQTT_TRACE records, one per esp_mqtt_client_publish()/enqueue() call, written when the app
   publishes (before anything is sent), so the harness can place the message in a test's timeline at
   the moment the device said it: "<CLOCK_MONOTONIC ns> <topic bytes> <payload bytes>\n<topic><payload>\n". */

/* HIL_BLE_AIR records: the radio environment around the board (harness/virtual/ble_air.py), appended by
   the board one line per write(), read by the host port's Bluetooth controller (src/host_ble_air.c) from
   the start at every boot and then as they come, since the air outlives the app. <t> is the
   CLOCK_MONOTONIC ns at which the board wrote the record; addresses are aa:bb:cc:dd:ee:ff.
     "<t> adv <address> <rssi dBm> <interval ms> <advertising data as hex, or ->\n"
         the device advertises that data at t and every interval after it (replacing what it did before)
     "<t> stop <address>\n"    the device stops advertising
     "<t> clear\n"             every device stops */

/* HIL_WIFI_AP records: the board's access point (harness/virtual/wifi_ap.py), appended by the board one line
   per write(), read by the host port's Wi-Fi driver (src/host_wifi_ap.c) from the start at every boot and
   then as they come, since the AP outlives the app. <t> is the CLOCK_MONOTONIC ns at which the board wrote
   the record. An empty file: the AP is on the air, heard at -42 dBm.
     "<t> up\n"            the AP is on the air again from t
     "<t> down\n"          the AP is off the air from t (no beacons, no frames either way)
     "<t> rssi <dBm>\n"    the station hears the AP at this RSSI from t (-128..0) */

/* HIL_FLASH_TIMING: unset (or 0 0), every flash write and erase is a memory copy that takes no time; set,
   each one ends no sooner than its length at those rates after it began, the calling task waiting (and
   holding the flash, as the SPI flash driver does) as long as a chip's would (src/esp_partition.c). */

/* HIL_MESH: a SOCK_SEQPACKET socket the harness's mesh medium listens on (harness/virtual/mesh.py, whose
   docstring has its records). esp_mesh_start() connects and joins; closing it is leaving the mesh. Unset:
   no mesh network is in range. */

/* HIL_FLASH_CONTROL: little-endian u32 words that the app updates at every flash write or erase
   and the board reads (and writes HOST_FC_CUT_AT into) at any moment, through a shared mapping. */
enum {
    HOST_FC_OPS,       /* writes + erases since the board made the file (every boot counts on) */
    HOST_FC_WRITES,
    HOST_FC_ERASES,
    HOST_FC_CUT_AT,    /* power is lost during this operation (1-based; 0: never) */
    HOST_FC_LAST_KIND, /* host_flash_op_t of the last operation */
    HOST_FC_LAST_ADDR, /* its absolute flash address */
    HOST_FC_LAST_LEN,  /* and length */
    HOST_FC_POWER_CUT, /* 1 once the counter cut the power */
    HOST_FC_WORDS
};

/* An eFuse burn counts as an operation too (neither a write nor an erase), so a power cut can land on it. */
typedef enum { HOST_FLASH_WRITE = 1, HOST_FLASH_ERASE = 2, HOST_EFUSE_BURN = 3 } host_flash_op_t;

/* Exit codes: how the board tells a restart from a crash from a power cut. */
#define HOST_EXIT_RESTART   0   /* esp_restart() */
#define HOST_EXIT_PANIC     3   /* abort(), a fatal signal: the panic handler ran */
#define HOST_EXIT_POWER_CUT 4   /* the flash operation counter reached HIL_POWER_CUT_AT */
#define HOST_EXIT_TASK_WDT  5   /* the task watchdog fired */

/* The mapped flash file; maps it on first use. */
uint8_t *host_flash_data(void);
uint32_t host_flash_size(void);
/* Counts a flash write or erase that is about to happen and returns how many of its bytes
   happen: all of them, or, when the board cuts the power during this one, the part done
   before the power went (half of it: whole words of a write, bytes of an erase); host_flash_end_operation()
   then ends the process as a power loss. */
size_t host_flash_begin_operation(host_flash_op_t kind, uint32_t address, size_t length);
void host_flash_end_operation(void);
/* Prints the end of a panic report (backtrace, ELF SHA256, "Rebooting...") and exits with
   exit_code, which tells the board the reset reason (HOST_EXIT_PANIC, HOST_EXIT_TASK_WDT). */
void host_panic_tail_and_exit(int exit_code) __attribute__((noreturn));
/* Appends a HIL_MQTT_TRACE record (nothing when the board set no trace file). */
void host_trace_mqtt_publish(const char *topic, const char *data, int len);
/* Offset of the running app's partition, as the bootloader reported it. */
uint32_t host_running_app_offset(void);
