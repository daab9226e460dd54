/*
 * NVS for the virtual board. The API and error codes are ESP-IDF's; the on-flash format is
 * our own, simpler one (ESP-IDF's page format is not reproduced): the whole key-value table is
 * one record written alternately into the first two sectors of the nvs partition, header last,
 * so a power cut during a write leaves the previous table intact, as NVS promises.
 */
#include <pthread.h>
#include <string.h>
#include <zlib.h>
#include "esp_log.h"
#include "esp_partition.h"
#include "nvs.h"
#include "nvs_flash.h"

static const char *TAG = "nvs";

#define TABLE_MAGIC 0x53564E48u /* "HNVS" */
#define SECTOR_SIZE 4096
#define MAX_ENTRIES 32
#define MAX_VALUE_LEN 1100 /* ESP-IDF allows longer strings (4000 B); the firmware needs ~1 KB */
#define MAX_HANDLES 16

typedef enum { TYPE_U32 = 1, TYPE_STR = 2, TYPE_BLOB = 3 } value_type_t;

typedef struct {
    char ns[NVS_KEY_NAME_MAX_SIZE];
    char key[NVS_KEY_NAME_MAX_SIZE];
    uint8_t type;
    uint16_t len;
    uint8_t value[MAX_VALUE_LEN];
} entry_t;

typedef struct {
    uint32_t magic;
    uint32_t generation;
    uint32_t length; /* bytes of packed entries after the header */
    uint32_t crc;
} table_header_t;

typedef struct {
    bool open;
    bool writable;
    char ns[NVS_KEY_NAME_MAX_SIZE];
} handle_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static const esp_partition_t *s_part;
static entry_t s_entries[MAX_ENTRIES];
static int s_entry_count;
static uint32_t s_generation;
static int s_current_sector; /* the sector holding the newest table, -1 when none */
static handle_t s_handles[MAX_HANDLES + 1]; /* handle 0 is never given out */

/* Entries are packed as: ns[16] key[16] type u8 len u16 value[len]. */
static size_t pack_entries(uint8_t *out, size_t room)
{
    size_t pos = 0;
    for (int i = 0; i < s_entry_count; i++) {
        const entry_t *e = &s_entries[i];
        size_t need = 2 * NVS_KEY_NAME_MAX_SIZE + 3 + e->len;
        if (pos + need > room) {
            return SIZE_MAX;
        }
        memcpy(out + pos, e->ns, NVS_KEY_NAME_MAX_SIZE);
        memcpy(out + pos + NVS_KEY_NAME_MAX_SIZE, e->key, NVS_KEY_NAME_MAX_SIZE);
        pos += 2 * NVS_KEY_NAME_MAX_SIZE;
        out[pos++] = e->type;
        out[pos++] = (uint8_t)(e->len & 0xFF);
        out[pos++] = (uint8_t)(e->len >> 8);
        memcpy(out + pos, e->value, e->len);
        pos += e->len;
    }
    return pos;
}

static void unpack_entries(const uint8_t *in, size_t length)
{
    s_entry_count = 0;
    size_t pos = 0;
    while (pos + 2 * NVS_KEY_NAME_MAX_SIZE + 3 <= length && s_entry_count < MAX_ENTRIES) {
        entry_t *e = &s_entries[s_entry_count];
        memcpy(e->ns, in + pos, NVS_KEY_NAME_MAX_SIZE);
        memcpy(e->key, in + pos + NVS_KEY_NAME_MAX_SIZE, NVS_KEY_NAME_MAX_SIZE);
        pos += 2 * NVS_KEY_NAME_MAX_SIZE;
        e->type = in[pos++];
        e->len = (uint16_t)(in[pos] | (in[pos + 1] << 8));
        pos += 2;
        if (e->len > MAX_VALUE_LEN || pos + e->len > length) {
            break;
        }
        memcpy(e->value, in + pos, e->len);
        pos += e->len;
        s_entry_count++;
    }
}

/* Reads a sector's table; returns false when it is blank, torn or corrupt. */
static bool read_table(int sector, table_header_t *header, uint8_t *body)
{
    if (esp_partition_read(s_part, (size_t)sector * SECTOR_SIZE, header, sizeof(*header)) != ESP_OK ||
        header->magic != TABLE_MAGIC || header->length > SECTOR_SIZE - sizeof(*header)) {
        return false;
    }
    if (esp_partition_read(s_part, (size_t)sector * SECTOR_SIZE + sizeof(*header), body, header->length) != ESP_OK) {
        return false;
    }
    return (uint32_t)crc32(0, body, header->length) == header->crc;
}

static void load_newest_table(void)
{
    static uint8_t body[SECTOR_SIZE];
    table_header_t header;
    s_entry_count = 0;
    s_generation = 0;
    s_current_sector = -1;
    for (int sector = 0; sector < 2; sector++) {
        if (read_table(sector, &header, body) && (s_current_sector == -1 || header.generation > s_generation)) {
            s_generation = header.generation;
            s_current_sector = sector;
            unpack_entries(body, header.length);
        }
    }
}

static esp_err_t store_table(void)
{
    static uint8_t sector_buf[SECTOR_SIZE];
    table_header_t *header = (table_header_t *)sector_buf;
    memset(sector_buf, 0xFF, sizeof(sector_buf));
    size_t length = pack_entries(sector_buf + sizeof(*header), SECTOR_SIZE - sizeof(*header));
    if (length == SIZE_MAX) {
        return ESP_ERR_NVS_NOT_ENOUGH_SPACE;
    }
    int target = s_current_sector == 0 ? 1 : 0;
    *header = (table_header_t){TABLE_MAGIC, s_generation + 1, (uint32_t)length,
                               (uint32_t)crc32(0, sector_buf + sizeof(*header), (uInt)length)};
    esp_err_t err = esp_partition_erase_range(s_part, (size_t)target * SECTOR_SIZE, SECTOR_SIZE);
    if (err == ESP_OK) {
        /* Body first, header last: a cut in between leaves no valid header here. */
        err = esp_partition_write(s_part, (size_t)target * SECTOR_SIZE + sizeof(*header),
                                  sector_buf + sizeof(*header), length);
    }
    if (err == ESP_OK) {
        err = esp_partition_write(s_part, (size_t)target * SECTOR_SIZE, header, sizeof(*header));
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "writing the nvs table failed: %s", esp_err_to_name(err));
        return err;
    }
    s_generation++;
    s_current_sector = target;
    return ESP_OK;
}

esp_err_t nvs_flash_init(void)
{
    pthread_mutex_lock(&s_lock);
    s_part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_DATA_NVS, NULL);
    if (s_part != NULL) {
        load_newest_table();
    }
    pthread_mutex_unlock(&s_lock);
    return s_part != NULL ? ESP_OK : ESP_ERR_NOT_FOUND;
}

esp_err_t nvs_flash_erase(void)
{
    const esp_partition_t *part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA,
                                                           ESP_PARTITION_SUBTYPE_DATA_NVS, NULL);
    if (part == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    pthread_mutex_lock(&s_lock);
    esp_err_t err = esp_partition_erase_range(part, 0, part->size);
    s_entry_count = 0;
    s_current_sector = -1;
    pthread_mutex_unlock(&s_lock);
    return err;
}

static handle_t *get_handle(nvs_handle_t handle)
{
    return (handle >= 1 && handle <= MAX_HANDLES && s_handles[handle].open) ? &s_handles[handle] : NULL;
}

static entry_t *find_entry(const char *ns, const char *key)
{
    for (int i = 0; i < s_entry_count; i++) {
        if (strncmp(s_entries[i].ns, ns, NVS_KEY_NAME_MAX_SIZE) == 0 &&
            strncmp(s_entries[i].key, key, NVS_KEY_NAME_MAX_SIZE) == 0) {
            return &s_entries[i];
        }
    }
    return NULL;
}

static bool namespace_exists(const char *ns)
{
    for (int i = 0; i < s_entry_count; i++) {
        if (strncmp(s_entries[i].ns, ns, NVS_KEY_NAME_MAX_SIZE) == 0) {
            return true;
        }
    }
    return false;
}

esp_err_t nvs_open(const char *namespace_name, nvs_open_mode_t open_mode, nvs_handle_t *out_handle)
{
    if (s_part == NULL) {
        return ESP_ERR_NVS_NOT_INITIALIZED;
    }
    if (namespace_name == NULL || strlen(namespace_name) >= NVS_KEY_NAME_MAX_SIZE || namespace_name[0] == '\0') {
        return ESP_ERR_NVS_INVALID_NAME;
    }
    pthread_mutex_lock(&s_lock);
    esp_err_t err = ESP_ERR_NVS_NOT_ENOUGH_SPACE;
    if (open_mode == NVS_READONLY && !namespace_exists(namespace_name)) {
        err = ESP_ERR_NVS_NOT_FOUND;
    } else {
        for (nvs_handle_t h = 1; h <= MAX_HANDLES; h++) {
            if (!s_handles[h].open) {
                s_handles[h] = (handle_t){.open = true, .writable = open_mode == NVS_READWRITE};
                strncpy(s_handles[h].ns, namespace_name, NVS_KEY_NAME_MAX_SIZE - 1);
                *out_handle = h;
                err = ESP_OK;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s_lock);
    return err;
}

void nvs_close(nvs_handle_t handle)
{
    pthread_mutex_lock(&s_lock);
    handle_t *h = get_handle(handle);
    if (h != NULL) {
        h->open = false;
    }
    pthread_mutex_unlock(&s_lock);
}

static esp_err_t set_value(nvs_handle_t handle, const char *key, value_type_t type, const void *value, size_t len)
{
    if (key == NULL || strlen(key) >= NVS_KEY_NAME_MAX_SIZE) {
        return ESP_ERR_NVS_KEY_TOO_LONG;
    }
    if (len > MAX_VALUE_LEN) {
        return ESP_ERR_NVS_VALUE_TOO_LONG;
    }
    pthread_mutex_lock(&s_lock);
    handle_t *h = get_handle(handle);
    esp_err_t err = ESP_OK;
    if (h == NULL) {
        err = ESP_ERR_NVS_INVALID_HANDLE;
    } else if (!h->writable) {
        err = ESP_ERR_NVS_READ_ONLY;
    } else {
        entry_t *e = find_entry(h->ns, key);
        if (e == NULL && s_entry_count == MAX_ENTRIES) {
            err = ESP_ERR_NVS_NOT_ENOUGH_SPACE;
        } else {
            if (e == NULL) {
                e = &s_entries[s_entry_count++];
                memset(e, 0, sizeof(*e));
                strncpy(e->ns, h->ns, NVS_KEY_NAME_MAX_SIZE - 1);
                strncpy(e->key, key, NVS_KEY_NAME_MAX_SIZE - 1);
            }
            e->type = (uint8_t)type;
            e->len = (uint16_t)len;
            memcpy(e->value, value, len);
            err = store_table(); /* IDF's nvs writes on set; commit only flushes */
        }
    }
    pthread_mutex_unlock(&s_lock);
    return err;
}

/* Copies a value out; with out == NULL only reports the length, as IDF does for str/blob. */
static esp_err_t get_value(nvs_handle_t handle, const char *key, value_type_t type, void *out, size_t *len)
{
    pthread_mutex_lock(&s_lock);
    handle_t *h = get_handle(handle);
    esp_err_t err = ESP_OK;
    const entry_t *e = h != NULL ? find_entry(h->ns, key) : NULL;
    if (h == NULL) {
        err = ESP_ERR_NVS_INVALID_HANDLE;
    } else if (e == NULL) {
        err = ESP_ERR_NVS_NOT_FOUND;
    } else if (e->type != type) {
        err = ESP_ERR_NVS_TYPE_MISMATCH;
    } else if (out == NULL) {
        *len = e->len;
    } else if (*len < e->len) {
        err = ESP_ERR_NVS_INVALID_LENGTH;
    } else {
        memcpy(out, e->value, e->len);
        *len = e->len;
    }
    pthread_mutex_unlock(&s_lock);
    return err;
}

esp_err_t nvs_set_u32(nvs_handle_t handle, const char *key, uint32_t value)
{
    return set_value(handle, key, TYPE_U32, &value, sizeof(value));
}

esp_err_t nvs_get_u32(nvs_handle_t handle, const char *key, uint32_t *out_value)
{
    size_t len = sizeof(*out_value);
    return get_value(handle, key, TYPE_U32, out_value, &len);
}

esp_err_t nvs_set_str(nvs_handle_t handle, const char *key, const char *value)
{
    return set_value(handle, key, TYPE_STR, value, strlen(value) + 1);
}

esp_err_t nvs_get_str(nvs_handle_t handle, const char *key, char *out_value, size_t *length)
{
    return get_value(handle, key, TYPE_STR, out_value, length);
}

esp_err_t nvs_set_blob(nvs_handle_t handle, const char *key, const void *value, size_t length)
{
    return set_value(handle, key, TYPE_BLOB, value, length);
}

esp_err_t nvs_get_blob(nvs_handle_t handle, const char *key, void *out_value, size_t *length)
{
    return get_value(handle, key, TYPE_BLOB, out_value, length);
}

static esp_err_t erase_matching(nvs_handle_t handle, const char *key)
{
    pthread_mutex_lock(&s_lock);
    handle_t *h = get_handle(handle);
    esp_err_t err = h == NULL ? ESP_ERR_NVS_INVALID_HANDLE : (!h->writable ? ESP_ERR_NVS_READ_ONLY : ESP_OK);
    bool removed = false;
    for (int i = 0; err == ESP_OK && i < s_entry_count;) {
        entry_t *e = &s_entries[i];
        if (strncmp(e->ns, h->ns, NVS_KEY_NAME_MAX_SIZE) == 0 &&
            (key == NULL || strncmp(e->key, key, NVS_KEY_NAME_MAX_SIZE) == 0)) {
            memmove(e, e + 1, (size_t)(s_entry_count - i - 1) * sizeof(*e));
            s_entry_count--;
            removed = true;
        } else {
            i++;
        }
    }
    if (err == ESP_OK && key != NULL && !removed) {
        err = ESP_ERR_NVS_NOT_FOUND;
    }
    if (err == ESP_OK && removed) {
        err = store_table();
    }
    pthread_mutex_unlock(&s_lock);
    return err;
}

esp_err_t nvs_erase_key(nvs_handle_t handle, const char *key)
{
    return erase_matching(handle, key);
}

esp_err_t nvs_erase_all(nvs_handle_t handle)
{
    return erase_matching(handle, NULL);
}

esp_err_t nvs_commit(nvs_handle_t handle)
{
    pthread_mutex_lock(&s_lock);
    esp_err_t err = get_handle(handle) != NULL ? ESP_OK : ESP_ERR_NVS_INVALID_HANDLE;
    pthread_mutex_unlock(&s_lock);
    return err;
}
