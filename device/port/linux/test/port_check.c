/*
 * port_check: a small app over the host port, for the harness's tests of the port itself
 * (tests_unit/test_flash.py, tests_unit/test_host_port*.py, tests_hil/test_virtual_board_resets.py).
 * It is never part of the firmware. It prints its reset reason, then runs one command per stdin line:
 *
 *   restart | abort | segv              esp_restart(), abort(), a NULL pointer store
 *   abort_last                          abort() as the last instruction of a function (backtrace PCs)
 *   wdt <ms> <panic 0|1>                a task subscribes to the task watchdog and stops feeding it
 *   wdt_fed <ms>                        a task subscribes and feeds it for 4 timeouts, then leaves
 *   nor                                 esp_partition NOR checks on the nvs partition
 *   writes <n>                          n 4-byte writes to nvs (for power-cut tests)
 *   erase_sector                        erases the first sector of nvs (for power-cut tests)
 *   flash_times                         erases 16 KB of nvs, writes it in 2 KB pieces: how long each took
 *   http_* | mqtt_*                     esp_http_client and esp-mqtt against local servers (net_check.c)
 *   https_ota <url> [options]           esp_https_ota against a local server (https_ota_check.c)
 *   bt_* | ble_*                        Bluetooth controller, Bluedroid and BLE scanning (ble_check.c)
 *   wifi_* | tcp_*                      the Wi-Fi station and sockets through the network gate (wifi_check.c)
 *   mesh_*                              ESP-WIFI-MESH over the harness's mesh medium (mesh_check.c)
 *   ota_offset                          esp_ota_write_with_offset(): out of order, its return codes
 *   ota_offset_sequential               the same after esp_ota_begin(OTA_WITH_SEQUENTIAL_WRITES): the assert
 *   sigcheck <label> <n>                n x esp_secure_boot_verify_signature() of the image in that slot
 *                                       (signed builds only; bench/bench_signature.py times it)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_err.h"
#include "esp_log.h"
#include "esp_partition.h"
#include "esp_image_format.h"
#include "esp_ota_ops.h"
#include "esp_secure_boot.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_task_wdt.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "ble_check.h"
#include "https_ota_check.h"
#include "miniz_check.h"
#include "net_check.h"
#include "spi_flash_mmap.h"
#include "wifi_check.h"
#include "mesh_check.h"

static const char *TAG = "port_check";

/* The call to abort() is this function's last instruction, so its return address is past the function's
   end: a backtrace decodes this frame to this function only with the PC moved back into the call. */
static void __attribute__((noinline)) abort_as_last_instruction(void)
{
    abort();
}

static void report(const char *what, esp_err_t err)
{
    printf("%s=%s\n", what, esp_err_to_name(err));
}

static void nor_checks(void)
{
    const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "nvs");
    if (p == NULL) {
        printf("nor: no nvs partition\n");
        return;
    }
    uint8_t buf[8];
    report("erase", esp_partition_erase_range(p, 0, 0x1000));
    esp_partition_read(p, 0, buf, 4);
    printf("erased=%02x%02x%02x%02x\n", buf[0], buf[1], buf[2], buf[3]);
    const uint8_t a[4] = {0xF0, 0x0F, 0xAA, 0x55};
    report("write", esp_partition_write(p, 0, a, 4));
    const uint8_t clear_more[4] = {0x30, 0x03, 0x00, 0x55};
    report("write_clearing_bits", esp_partition_write(p, 0, clear_more, 4));
    esp_partition_read(p, 0, buf, 4);
    printf("after=%02x%02x%02x%02x\n", buf[0], buf[1], buf[2], buf[3]);
    const uint8_t set_bits[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    report("write_unerased", esp_partition_write(p, 0, set_bits, 4));
    report("erase_unaligned_offset", esp_partition_erase_range(p, 0x10, 0x1000));
    report("erase_unaligned_size", esp_partition_erase_range(p, 0, 0x800));
    report("erase_offset_outside", esp_partition_erase_range(p, p->size + 0x1000, 0x1000));
    report("erase_past_end", esp_partition_erase_range(p, p->size - 0x1000, 0x2000));
    report("write_offset_outside", esp_partition_write(p, p->size + 1, a, 4));
    report("write_past_end", esp_partition_write(p, p->size - 2, a, 4));
    report("read_past_end", esp_partition_read(p, p->size - 2, buf, 4));
    report("erase_again", esp_partition_erase_range(p, 0, 0x1000));
    esp_partition_read(p, 0, buf, 4);
    printf("erased_again=%02x%02x%02x%02x\n", buf[0], buf[1], buf[2], buf[3]);
}

static void many_writes(int n)
{
    const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "nvs");
    const uint8_t zero[4] = {0};
    for (int i = 0; i < n; i++) {
        esp_partition_write(p, (size_t)i * 4, zero, sizeof(zero));
    }
    printf("writes done\n");
}

/* The pattern of ESP-IDF's own flash speed test (4 sectors erased, then written 2 KB at a time), timed as the
   firmware sees it: HIL_FLASH_TIMING's rates, or next to no time without it. */
static void flash_times(void)
{
    const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "nvs");
    static uint8_t piece[2048];
    const size_t total = 4 * SPI_FLASH_SEC_SIZE;
    int64_t t0 = esp_timer_get_time();
    report("erase_16k", esp_partition_erase_range(p, 0, total));
    int64_t t1 = esp_timer_get_time();
    for (size_t done = 0; done < total; done += sizeof(piece)) {
        esp_partition_write(p, done, piece, sizeof(piece));
    }
    int64_t t2 = esp_timer_get_time();
    printf("flash_times erase_us=%lld write_us=%lld\n", (long long)(t1 - t0), (long long)(t2 - t1));
}

typedef struct {
    int period_ms;
    int feeds;
} wdt_job_t;

static void wdt_task(void *arg)
{
    wdt_job_t *job = arg;
    ESP_ERROR_CHECK(esp_task_wdt_add(NULL));
    for (int i = 0; i < job->feeds; i++) {
        vTaskDelay(pdMS_TO_TICKS(job->period_ms / 4));
        esp_task_wdt_reset();
    }
    if (job->feeds > 0) {
        ESP_ERROR_CHECK(esp_task_wdt_delete(NULL));
        ESP_LOGI(TAG, "wdt fed and unsubscribed");
        vTaskDelete(NULL);
    }
    for (;;) {
        vTaskDelay(pdMS_TO_TICKS(1000)); /* stuck: never feeds the watchdog again */
    }
}

static void start_wdt(int timeout_ms, bool panic, int feeds)
{
    static wdt_job_t job;
    job = (wdt_job_t){timeout_ms, feeds};
    const esp_task_wdt_config_t config = {.timeout_ms = (uint32_t)timeout_ms, .idle_core_mask = 0, .trigger_panic = panic};
    ESP_ERROR_CHECK(esp_task_wdt_reconfigure(&config));
    xTaskCreate(wdt_task, "stuck_task", 4096, &job, 5, NULL);
}

/* esp_ota_write_with_offset() into the next slot, erased by esp_ota_begin() for 5000 bytes: three chunks out
   of order (the first byte is no image magic: it is not checked), then the errors. */
static void ota_offset_checks(bool sequential)
{
    const esp_partition_t *p = esp_ota_get_next_update_partition(NULL);
    esp_ota_handle_t h = 0;
    report("begin", esp_ota_begin(p, sequential ? OTA_WITH_SEQUENTIAL_WRITES : 5000, &h));
    static uint8_t chunk[3][1024];
    for (int c = 0; c < 3; c++) {
        memset(chunk[c], 0x10 * (c + 1), sizeof(chunk[c]));
    }
    const int order[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        char what[16];
        snprintf(what, sizeof(what), "write_%d", order[i]);
        report(what, esp_ota_write_with_offset(h, chunk[order[i]], 1024, (uint32_t)order[i] * 1024));
    }
    uint8_t back[3 * 1024];
    esp_partition_read(p, 0, back, sizeof(back));
    bool same = true;
    for (int c = 0; c < 3; c++) {
        same = same && memcmp(back + c * 1024, chunk[c], 1024) == 0;
    }
    printf("readback=%s\n", same ? "ok" : "differs");
    report("null_data", esp_ota_write_with_offset(h, NULL, 4, 0));
    report("bad_handle", esp_ota_write_with_offset(h + 100, chunk[0], 4, 0));
    report("past_end", esp_ota_write_with_offset(h, chunk[0], 8, (uint32_t)p->size - 4));
    report("unerased", esp_ota_write_with_offset(h, (const uint8_t[4]){0xff, 0xff, 0xff, 0xff}, 4, 0));
    report("abort", esp_ota_abort(h));
    report("after_abort", esp_ota_write_with_offset(h, chunk[0], 4, 0));
}

/* Times the signature check of esp_ota_end() (SHA-256 of the padded image, trusted key, RSA-PSS) n times. */
static void signature_check(const char *label, int n)
{
#if CONFIG_SECURE_SIGNED_APPS_RSA_SCHEME
    const esp_partition_t *p = esp_partition_find_first(ESP_PARTITION_TYPE_APP, ESP_PARTITION_SUBTYPE_ANY, label);
    esp_image_metadata_t meta;
    const esp_partition_pos_t pos = {.offset = p != NULL ? p->address : 0, .size = p != NULL ? p->size : 0};
    if (p == NULL || esp_image_get_metadata(&pos, &meta) != ESP_OK) {
        printf("sigcheck no image in %s\n", label);
        return;
    }
    esp_log_level_set("*", ESP_LOG_WARN); /* not n x the secure_boot_v2 lines */
    esp_err_t err = ESP_OK;
    int64_t best = INT64_MAX, total = 0;
    for (int i = 0; i < n; i++) {
        int64_t start = esp_timer_get_time();
        err = esp_secure_boot_verify_signature(p->address, meta.image_len);
        int64_t took = esp_timer_get_time() - start;
        total += took;
        best = took < best ? took : best;
    }
    esp_log_level_set("*", ESP_LOG_INFO);
    printf("sigcheck result=%s image_len=%u n=%d mean_us=%lld min_us=%lld\n", esp_err_to_name(err),
           (unsigned)meta.image_len, n, (long long)(total / (n > 0 ? n : 1)), (long long)best);
#else
    printf("sigcheck unsupported: not a signed build (CONFIG_SECURE_SIGNED_APPS_RSA_SCHEME)\n");
#endif
}

void app_main(void)
{
    ESP_LOGI(TAG, "reset reason %d", (int)esp_reset_reason());
    char line[512];
    printf("port_check>\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        int a = 0, b = 0;
        char label[17] = "";
        if (strncmp(line, "restart", 7) == 0) {
            esp_restart();
        } else if (strncmp(line, "abort_last", 10) == 0) {
            abort_as_last_instruction();
        } else if (strncmp(line, "abort", 5) == 0) {
            abort();
        } else if (strncmp(line, "segv", 4) == 0) {
            *(volatile int *)NULL = 1;
        } else if (sscanf(line, "wdt_fed %d", &a) == 1) {
            start_wdt(a, true, 4 * 4);
        } else if (sscanf(line, "wdt %d %d", &a, &b) == 2) {
            start_wdt(a, b != 0, 0);
        } else if (strncmp(line, "ota_offset_sequential", 21) == 0) {
            ota_offset_checks(true);
        } else if (strncmp(line, "ota_offset", 10) == 0) {
            ota_offset_checks(false);
        } else if (strncmp(line, "nor", 3) == 0) {
            nor_checks();
        } else if (sscanf(line, "writes %d", &a) == 1) {
            many_writes(a);
        } else if (sscanf(line, "sigcheck %16s %d", label, &a) == 2) {
            signature_check(label, a);
        } else if (strncmp(line, "flash_times", 11) == 0) {
            flash_times();
        } else if (strncmp(line, "erase_sector", 12) == 0) {
            const esp_partition_t *p =
                esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "nvs");
            report("erase_sector", esp_partition_erase_range(p, 0, SPI_FLASH_SEC_SIZE));
        } else if (!https_ota_check_command(line) && !net_check_command(line) && !ble_check_command(line) &&
                   !wifi_check_command(line) && !miniz_check_command(line) && !mesh_check_command(line)) {
            printf("unknown command\n");
        }
        printf("port_check>\n");
        fflush(stdout);
    }
    exit(7); /* stdin closed: run standalone (a test piping commands), not in a board */
}
