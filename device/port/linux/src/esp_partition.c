/*
 * esp_partition over the virtual board's flash file, with NOR semantics: an erase sets whole
 * 4 KB sectors to 0xFF, a write can only clear bits, and writing over bytes that were not
 * erased fails, as ESP-IDF's own linux partition emulation does (CONFIG_ESP_PARTITION_ERASE_CHECK).
 *
 * Timing: by default erases and writes are memory copies into the mapped file and take no time (1 MiB in
 * about 10 ms), so the catalog's hundreds of updates stay fast; scenarios that need time to pass during an
 * update throttle the link instead (the firmware server's FaultPlan, the Wi-Fi scenarios). With
 * HIL_FLASH_TIMING (host_board.h; harness/virtual/flash.py's CHIP_TIMING, from ESP-IDF's own ESP32 flash
 * figures) each write and erase lasts as long as its length takes at the chip's rates, the calling task
 * waiting with the flash held, so an update's flash time (most of a chip's esp_ota_write()) is reproduced.
 * Known differences even then: one rate per kind, where a chip's 64 KB block erase is faster per byte than
 * its 4 KB sector erase and a datasheet gives typical and maximum times; and only the calling task and other
 * tasks' writes and erases wait, where a chip with its cache disabled also stalls reads and every task
 * running from flash; and an operation takes effect before its wait, so a board stopped during the wait finds
 * it done (the board's power cuts, which tear an operation, are by operation count, not by time).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "esp_flash_partitions.h"
#include "esp_log.h"
#include "esp_partition.h"
#include "host_board.h"
#include "spi_flash_mmap.h"

static const char *TAG = "esp_partition";

#define MAX_PARTITIONS 32
#define PARTITION_ENTRY_SIZE 32
#define PARTITION_TABLE_MAX_LEN 0xC00

struct esp_partition_iterator_opaque_ {
    esp_partition_type_t type;
    esp_partition_subtype_t subtype;
    const char *label;
    int next_index;
    const esp_partition_t *current;
};

static pthread_once_t s_flash_once = PTHREAD_ONCE_INIT;
static uint8_t *s_flash;
static uint32_t s_flash_size;
static esp_partition_t s_partitions[MAX_PARTITIONS];
static int s_partition_count;
/* The flash operation counters: in the board's control file when it gave one, else here. */
static uint32_t s_local_control[HOST_FC_WORDS];
static uint32_t *s_control = s_local_control;
static pthread_mutex_t s_op_lock = PTHREAD_MUTEX_INITIALIZER;
static bool s_power_lost;
/* HIL_FLASH_TIMING's rates as nanoseconds per byte (0: no time), and when the operation in progress ends. */
static double s_write_ns_per_byte;
static double s_erase_ns_per_byte;
static struct timespec s_op_ends;
static bool s_op_timed;

static void fatal(const char *what)
{
    ESP_LOGE(TAG, "%s", what);
    fflush(stdout);
    _exit(HOST_EXIT_PANIC);
}

static void *map_file(const char *path, size_t *size)
{
    int fd = open(path, O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        return NULL;
    }
    /* MAP_SHARED: every write lands in the file at once, so a power cut keeps exactly what
       was written before it, like a real flash chip. */
    void *data = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    *size = (size_t)st.st_size;
    return data == MAP_FAILED ? NULL : data;
}

static double to_ns_per_byte(double bytes_per_s)
{
    return bytes_per_s > 0 ? 1e9 / bytes_per_s : 0;
}

static void read_flash_timing(void)
{
    const char *timing = getenv(HOST_ENV_FLASH_TIMING);
    double write_rate = 0, erase_rate = 0;
    if (timing != NULL && sscanf(timing, "%lf %lf", &write_rate, &erase_rate) != 2) {
        fatal("bad " HOST_ENV_FLASH_TIMING ": expected \"<write bytes/s> <erase bytes/s>\"");
    }
    s_write_ns_per_byte = to_ns_per_byte(write_rate);
    s_erase_ns_per_byte = to_ns_per_byte(erase_rate);
}

/* Sets when the operation of `length` bytes starting now ends, at HIL_FLASH_TIMING's rate for its kind. */
static void time_operation(host_flash_op_t kind, size_t length)
{
    double ns_per_byte = kind == HOST_FLASH_WRITE ? s_write_ns_per_byte
                         : kind == HOST_FLASH_ERASE ? s_erase_ns_per_byte : 0;
    s_op_timed = ns_per_byte > 0;
    if (!s_op_timed) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &s_op_ends);
    int64_t ns = s_op_ends.tv_nsec + (int64_t)(ns_per_byte * (double)length);
    s_op_ends.tv_sec += (time_t)(ns / 1000000000);
    s_op_ends.tv_nsec = (long)(ns % 1000000000);
}

static void map_flash_file(void)
{
    const char *path = getenv(HOST_ENV_FLASH_FILE);
    if (path == NULL) {
        fatal("no flash: " HOST_ENV_FLASH_FILE " is not set (run the app inside a virtual board)");
    }
    size_t size;
    s_flash = map_file(path, &size);
    if (s_flash == NULL) {
        fatal("cannot map the flash file named by " HOST_ENV_FLASH_FILE);
    }
    s_flash_size = (uint32_t)size;
    const char *control = getenv(HOST_ENV_FLASH_CONTROL);
    if (control != NULL) {
        uint32_t *words = map_file(control, &size);
        if (words == NULL || size < sizeof(s_local_control)) {
            fatal("cannot map the flash control file named by " HOST_ENV_FLASH_CONTROL);
        }
        s_control = words;
    }
    read_flash_timing();
    const char *cut = getenv(HOST_ENV_POWER_CUT_AT);
    if (cut != NULL) {
        __atomic_store_n(&s_control[HOST_FC_CUT_AT], (uint32_t)strtoul(cut, NULL, 10), __ATOMIC_SEQ_CST);
    }
}

uint8_t *host_flash_data(void)
{
    pthread_once(&s_flash_once, map_flash_file);
    return s_flash;
}

uint32_t host_flash_size(void)
{
    host_flash_data();
    return s_flash_size;
}

size_t host_flash_begin_operation(host_flash_op_t kind, uint32_t address, size_t length)
{
    host_flash_data();
    /* One operation at a time, as the SPI flash driver serialises them; the lock is held until
       host_flash_end_operation() so a power cut stops every other task's flash access too. */
    pthread_mutex_lock(&s_op_lock);
    uint32_t n = __atomic_add_fetch(&s_control[HOST_FC_OPS], 1, __ATOMIC_SEQ_CST);
    if (kind != HOST_EFUSE_BURN) {
        __atomic_add_fetch(&s_control[kind == HOST_FLASH_WRITE ? HOST_FC_WRITES : HOST_FC_ERASES], 1, __ATOMIC_SEQ_CST);
    }
    s_control[HOST_FC_LAST_KIND] = kind;
    s_control[HOST_FC_LAST_ADDR] = address;
    s_control[HOST_FC_LAST_LEN] = (uint32_t)length;
    time_operation(kind, length);
    uint32_t cut_at = __atomic_load_n(&s_control[HOST_FC_CUT_AT], __ATOMIC_SEQ_CST);
    if (cut_at == 0 || n < cut_at) {
        return length;
    }
    /* The power goes half-way through this operation: a torn write (whole words) or a partial
       erase. An interrupted sector erase leaves the sector neither old nor erased; the first half
       of the range at 0xFF stands for that, so a cut inside a one-sector erase changes it too. */
    s_power_lost = true;
    __atomic_store_n(&s_control[HOST_FC_POWER_CUT], 1, __ATOMIC_SEQ_CST);
    if (kind == HOST_FLASH_ERASE || kind == HOST_EFUSE_BURN) {
        return length / 2;
    }
    return (length / 2) & ~(size_t)3;
}

void host_flash_end_operation(void)
{
    if (s_power_lost) {
        /* No log line: a chip that loses power prints nothing more. */
        _exit(HOST_EXIT_POWER_CUT);
    }
    /* The chip is still busy with it: the caller waits, and so does any other task's write or erase (the lock). */
    while (s_op_timed && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &s_op_ends, NULL) == EINTR) {
    }
    pthread_mutex_unlock(&s_op_lock);
}

/* Loads the partition table from flash at 0x8000 (the bootloader already verified its MD5). */
static void load_partition_table(void)
{
    const uint8_t *table = host_flash_data() + ESP_PARTITION_TABLE_OFFSET;
    for (int off = 0; off < PARTITION_TABLE_MAX_LEN && s_partition_count < MAX_PARTITIONS;
         off += PARTITION_ENTRY_SIZE) {
        const uint8_t *e = table + off;
        uint16_t magic = (uint16_t)(e[0] | (e[1] << 8));
        if (magic != ESP_PARTITION_MAGIC) {
            break; /* the MD5 entry (0xEBEB) or the 0xFFFF end marker */
        }
        esp_partition_t *p = &s_partitions[s_partition_count++];
        memset(p, 0, sizeof(*p));
        p->type = (esp_partition_type_t)e[2];
        p->subtype = (esp_partition_subtype_t)e[3];
        memcpy(&p->address, e + 4, 4);
        memcpy(&p->size, e + 8, 4);
        memcpy(p->label, e + 12, 16);
        uint32_t flags;
        memcpy(&flags, e + 28, 4);
        p->encrypted = flags & 1;
        p->readonly = (flags >> 1) & 1;
        p->erase_size = SPI_FLASH_SEC_SIZE;
    }
}

static const esp_partition_t *partitions(int *count)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_partition_table);
    *count = s_partition_count;
    return s_partitions;
}

static bool partition_matches(const esp_partition_t *p, esp_partition_type_t type,
                              esp_partition_subtype_t subtype, const char *label)
{
    return (type == ESP_PARTITION_TYPE_ANY || p->type == type) &&
           (subtype == ESP_PARTITION_SUBTYPE_ANY || p->subtype == subtype) &&
           (label == NULL || strncmp(p->label, label, sizeof(p->label)) == 0);
}

esp_partition_iterator_t esp_partition_find(esp_partition_type_t type, esp_partition_subtype_t subtype,
                                            const char *label)
{
    esp_partition_iterator_t it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    *it = (struct esp_partition_iterator_opaque_){type, subtype, label, 0, NULL};
    esp_partition_iterator_t next = esp_partition_next(it);
    if (next == NULL) {
        return NULL; /* esp_partition_next released it */
    }
    return next;
}

esp_partition_iterator_t esp_partition_next(esp_partition_iterator_t it)
{
    int count;
    const esp_partition_t *table = partitions(&count);
    while (it->next_index < count) {
        const esp_partition_t *p = &table[it->next_index++];
        if (partition_matches(p, it->type, it->subtype, it->label)) {
            it->current = p;
            return it;
        }
    }
    esp_partition_iterator_release(it);
    return NULL;
}

const esp_partition_t *esp_partition_get(esp_partition_iterator_t it)
{
    return it->current;
}

void esp_partition_iterator_release(esp_partition_iterator_t it)
{
    free(it);
}

const esp_partition_t *esp_partition_find_first(esp_partition_type_t type,
                                                esp_partition_subtype_t subtype, const char *label)
{
    int count;
    const esp_partition_t *table = partitions(&count);
    for (int i = 0; i < count; i++) {
        if (partition_matches(&table[i], type, subtype, label)) {
            return &table[i];
        }
    }
    return NULL;
}

static esp_err_t check_range(const esp_partition_t *p, size_t offset, size_t size)
{
    if (offset > p->size) {
        return ESP_ERR_INVALID_ARG;
    }
    if (offset + size > p->size || p->address + offset + size > host_flash_size()) {
        return ESP_ERR_INVALID_SIZE;
    }
    return ESP_OK;
}

esp_err_t esp_partition_read(const esp_partition_t *p, size_t src_offset, void *dst, size_t size)
{
    esp_err_t err = check_range(p, src_offset, size);
    if (err != ESP_OK) {
        return err;
    }
    memcpy(dst, host_flash_data() + p->address + src_offset, size);
    return ESP_OK;
}

esp_err_t esp_partition_write(const esp_partition_t *p, size_t dst_offset, const void *src, size_t size)
{
    if (p->readonly) {
        return ESP_ERR_NOT_ALLOWED;
    }
    esp_err_t err = check_range(p, dst_offset, size);
    if (err != ESP_OK) {
        return err;
    }
    uint8_t *dst = host_flash_data() + p->address + dst_offset;
    const uint8_t *bytes = src;
    size_t done = host_flash_begin_operation(HOST_FLASH_WRITE, p->address + (uint32_t)dst_offset, size);
    for (size_t i = 0; i < done; i++) {
        if ((~dst[i] & bytes[i]) != 0) {
            ESP_LOGW(TAG, "invalid flash operation detected");
            err = ESP_ERR_FLASH_OP_FAIL;
            break;
        }
        dst[i] &= bytes[i]; /* NOR flash can only clear bits */
    }
    host_flash_end_operation();
    return err;
}

esp_err_t esp_partition_erase_range(const esp_partition_t *p, size_t offset, size_t size)
{
    if (p->readonly) {
        return ESP_ERR_NOT_ALLOWED;
    }
    if (offset > p->size || offset % p->erase_size != 0) {
        return ESP_ERR_INVALID_ARG;
    }
    if (offset + size > p->size || size % p->erase_size != 0) {
        return ESP_ERR_INVALID_SIZE;
    }
    size_t done = host_flash_begin_operation(HOST_FLASH_ERASE, p->address + (uint32_t)offset, size);
    memset(host_flash_data() + p->address + offset, 0xFF, done);
    host_flash_end_operation();
    return ESP_OK;
}

/* components/esp_partition/partition.c (v5.5.4): the table entry with the same type, subtype,
 * label, chip, address, size and encryption flag, or NULL. */
const esp_partition_t *esp_partition_verify(const esp_partition_t *partition)
{
    if (partition == NULL) {
        abort(); /* assert(partition != NULL) in ESP-IDF */
    }
    const char *label = (strlen(partition->label) > 0) ? partition->label : NULL;
    esp_partition_iterator_t it = esp_partition_find(partition->type, partition->subtype, label);
    while (it != NULL) {
        const esp_partition_t *p = esp_partition_get(it);
        if (p->flash_chip == partition->flash_chip && p->address == partition->address &&
            partition->size == p->size && partition->encrypted == p->encrypted) {
            esp_partition_iterator_release(it);
            return p;
        }
        it = esp_partition_next(it);
    }
    return NULL;
}

/* Copy chunk: ESP-IDF maps the source through free MMU pages (64 KB each) and writes what it
 * mapped; one chunk of that size here gives a similar number of flash write operations. */
#define COPY_CHUNK_SIZE (64 * 1024)

esp_err_t esp_partition_copy(const esp_partition_t *dest_part, uint32_t dest_offset,
                             const esp_partition_t *src_part, uint32_t src_offset, size_t size)
{
    if (src_part == NULL || dest_part == NULL || src_part == dest_part) {
        return ESP_ERR_INVALID_ARG;
    }
    if (src_offset > src_part->size || dest_offset > dest_part->size) {
        return ESP_ERR_INVALID_SIZE;
    }
    size_t dest_erase_size = size;
    if (size == SIZE_MAX) {
        size = src_part->size - src_offset;
        dest_erase_size = dest_part->size - dest_offset; /* erase the whole destination partition */
    }
    uint32_t src_end_offset;
    uint32_t dest_end_offset;
    if ((__builtin_add_overflow(src_offset, size, &src_end_offset) || (src_end_offset > src_part->size)) ||
        (__builtin_add_overflow(dest_offset, size, &dest_end_offset) || (dest_end_offset > dest_part->size))) {
        return ESP_ERR_INVALID_SIZE;
    }
    size_t aligned = (dest_erase_size + SPI_FLASH_SEC_SIZE - 1) & ~(size_t)(SPI_FLASH_SEC_SIZE - 1);
    esp_err_t error = esp_partition_erase_range(dest_part, dest_offset, aligned);
    if (error) {
        ESP_LOGE(TAG, "Erasing destination partition range failed (err=0x%x)", error);
        return error;
    }
    uint8_t *chunk = malloc(COPY_CHUNK_SIZE);
    if (chunk == NULL) {
        return ESP_ERR_NO_MEM;
    }
    for (size_t done = 0; done < size && error == ESP_OK; done += COPY_CHUNK_SIZE) {
        size_t n = size - done < COPY_CHUNK_SIZE ? size - done : COPY_CHUNK_SIZE;
        error = esp_partition_read(src_part, src_offset + done, chunk, n);
        if (error == ESP_OK) {
            error = esp_partition_write(dest_part, dest_offset + done, chunk, n);
            if (error != ESP_OK) {
                ESP_LOGE(TAG, "Writing to destination partition failed (err=0x%x)", error);
            }
        }
    }
    free(chunk);
    return error;
}
