/*
 * bootloader_common_check_chip_revision_validity() for the host port, rule for rule from
 * components/bootloader_support/src/bootloader_common_loader.c (v5.5.4), with the tag and
 * wording of its log lines.
 *
 * Known differences from the chip: the revision is not read from eFuse. The virtual board is an
 * ESP32 v3.0 (its ROM banner says "chip revision: v3.0", harness/virtual/rom.py), and the
 * wafer-major-version-check disable eFuse is never burnt.
 */
#include "bootloader_common.h"
#include "esp_log.h"

static const char *TAG = "boot_comm";

/* efuse_hal_chip_revision() of the virtual board: major * 100 + minor. */
#define HOST_CHIP_REVISION 300

#define IS_FIELD_SET(rev_full) (((rev_full) != 65535) && ((rev_full) != 0))
#define ESP_CHIP_REV_ABOVE(rev, min_rev) ((min_rev) <= (rev))

bool bootloader_common_check_chip_revision_validity(const esp_image_header_t *img_hdr, bool check_max_revision)
{
    if (!img_hdr) {
        return false;
    }

    unsigned revision = HOST_CHIP_REVISION;
    unsigned min_rev = img_hdr->min_chip_rev_full;

    bool is_min_rev_invalid = !ESP_CHIP_REV_ABOVE(revision, min_rev);
    if (is_min_rev_invalid) {
        ESP_LOGE(TAG, "chip revision check failed. Required >= v%d.%d, found v%d.%d.",
                 min_rev / 100, min_rev % 100, revision / 100, revision % 100);
        return false;
    }

    if (check_max_revision) {
        unsigned int max_rev = img_hdr->max_chip_rev_full;
        /* efuse_hal_get_disable_wafer_version_major() is false: the eFuse is never burnt here. */
        bool is_max_rev_invalid = IS_FIELD_SET(max_rev) && revision > max_rev;
        if (is_max_rev_invalid) {
            ESP_LOGE(TAG, "chip revision check failed. Required <= v%d.%d, found v%d.%d.",
                     max_rev / 100, max_rev % 100, revision / 100, revision % 100);
            return false;
        }
    }

    return true;
}
