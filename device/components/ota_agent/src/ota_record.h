/*
 * What the device remembers about OTA requests across reboots (in NVS): the request in
 * flight when it switched partitions, so the firmware that boots next can report the right
 * request as succeeded or rolled back; the outcomes a boot decided but could not send yet (no
 * broker), so that an update starting meanwhile, and its reboot, cannot lose them; and the last
 * result, for the status message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"

typedef enum {
    OTA_RECORD_NONE = 0,
    OTA_RECORD_REBOOTING = 1,       /* boot partition switched; the new app has not confirmed */
    OTA_RECORD_SELFTEST_FAILED = 2, /* the new app failed its self-test and asked for rollback */
} ota_record_stage_t;

typedef struct {
    uint32_t stage;
    char id[48];
    char version[32];
    char target[17];     /* label of the partition the update went to */
    char previous[17];   /* label of the partition it came from */
} ota_pending_t;

typedef struct {
    char id[48];
    char state[16];
    char reason[24];
    char version[32];
} ota_result_t;

/* Once at start-up, before any task can save or clear a record. */
esp_err_t ota_record_init(void);
esp_err_t ota_record_save_pending(const ota_pending_t *pending);
/* false when nothing is pending */
bool ota_record_load_pending(ota_pending_t *pending);
esp_err_t ota_record_clear_pending(void);
/* Clears the pending record only if it is still `expected`: an update started since has saved its own,
   which the next boot must find. */
esp_err_t ota_record_clear_pending_if(const ota_pending_t *expected);
esp_err_t ota_record_save_result(const ota_result_t *result);
/* false when no OTA has finished yet */
bool ota_record_load_result(ota_result_t *result);

#define OTA_RECORD_UNREPORTED_MAX 4
/* Queues an outcome to send as an event once the broker is reachable; one already queued is not queued
   twice (a reset before the pending record was cleared decides it again), and a full queue drops its
   oldest, with a warning. */
esp_err_t ota_record_add_unreported(const ota_result_t *outcome);
/* The queued outcomes, oldest first: how many were copied into `out` (at most `max`). */
size_t ota_record_load_unreported(ota_result_t *out, size_t max);
/* Removes the `sent` oldest outcomes (those a load returned and the caller sent). */
esp_err_t ota_record_remove_unreported(size_t sent);
