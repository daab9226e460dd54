#include <stddef.h>
#include <string.h>
#include "ota_reason.h"

/* One string per reason, exactly as docs/protocol.md spells it. */
static const char *const NAMES[OTA_REASON_COUNT] = {
    [OTA_REASON_NONE] = "",
    [OTA_REASON_BAD_COMMAND] = "bad_command",
    [OTA_REASON_BUSY] = "busy",
    [OTA_REASON_SAME_VERSION] = "same_version",
    [OTA_REASON_DOWNGRADE] = "downgrade",
    [OTA_REASON_TOO_LARGE] = "too_large",
    [OTA_REASON_HTTP_STATUS] = "http_status",
    [OTA_REASON_CONNECT_FAILED] = "connect_failed",
    [OTA_REASON_TLS_FAILED] = "tls_failed",
    [OTA_REASON_IDLE_TIMEOUT] = "idle_timeout",
    [OTA_REASON_TIMEOUT] = "timeout",
    [OTA_REASON_INVALID_IMAGE] = "invalid_image",
    [OTA_REASON_WRONG_CHIP] = "wrong_chip",
    [OTA_REASON_SHA256_MISMATCH] = "sha256_mismatch",
    [OTA_REASON_SIZE_MISMATCH] = "size_mismatch",
    [OTA_REASON_FLASH_ERROR] = "flash_error",
    [OTA_REASON_CANCELLED] = "cancelled",
    [OTA_REASON_SELFTEST_FAILED] = "selftest_failed",
    [OTA_REASON_BOOT_FAILED] = "boot_failed",
    [OTA_REASON_CORRUPT_STREAM] = "corrupt_stream",
    [OTA_REASON_INVALID_SIGNATURE] = "invalid_signature",
    [OTA_REASON_SECURE_VERSION] = "secure_version",
};

const char *ota_reason_name(ota_reason_t reason)
{
    if ((unsigned)reason >= OTA_REASON_COUNT || NAMES[reason] == NULL) {
        return ""; /* a value added to the enum but not to NAMES: the unit test catches that */
    }
    return NAMES[reason];
}

ota_reason_t ota_reason_from_name(const char *name)
{
    for (int reason = OTA_REASON_NONE + 1; reason < OTA_REASON_COUNT; reason++) {
        if (name != NULL && NAMES[reason] != NULL && strcmp(NAMES[reason], name) == 0) {
            return (ota_reason_t)reason;
        }
    }
    return OTA_REASON_COUNT;
}
