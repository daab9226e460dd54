/*
 * The secure version eFuse field for the virtual board: ESP-IDF v5.5.5's components/efuse/src/
 * esp_efuse_fields.c (esp_efuse_read_secure_version, esp_efuse_check_secure_version,
 * esp_efuse_update_secure_version) over the board's eFuse file (HIL_EFUSE_FILE, host_board.h), as the
 * ESP32's SECURE_VERSION field: 32 bits, the version being the number of bits set, bits burnt 0 -> 1 only.
 *
 * Known differences from the chip: the field is a word of a file the board owns, not EFUSE_BLK3, and only
 * this field is emulated (no other eFuse, no coding scheme: the ESP32's must be "None" for anti-rollback,
 * which is what the virtual board has). A burn counts as one operation of the flash-control counter
 * (HOST_EFUSE_BURN), so a test can cut the power during it: then half of the new bits are burnt, as a burn
 * the power interrupted leaves some bits set and some not. Without HIL_EFUSE_FILE (the port's own checks)
 * the field lives in memory, blank at start.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/param.h>
#include <unistd.h>
#include "esp_efuse.h"
#include "esp_log.h"
#include "host_board.h"
#include "sdkconfig.h"

static const char *TAG = "efuse";

#ifdef CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD
#define APP_SEC_VER_SIZE_EFUSE_FIELD CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD
#else
#define APP_SEC_VER_SIZE_EFUSE_FIELD 4 // smallest possible size for all chips
#endif
#define SECURE_VERSION_FIELD_BITS 32 /* ESP_EFUSE_SECURE_VERSION on the ESP32 */

static uint32_t s_memory_field; /* without an eFuse file */

static uint32_t read_field(void)
{
    const char *path = getenv(HOST_ENV_EFUSE_FILE);
    if (path == NULL) {
        return s_memory_field;
    }
    uint8_t raw[4] = {0};
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            raw[0] = raw[1] = raw[2] = raw[3] = 0; /* a short file is a blank eFuse */
        }
        close(fd);
    }
    return (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 24;
}

/* Burns `bits` (ORs them in: an eFuse bit never goes back to 0); a power cut burns half of them. */
static void burn_field(uint32_t bits)
{
    size_t done = host_flash_begin_operation(HOST_EFUSE_BURN, 0, 32);
    if (done < 32) {
        uint32_t kept = 0;
        for (unsigned i = 0, n = 0; i < 32 && n < (unsigned)__builtin_popcount(bits) / 2; i++) {
            if (bits & (1U << i)) {
                kept |= 1U << i;
                n++;
            }
        }
        bits = kept;
    }
    uint32_t value = read_field() | bits;
    const char *path = getenv(HOST_ENV_EFUSE_FILE);
    if (path == NULL) {
        s_memory_field = value;
    } else {
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        const uint8_t raw[4] = {value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, value >> 24};
        if (fd < 0 || pwrite(fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) || fsync(fd) != 0) {
            ESP_LOGE(TAG, "cannot burn the eFuse file %s", path);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    host_flash_end_operation();
}

uint32_t esp_efuse_read_secure_version(void)
{
    uint32_t secure_version = read_field();
    size_t size = MIN(APP_SEC_VER_SIZE_EFUSE_FIELD, SECURE_VERSION_FIELD_BITS);
    return (uint32_t)__builtin_popcount(secure_version & (uint32_t)((1ULL << size) - 1));
}

bool esp_efuse_check_secure_version(uint32_t secure_version)
{
    uint32_t sec_ver_hw = esp_efuse_read_secure_version();
    return secure_version >= sec_ver_hw;
}

esp_err_t esp_efuse_update_secure_version(uint32_t secure_version)
{
    size_t size = MIN(APP_SEC_VER_SIZE_EFUSE_FIELD, SECURE_VERSION_FIELD_BITS);
    if (size < secure_version) {
        ESP_LOGE(TAG, "Max secure version is %u. Given %" PRIu32 " version can not be written.", (unsigned)size,
                 secure_version);
        return ESP_ERR_INVALID_ARG;
    }
    uint32_t sec_ver_hw = esp_efuse_read_secure_version();
    // If secure_version is the same as in eFuse field than it is ok just go out.
    if (sec_ver_hw < secure_version) {
        uint32_t num_bit_hw = (uint32_t)((1ULL << sec_ver_hw) - 1);
        uint32_t num_bit_app = (uint32_t)((1ULL << secure_version) - 1);
        // Repeated programming of programmed bits is strictly forbidden
        uint32_t new_bits = num_bit_app - num_bit_hw; // get only new bits
        burn_field(new_bits);
        ESP_LOGI(TAG, "Anti-rollback is set. eFuse field is updated(%" PRIu32 ").", secure_version);
    } else if (sec_ver_hw > secure_version) {
        ESP_LOGE(TAG, "Anti-rollback is not set. secure_version of app is lower that eFuse field(%" PRIu32 ").",
                 sec_ver_hw);
        return ESP_FAIL;
    }
    return ESP_OK;
}
