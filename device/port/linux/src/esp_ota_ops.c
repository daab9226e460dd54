/*
 * esp_ota_ops for the virtual board. ESP-IDF does not build app_update for its linux target,
 * so this follows components/app_update/esp_ota_ops.c (v5.5.4) rule for rule: the otadata
 * format and CRC, the seq arithmetic of esp_rewrite_ota_data, the v5.5 invalidation of the
 * inactive otadata sector in esp_ota_begin, and the rollback checks. esp_ota_resume() and
 * esp_ota_set_final_partition() (staging and final partitions, esp_https_ota's partition config)
 * are there too. With CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (v5.5.5): esp_ota_set_boot_partition() refuses and
 * erases an image whose secure_version is below the eFuse's (ESP_ERR_OTA_SMALL_SEC_VER), a rollback needs a
 * slot whose secure_version the eFuse allows, and esp_ota_mark_app_valid_cancel_rollback() raises the eFuse
 * to the app's secure_version right after it wrote VALID (src/esp_efuse.c). With
 * CONFIG_SECURE_SIGNED_ON_UPDATE every image verification checks the signature (src/host_image.c).
 *
 * esp_ota_write_with_offset() is v5.5.5's: it writes where it is told (no magic-byte check, no erase), asserts
 * that esp_ota_begin() erased the slot (an image size, not OTA_WITH_SEQUENTIAL_WRITES: on the chip as here
 * the assert aborts), adds the size to the bytes written, and returns esp_partition_write()'s error.
 *
 * Known differences from the chip: only OTA app partitions can be updated (esp_ota_begin() and
 * esp_ota_resume() refuse other partitions with ESP_ERR_INVALID_ARG, where ESP-IDF also takes
 * bootloader, partition table and data partitions); no flash encryption, so no 16-byte buffering in
 * esp_ota_write() and no 16-byte rule in esp_ota_write_with_offset() (with flash encryption ESP-IDF refuses a
 * size that is not a multiple of 16 with ESP_ERR_INVALID_ARG).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "esp_app_format.h"
#include "esp_efuse.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "host_board.h"
#include "host_image.h"
#include "sdkconfig.h"

static const char *TAG = "esp_ota_ops";

#define SUB_TYPE_ID(i) ((i) & 0x0F)
#define ALIGN_UP(num, align) (((num) + ((align) - 1)) & ~((align) - 1))

typedef struct {
    esp_ota_handle_t handle;
    struct {
        const esp_partition_t *staging; /* written by esp_ota_write() */
        const esp_partition_t *final;   /* its type decides the checks; the copy's target */
        bool finalize_with_copy;
    } partition;
    uint32_t wrote_size;
    bool need_erase;
    bool ota_resumption;
    bool in_use;
} ota_ops_entry_t;

#define MAX_OTA_HANDLES 4
static ota_ops_entry_t s_entries[MAX_OTA_HANDLES];
static esp_ota_handle_t s_last_handle;

/* --- otadata helpers (bootloader_support/src/bootloader_common_loader.c) --- */

static uint32_t ota_select_crc(const esp_ota_select_entry_t *s)
{
    /* esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4) is zlib's crc32 with that start value. */
    return (uint32_t)crc32(UINT32_MAX, (const Bytef *)&s->ota_seq, sizeof(s->ota_seq));
}

static bool ota_select_invalid(const esp_ota_select_entry_t *s)
{
    return s->ota_seq == UINT32_MAX || s->ota_state == ESP_OTA_IMG_INVALID ||
           s->ota_state == ESP_OTA_IMG_ABORTED;
}

static bool ota_select_valid(const esp_ota_select_entry_t *s)
{
    return !ota_select_invalid(s) && s->crc == ota_select_crc(s);
}

static int select_otadata(const esp_ota_select_entry_t *two, const bool *valid, bool max)
{
    if (valid[0] && valid[1]) {
        uint32_t pick = max ? (two[0].ota_seq > two[1].ota_seq ? two[0].ota_seq : two[1].ota_seq)
                            : (two[0].ota_seq < two[1].ota_seq ? two[0].ota_seq : two[1].ota_seq);
        return pick == two[0].ota_seq ? 0 : 1;
    }
    for (int i = 0; i < 2; i++) {
        if (valid[i]) {
            return i;
        }
    }
    return -1;
}

static int get_active_otadata(const esp_ota_select_entry_t *two)
{
    bool valid[2] = {ota_select_valid(&two[0]), ota_select_valid(&two[1])};
    return select_otadata(two, valid, true);
}

static const esp_partition_t *read_otadata(esp_ota_select_entry_t *two)
{
    const esp_partition_t *otadata = esp_partition_find_first(ESP_PARTITION_TYPE_DATA,
                                                              ESP_PARTITION_SUBTYPE_DATA_OTA, NULL);
    if (otadata == NULL) {
        ESP_LOGE(TAG, "not found otadata");
        return NULL;
    }
    if (esp_partition_read(otadata, 0, &two[0], sizeof(two[0])) != ESP_OK ||
        esp_partition_read(otadata, otadata->erase_size, &two[1], sizeof(two[1])) != ESP_OK) {
        return NULL;
    }
    return otadata;
}

static esp_err_t rewrite_ota_seq(esp_ota_select_entry_t *two, uint32_t seq, int sec_id,
                                 const esp_partition_t *otadata)
{
    two[sec_id].ota_seq = seq;
    two[sec_id].crc = ota_select_crc(&two[sec_id]);
    esp_err_t err = esp_partition_erase_range(otadata, sec_id * otadata->erase_size, otadata->erase_size);
    if (err != ESP_OK) {
        return err;
    }
    return esp_partition_write(otadata, otadata->erase_size * sec_id, &two[sec_id], sizeof(two[sec_id]));
}

static bool is_ota_partition(const esp_partition_t *p)
{
    return p != NULL && p->type == ESP_PARTITION_TYPE_APP &&
           p->subtype >= ESP_PARTITION_SUBTYPE_APP_OTA_0 && p->subtype < ESP_PARTITION_SUBTYPE_APP_OTA_MAX;
}

static const esp_partition_t *ota_slot_partition(int slot)
{
    return esp_partition_find_first(ESP_PARTITION_TYPE_APP,
                                    (esp_partition_subtype_t)(ESP_PARTITION_SUBTYPE_APP_OTA_MIN + slot), NULL);
}

static ota_ops_entry_t *get_entry(esp_ota_handle_t handle)
{
    for (int i = 0; i < MAX_OTA_HANDLES; i++) {
        if (s_entries[i].in_use && s_entries[i].handle == handle) {
            return &s_entries[i];
        }
    }
    return NULL;
}

static void free_entry(ota_ops_entry_t *entry)
{
    memset(entry, 0, sizeof(*entry));
}

/* esp_ota_init_entry(): a free handle for `partition`, which is both staging and final. */
static ota_ops_entry_t *init_entry(const esp_partition_t *partition)
{
    for (int i = 0; i < MAX_OTA_HANDLES; i++) {
        if (!s_entries[i].in_use) {
            s_entries[i] = (ota_ops_entry_t){
                .handle = ++s_last_handle,
                .partition = {.staging = partition, .final = partition},
                .in_use = true,
            };
            return &s_entries[i];
        }
    }
    return NULL;
}

/* --- public API --- */

uint8_t esp_ota_get_app_partition_count(void)
{
    uint8_t count = 0;
    while (count < 16 && ota_slot_partition(count) != NULL) {
        count++;
    }
    return count;
}

const esp_partition_t *esp_ota_get_running_partition(void)
{
    /* On the chip this is the partition holding the code being executed; here it is the one
       the virtual bootloader loaded, which it tells the app at start-up. */
    uint32_t offset = host_running_app_offset();
    esp_partition_iterator_t it = esp_partition_find(ESP_PARTITION_TYPE_APP, ESP_PARTITION_SUBTYPE_ANY, NULL);
    const esp_partition_t *found = NULL;
    for (; it != NULL; it = esp_partition_next(it)) {
        const esp_partition_t *p = esp_partition_get(it);
        if (p->address == offset) {
            found = p;
        }
    }
    return found;
}

static esp_err_t invalidate_inactive_ota_data_slot(void)
{
    esp_ota_select_entry_t two[2];
    const esp_partition_t *otadata = read_otadata(two);
    int active = otadata != NULL ? get_active_otadata(two) : -1;
    int app_count = esp_ota_get_app_partition_count();
    if (active == -1 || app_count == 0) {
        return ESP_FAIL;
    }
    int inactive = (~active) & 1;
    if (two[inactive].ota_seq == UINT32_MAX || two[inactive].crc != ota_select_crc(&two[inactive])) {
        return ESP_FAIL;
    }
    const esp_partition_t *last_boot = ota_slot_partition((int)((two[inactive].ota_seq - 1) % app_count));
    const esp_partition_t *running = esp_ota_get_running_partition();
    if (last_boot == NULL || running == NULL || last_boot == running) {
        return ESP_FAIL;
    }
    return esp_partition_erase_range(otadata, inactive * otadata->erase_size, otadata->erase_size);
}

esp_err_t esp_ota_begin(const esp_partition_t *partition, size_t image_size, esp_ota_handle_t *out_handle)
{
    if (partition == NULL || out_handle == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    partition = esp_partition_verify(partition);
    if (partition == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    if (!is_ota_partition(partition)) {
        return ESP_ERR_INVALID_ARG;
    }
    const esp_partition_t *running = esp_ota_get_running_partition();
    if (partition == running) {
        return ESP_ERR_OTA_PARTITION_CONFLICT;
    }
#ifdef CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
    esp_ota_img_states_t running_state;
    if (esp_ota_get_state_partition(running, &running_state) == ESP_OK &&
        running_state == ESP_OTA_IMG_PENDING_VERIFY) {
        ESP_LOGE(TAG, "Running app has not confirmed state (ESP_OTA_IMG_PENDING_VERIFY)");
        return ESP_ERR_OTA_ROLLBACK_INVALID_STATE;
    }
#endif
    ota_ops_entry_t *entry = init_entry(partition);
    if (entry == NULL) {
        return ESP_ERR_NO_MEM;
    }
    entry->need_erase = image_size == OTA_WITH_SEQUENTIAL_WRITES;
    *out_handle = entry->handle;

    if (image_size != OTA_WITH_SEQUENTIAL_WRITES) {
        size_t erase_size = (image_size == 0 || image_size == OTA_SIZE_UNKNOWN)
                                ? partition->size
                                : ALIGN_UP(image_size, partition->erase_size);
        esp_err_t err = esp_partition_erase_range(partition, 0, erase_size);
        if (err != ESP_OK) {
            free_entry(entry);
            return err;
        }
    }
#ifdef CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
    invalidate_inactive_ota_data_slot(); /* v5.5: its failure is not an error, as in IDF */
#endif
    return ESP_OK;
}

/* Like esp_ota_begin() but nothing is erased: the first image_offset bytes are already written. */
esp_err_t esp_ota_resume(const esp_partition_t *partition, const size_t erase_size, const size_t image_offset,
                         esp_ota_handle_t *out_handle)
{
    if (partition == NULL || out_handle == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (image_offset > partition->size) {
        return ESP_ERR_INVALID_ARG;
    }
    partition = esp_partition_verify(partition);
    if (partition == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    if (!is_ota_partition(partition)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (partition == esp_ota_get_running_partition()) {
        return ESP_ERR_OTA_PARTITION_CONFLICT;
    }
    ota_ops_entry_t *entry = init_entry(partition);
    if (entry == NULL) {
        return ESP_ERR_NO_MEM;
    }
    entry->ota_resumption = true;
    entry->wrote_size = image_offset;
    entry->need_erase = erase_size == OTA_WITH_SEQUENTIAL_WRITES;
    *out_handle = entry->handle;
    return ESP_OK;
}

esp_err_t esp_ota_set_final_partition(esp_ota_handle_t handle, const esp_partition_t *final, bool finalize_with_copy)
{
    ota_ops_entry_t *it = get_entry(handle);
    if (final == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (it == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    /* Data already written (and not as a resumption): too late to change the destination. */
    if (!it->ota_resumption && it->wrote_size != 0) {
        return ESP_ERR_INVALID_STATE;
    }
    if (it->partition.staging != final) {
        const esp_partition_t *final_partition = esp_partition_verify(final);
        if (final_partition == NULL) {
            return ESP_ERR_NOT_FOUND;
        }
        ESP_LOGI(TAG, "Staging partition - <%s>. Final partition - <%s>.", it->partition.staging->label,
                 final_partition->label);
        it->partition.final = final_partition;
        it->partition.finalize_with_copy = finalize_with_copy;
    }
    return ESP_OK;
}

esp_err_t esp_ota_write(esp_ota_handle_t handle, const void *data, size_t size)
{
    const uint8_t *bytes = data;
    if (data == NULL) {
        ESP_LOGE(TAG, "write data is invalid");
        return ESP_ERR_INVALID_ARG;
    }
    if (size == 0) {
        return ESP_OK;
    }
    ota_ops_entry_t *it = get_entry(handle);
    if (it == NULL) {
        ESP_LOGE(TAG, "not found the handle");
        return ESP_ERR_INVALID_ARG;
    }
    const esp_partition_t *staging = it->partition.staging;
    uint32_t sector = staging->erase_size;
    if (it->need_erase) {
        uint32_t first = it->wrote_size / sector;
        uint32_t last = (it->wrote_size + size - 1) / sector;
        esp_err_t err = ESP_OK;
        if (it->wrote_size % sector == 0) {
            err = esp_partition_erase_range(staging, it->wrote_size, (last - first + 1) * sector);
        } else if (first != last) {
            err = esp_partition_erase_range(staging, (first + 1) * sector, (last - first) * sector);
        }
        if (err != ESP_OK) {
            return err;
        }
    }
    const esp_partition_type_t final_type = it->partition.final->type;
    if (it->wrote_size == 0 && (final_type == ESP_PARTITION_TYPE_APP || final_type == ESP_PARTITION_TYPE_BOOTLOADER) &&
        bytes[0] != ESP_IMAGE_HEADER_MAGIC) {
        ESP_LOGE(TAG, "OTA image has invalid magic byte (expected 0xE9, saw 0x%02x)", bytes[0]);
        return ESP_ERR_OTA_VALIDATE_FAILED;
    }
    esp_err_t err = esp_partition_write(staging, it->wrote_size, bytes, size);
    if (err == ESP_OK) {
        it->wrote_size += size;
    }
    return err;
}

esp_err_t esp_ota_write_with_offset(esp_ota_handle_t handle, const void *data, size_t size, uint32_t offset)
{
    if (data == NULL) {
        ESP_LOGE(TAG, "write data is invalid");
        return ESP_ERR_INVALID_ARG;
    }
    ota_ops_entry_t *it = get_entry(handle);
    if (it == NULL) {
        ESP_LOGE(TAG, "OTA handle not found");
        return ESP_ERR_INVALID_ARG;
    }
    /* must erase the partition before writing to it */
    assert(it->need_erase == 0 && "must erase the partition before writing to it");
    esp_err_t err = esp_partition_write(it->partition.staging, offset, data, size);
    if (err == ESP_OK) {
        it->wrote_size += size;
    }
    return err;
}

esp_err_t esp_ota_end(esp_ota_handle_t handle)
{
    ota_ops_entry_t *it = get_entry(handle);
    if (it == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    esp_err_t ret = ESP_OK;
    if (it->wrote_size == 0) {
        ret = ESP_ERR_INVALID_ARG;
    } else if (host_image_verify(it->partition.staging, false) != ESP_OK) {
        ESP_LOGE(TAG, "New image failed verification");
        ret = ESP_ERR_OTA_VALIDATE_FAILED;
    } else if (it->partition.finalize_with_copy) {
        ESP_LOGI(TAG, "Copy from <%s> staging partition to <%s>...", it->partition.staging->label,
                 it->partition.final->label);
        ret = esp_partition_copy(it->partition.final, 0, it->partition.staging, 0, it->partition.final->size);
    }
    free_entry(it); /* the handle is always freed, as in IDF */
    return ret;
}

esp_err_t esp_ota_abort(esp_ota_handle_t handle)
{
    ota_ops_entry_t *it = get_entry(handle);
    if (it == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    free_entry(it);
    return ESP_OK;
}

static esp_err_t rewrite_ota_data(esp_partition_subtype_t subtype)
{
    esp_ota_select_entry_t two[2];
    const esp_partition_t *otadata = read_otadata(two);
    if (otadata == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    uint8_t app_count = esp_ota_get_app_partition_count();
    if (SUB_TYPE_ID(subtype) >= app_count) {
        return ESP_ERR_INVALID_ARG;
    }
#ifdef CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
    const esp_ota_img_states_t new_state = ESP_OTA_IMG_NEW;
#else
    const esp_ota_img_states_t new_state = ESP_OTA_IMG_UNDEFINED;
#endif
    int active = get_active_otadata(two);
    if (active == -1) {
        /* Both entries invalid (blank otadata): the new one goes into sector 0. */
        two[0].ota_state = new_state;
        return rewrite_ota_seq(two, SUB_TYPE_ID(subtype) + 1, 0, otadata);
    }
    /* Smallest seq >= the active one that selects the target slot: (seq - 1) % n == slot. */
    uint32_t seq = two[active].ota_seq;
    uint32_t i = 0;
    while (seq > (SUB_TYPE_ID(subtype) + 1) % app_count + i * app_count) {
        i++;
    }
    int next = (~active) & 1; /* the old active entry stays, as the rollback target */
    two[next].ota_state = new_state;
    return rewrite_ota_seq(two, (SUB_TYPE_ID(subtype) + 1) % app_count + i * app_count, next, otadata);
}

esp_err_t esp_ota_set_boot_partition(const esp_partition_t *partition)
{
    if (partition == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (host_image_verify(partition, false) != ESP_OK) {
        return ESP_ERR_OTA_VALIDATE_FAILED;
    }
    if (partition->type != ESP_PARTITION_TYPE_APP) {
        return ESP_ERR_INVALID_ARG;
    }
    if (partition->subtype == ESP_PARTITION_SUBTYPE_APP_FACTORY) {
        const esp_partition_t *otadata = esp_partition_find_first(ESP_PARTITION_TYPE_DATA,
                                                                  ESP_PARTITION_SUBTYPE_DATA_OTA, NULL);
        return otadata != NULL ? esp_partition_erase_range(otadata, 0, otadata->size) : ESP_ERR_NOT_FOUND;
    }
#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    esp_app_desc_t partition_app_desc;
    esp_err_t err = esp_ota_get_partition_description(partition, &partition_app_desc);
    if (err != ESP_OK) {
        return err;
    }
    if (esp_efuse_check_secure_version(partition_app_desc.secure_version) == false) {
        ESP_LOGE(TAG, "This a new partition can not be booted due to a secure version is lower than stored in efuse. Partition will be erased.");
        err = esp_partition_erase_range(partition, 0, partition->size);
        if (err != ESP_OK) {
            return err;
        }
        return ESP_ERR_OTA_SMALL_SEC_VER;
    }
#endif
    return rewrite_ota_data(partition->subtype);
}

static const esp_partition_t *find_default_boot_partition(void)
{
    const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_APP,
                                                        ESP_PARTITION_SUBTYPE_APP_FACTORY, NULL);
    if (p != NULL) {
        return p;
    }
    for (int slot = 0; slot < 16; slot++) {
        p = ota_slot_partition(slot);
        if (p != NULL) {
            return p;
        }
    }
    ESP_LOGE(TAG, "invalid partition table, no app partitions");
    return NULL;
}

const esp_partition_t *esp_ota_get_boot_partition(void)
{
    esp_ota_select_entry_t two[2];
    if (read_otadata(two) == NULL) {
        return NULL;
    }
    int app_count = esp_ota_get_app_partition_count();
    if ((ota_select_invalid(&two[0]) && ota_select_invalid(&two[1])) || app_count == 0) {
        return find_default_boot_partition();
    }
    int active = get_active_otadata(two);
    if (active == -1) {
        ESP_LOGE(TAG, "ota data invalid, no current app. Assuming factory");
        return find_default_boot_partition();
    }
    return ota_slot_partition((int)((two[active].ota_seq - 1) % app_count));
}

const esp_partition_t *esp_ota_get_next_update_partition(const esp_partition_t *start_from)
{
    if (start_from == NULL) {
        start_from = esp_ota_get_running_partition();
    }
    const esp_partition_t *default_ota = NULL;
    bool next_is_result = false;
    for (int slot = 0; slot < 16; slot++) {
        const esp_partition_t *p = ota_slot_partition(slot);
        if (p == NULL) {
            continue;
        }
        if (default_ota == NULL) {
            default_ota = p;
        }
        if (p == start_from) {
            next_is_result = true;
        } else if (next_is_result) {
            return p;
        }
    }
    return default_ota;
}

esp_err_t esp_ota_get_partition_description(const esp_partition_t *partition, esp_app_desc_t *app_desc)
{
    if (partition == NULL || app_desc == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (partition->type != ESP_PARTITION_TYPE_APP) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    esp_err_t err = esp_partition_read(partition, sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t),
                                       app_desc, sizeof(*app_desc));
    if (err != ESP_OK) {
        return err;
    }
    return app_desc->magic_word == ESP_APP_DESC_MAGIC_WORD ? ESP_OK : ESP_ERR_NOT_FOUND;
}

bool esp_ota_check_rollback_is_possible(void)
{
    esp_ota_select_entry_t two[2];
    if (read_otadata(two) == NULL) {
        return false;
    }
    int app_count = esp_ota_get_app_partition_count();
    if (app_count == 0) {
        return false;
    }
    bool valid[2] = {ota_select_valid(&two[0]), ota_select_valid(&two[1])};
    int active = select_otadata(two, valid, true);
    if (active == -1) {
        return false;
    }
    int last_active = (~active) & 1;
#ifndef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    if (!valid[last_active]) {
        const esp_partition_t *factory = esp_partition_find_first(ESP_PARTITION_TYPE_APP,
                                                                  ESP_PARTITION_SUBTYPE_APP_FACTORY, NULL);
        return factory != NULL && host_image_verify(factory, true) == ESP_OK;
    }
#else
    if (!valid[last_active]) {
        return false;
    }
#endif
    const esp_partition_t *p = ota_slot_partition((int)((two[last_active].ota_seq - 1) % app_count));
    if (p == NULL || host_image_verify(p, true) != ESP_OK) {
        return false;
    }
#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    esp_app_desc_t app_desc;
    return esp_ota_get_partition_description(p, &app_desc) == ESP_OK &&
           esp_efuse_check_secure_version(app_desc.secure_version);
#else
    return true;
#endif
}

#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
static esp_err_t set_anti_rollback(void)
{
    esp_app_desc_t app_desc = {0};
    esp_err_t err = esp_ota_get_partition_description(esp_ota_get_running_partition(), &app_desc);
    if (err == ESP_OK) {
        return esp_efuse_update_secure_version(app_desc.secure_version);
    }
    return err;
}
#endif

static esp_err_t current_ota_is_workable(bool valid)
{
    esp_ota_select_entry_t two[2];
    const esp_partition_t *otadata = read_otadata(two);
    if (otadata == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    int active = get_active_otadata(two);
    if (active == -1 || esp_ota_get_app_partition_count() == 0) {
        ESP_LOGE(TAG, "Running firmware is factory");
        return ESP_FAIL;
    }
    if (valid && two[active].ota_state != ESP_OTA_IMG_VALID) {
        two[active].ota_state = ESP_OTA_IMG_VALID;
        esp_err_t err = rewrite_ota_seq(two, two[active].ota_seq, active, otadata);
#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
        if (err == ESP_OK) {
            return set_anti_rollback(); /* a power cut before this: the bootloader raises it at the next boot */
        }
#endif
        return err;
    }
    if (!valid) {
        if (!esp_ota_check_rollback_is_possible()) {
            ESP_LOGE(TAG, "Rollback is not possible, do not have any suitable apps in slots");
            return ESP_ERR_OTA_ROLLBACK_FAILED;
        }
        two[active].ota_state = ESP_OTA_IMG_INVALID;
        esp_err_t err = rewrite_ota_seq(two, two[active].ota_seq, active, otadata);
        if (err != ESP_OK) {
            return err;
        }
        ESP_LOGI(TAG, "Rollback to previously worked partition.");
    }
    return ESP_OK;
}

esp_err_t esp_ota_mark_app_valid_cancel_rollback(void)
{
    return current_ota_is_workable(true);
}

esp_err_t esp_ota_mark_app_invalid_rollback(void)
{
    return current_ota_is_workable(false);
}

esp_err_t esp_ota_mark_app_invalid_rollback_and_reboot(void)
{
    esp_err_t ret = esp_ota_mark_app_invalid_rollback();
    if (ret == ESP_OK) {
        esp_restart();
    }
    return ret;
}

static bool is_invalid_entry(const esp_ota_select_entry_t *s)
{
    return s->ota_seq != UINT32_MAX && s->crc == ota_select_crc(s) &&
           (s->ota_state == ESP_OTA_IMG_INVALID || s->ota_state == ESP_OTA_IMG_ABORTED);
}

const esp_partition_t *esp_ota_get_last_invalid_partition(void)
{
    esp_ota_select_entry_t two[2];
    if (read_otadata(two) == NULL) {
        return NULL;
    }
    bool invalid[2] = {is_invalid_entry(&two[0]), is_invalid_entry(&two[1])};
    int index = select_otadata(two, invalid, false);
    int app_count = esp_ota_get_app_partition_count();
    if (index == -1 || app_count == 0) {
        return NULL;
    }
    const esp_partition_t *p = ota_slot_partition((int)((two[index].ota_seq - 1) % app_count));
    if (p != NULL && host_image_verify(p, true) != ESP_OK) {
        return NULL;
    }
    return p;
}

esp_err_t esp_ota_get_state_partition(const esp_partition_t *partition, esp_ota_img_states_t *ota_state)
{
    if (partition == NULL || ota_state == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!is_ota_partition(partition)) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    esp_ota_select_entry_t two[2];
    int app_count = esp_ota_get_app_partition_count();
    if (read_otadata(two) == NULL || app_count == 0) {
        return ESP_ERR_NOT_FOUND;
    }
    int wanted = partition->subtype - ESP_PARTITION_SUBTYPE_APP_OTA_MIN;
    for (int i = 0; i < 2; i++) {
        if ((int)((two[i].ota_seq - 1) % app_count) == wanted && two[i].crc == ota_select_crc(&two[i])) {
            *ota_state = (esp_ota_img_states_t)two[i].ota_state;
            return ESP_OK;
        }
    }
    return ESP_ERR_NOT_FOUND;
}
