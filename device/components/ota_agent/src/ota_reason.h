/*
 * Why an OTA request failed, was refused, cancelled or rolled back: the "reason" of an OTA
 * event (docs/protocol.md, the reason table). Firmware code passes these values around;
 * ota_reason_name() gives the string the events and the status carry.
 * tests_unit/test_protocol_contract.py holds ota_reason.c's name table, docs/protocol.md and
 * harness/link.py's FAILURE_REASONS to the same set.
 */
#pragma once

typedef enum {
    OTA_REASON_NONE = 0, /* no failure (success); has no protocol name */
    OTA_REASON_BAD_COMMAND,
    OTA_REASON_BUSY,
    OTA_REASON_SAME_VERSION,
    OTA_REASON_DOWNGRADE,
    OTA_REASON_TOO_LARGE,
    OTA_REASON_HTTP_STATUS,
    OTA_REASON_CONNECT_FAILED,
    OTA_REASON_TLS_FAILED,
    OTA_REASON_IDLE_TIMEOUT,
    OTA_REASON_TIMEOUT,
    OTA_REASON_INVALID_IMAGE,
    OTA_REASON_WRONG_CHIP,
    OTA_REASON_SHA256_MISMATCH,
    OTA_REASON_SIZE_MISMATCH,
    OTA_REASON_FLASH_ERROR,
    OTA_REASON_CANCELLED,
    OTA_REASON_SELFTEST_FAILED,
    OTA_REASON_BOOT_FAILED,
    OTA_REASON_CORRUPT_STREAM,
    OTA_REASON_INVALID_SIGNATURE,
    OTA_REASON_SECURE_VERSION,
    OTA_REASON_COUNT /* not a reason: the number of values */
} ota_reason_t;

/* The protocol name ("bad_command", ...); "" for OTA_REASON_NONE or a value out of range. */
const char *ota_reason_name(ota_reason_t reason);
/* The reason with that protocol name; OTA_REASON_COUNT when there is none (or name is NULL). */
ota_reason_t ota_reason_from_name(const char *name);
