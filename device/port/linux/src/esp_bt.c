/*
 * Host port of the ESP32's Bluetooth controller (components/bt/controller/esp32/bt.c, v5.5.4), for
 * BLE scanning. The controller states and the checks of esp_bt_controller_mem_release(), _init(),
 * _enable(), _disable() and _deinit() are bt.c's, with its return codes; in place of the radio, a
 * task hears the board's BLE air (host_ble_air.c) and hands LE Advertising Reports to Bluedroid
 * (host_ble.h), through the controller's duplicate filter: by address, data or both
 * (scan_duplicate_type), of normal_adv_size entries, cleared when a scan starts and every
 * dup_list_refresh_period seconds (0: never); the BLE Mesh filter mode (scan_duplicate_mode 1) is not there.
 *
 * Known differences from the chip:
 * - No radio: the devices around are the ones the board's air file lists, each heard at the RSSI it
 *   gives, always the same. Every advertisement is heard: no channel hopping, no packet loss, and the
 *   scan is continuous whatever scan_interval and scan_window say (the chip hears only during the
 *   window, scan_window / scan_interval of the time).
 * - Coexistence is not modelled: on the chip, Wi-Fi and BLE share the radio and the coexistence
 *   scheduler takes scan time from BLE while Wi-Fi is busy; here BLE never loses air time.
 * - Timing: a device advertises at the time of its record and every interval after it, without the
 *   0-10 ms random delay of real advertisers. The radio task wakes for each advertisement and reports
 *   it then, so reports are late by the host's scheduling (ms under load); when the task falls more
 *   than an interval behind, the advertisements it missed are lost, as a busy chip would lose them.
 * - Legacy non-connectable advertising (ADV_NONCONN_IND) from public addresses only, and no scan
 *   responses: an active scan gets what a passive scan gets.
 * - Memory: esp_bt_controller_mem_release() only records which modes' memory was released. Init with a
 *   mode whose memory is gone fails with ESP_ERR_NO_MEM: on the chip the closed controller library
 *   fails there, and ESP_ERR_NO_MEM is what bt.c makes of its failure (assumed, not observed).
 * - The controller task is a thread (its priority, stack size and core are checked, not used); no HCI
 *   UART, modem sleep, BR/EDR, TX power. The port is compiled without CONFIG_BT_ENABLED too, where the
 *   chip's build leaves the controller out.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "esp_bt.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "host_ble.h"
#include "host_ble_air.h"
#include "host_record_file.h"

static const char *TAG = "BTDM_INIT"; /* bt.c's BTDM_LOG_TAG */

/* esp_bt.h has these only with CONFIG_BT_ENABLED, without which the chip's build has no bt.c either. */
#ifndef CONFIG_BT_ENABLED
#define BTDM_CONTROLLER_BLE_MAX_CONN_LIMIT          9
#define BTDM_CONTROLLER_BR_EDR_MAX_ACL_CONN_LIMIT   7
#define BTDM_CONTROLLER_BR_EDR_MAX_SYNC_CONN_LIMIT  3
#endif

typedef struct {
    uint8_t addr[6];
    uint8_t adv_len;
    uint8_t adv[HOST_BLE_ADV_DATA_MAX];
} dup_entry_t;

static esp_bt_controller_status_t s_status = ESP_BT_CONTROLLER_STATUS_IDLE;
static uint8_t s_available = ESP_BT_MODE_BTDM; /* modes whose memory is not released */
static esp_bt_controller_config_t s_cfg;

/* The scan, set by Bluedroid's task, read by the radio task; s_lock also spans each report. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool on;
    uint32_t id;
    bool filter_duplicates;
    bool white_list_only;
    host_ble_report_cb_t on_report;
} s_scan;
static int s_wake = -1; /* eventfd: the scan changed */
static TaskHandle_t s_radio;

/* The duplicate filter: a ring of the last normal_adv_size advertisements reported. */
static dup_entry_t *s_dup;
static size_t s_dup_count;
static size_t s_dup_next;
static int64_t s_dup_refresh_at;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

esp_err_t esp_bt_controller_mem_release(esp_bt_mode_t mode)
{
    if (s_status != ESP_BT_CONTROLLER_STATUS_IDLE) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!(mode & s_available)) {
        ESP_LOGW(TAG, "%s already released, mode %d", "esp_bt_controller_rom_mem_release", mode);
        return ESP_OK;
    }
    s_available &= (uint8_t)~mode;
    return ESP_OK;
}

esp_err_t esp_bt_mem_release(esp_bt_mode_t mode)
{
    return esp_bt_controller_mem_release(mode); /* the host stack's memory is not modelled either */
}

static bool conn_limits_ok(const esp_bt_controller_config_t *cfg)
{
    if ((cfg->mode & ESP_BT_MODE_BLE) && (cfg->ble_max_conn <= 0 ||
                                          cfg->ble_max_conn > BTDM_CONTROLLER_BLE_MAX_CONN_LIMIT)) {
        return false;
    }
    if ((cfg->mode & ESP_BT_MODE_CLASSIC_BT) && (cfg->bt_max_acl_conn <= 0 ||
                                                 cfg->bt_max_acl_conn > BTDM_CONTROLLER_BR_EDR_MAX_ACL_CONN_LIMIT ||
                                                 cfg->bt_max_sync_conn > BTDM_CONTROLLER_BR_EDR_MAX_SYNC_CONN_LIMIT)) {
        return false;
    }
    return true;
}

esp_err_t esp_bt_controller_init(esp_bt_controller_config_t *cfg)
{
    if (s_available == ESP_BT_MODE_IDLE) {
        return ESP_ERR_INVALID_STATE; /* all the controller's memory was released */
    }
    if (s_status != ESP_BT_CONTROLLER_STATUS_IDLE) {
        return ESP_ERR_INVALID_STATE;
    }
    if (cfg == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (cfg->controller_task_prio != ESP_TASK_BT_CONTROLLER_PRIO ||
        cfg->controller_task_stack_size < ESP_TASK_BT_CONTROLLER_STACK) {
        return ESP_ERR_INVALID_ARG;
    }
    cfg->bt_max_sync_conn = UT_BR_EDR_CTRL_MAX_SYNC_CONN_EFF; /* bt.c overwrites these two */
    cfg->magic = ESP_BT_CONTROLLER_CONFIG_MAGIC_VAL;
    if (!conn_limits_ok(cfg)) {
        return ESP_ERR_INVALID_ARG;
    }
    if ((cfg->mode & s_available) != cfg->mode) {
        ESP_LOGE(TAG, "mode %d needs memory that esp_bt_controller_mem_release() gave away", cfg->mode);
        return ESP_ERR_NO_MEM;
    }
    size_t dup_size = cfg->normal_adv_size > 0 ? cfg->normal_adv_size : 1;
    dup_entry_t *dup = calloc(dup_size, sizeof(*dup));
    if (dup == NULL) {
        return ESP_ERR_NO_MEM;
    }
    uint8_t mac[6];
    esp_read_mac(mac, ESP_MAC_BT);
    ESP_LOGI(TAG, "Bluetooth MAC: %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    pthread_mutex_lock(&s_lock);
    free(s_dup);
    s_dup = dup;
    s_cfg = *cfg;
    pthread_mutex_unlock(&s_lock);
    s_status = ESP_BT_CONTROLLER_STATUS_INITED;
    return ESP_OK;
}

esp_err_t esp_bt_controller_deinit(void)
{
    if (s_status != ESP_BT_CONTROLLER_STATUS_INITED) {
        return ESP_ERR_INVALID_STATE;
    }
    s_status = ESP_BT_CONTROLLER_STATUS_IDLE;
    return ESP_OK;
}

/* ---------------------------------------------------------------- the radio */

static bool dup_seen(const host_ble_advertiser_t *dev)
{
    bool by_addr = s_cfg.scan_duplicate_type != 1; /* 0: address, 1: data, 2: both */
    bool by_data = s_cfg.scan_duplicate_type != 0;
    for (size_t i = 0; i < s_dup_count; i++) {
        const dup_entry_t *e = &s_dup[i];
        if ((!by_addr || memcmp(e->addr, dev->addr, 6) == 0) &&
            (!by_data || (e->adv_len == dev->adv_len && memcmp(e->adv, dev->adv, dev->adv_len) == 0))) {
            return true;
        }
    }
    return false;
}

static void dup_add(const host_ble_advertiser_t *dev)
{
    size_t size = s_cfg.normal_adv_size > 0 ? s_cfg.normal_adv_size : 1;
    dup_entry_t *e = &s_dup[s_dup_next]; /* full: the oldest entry goes, as the chip's filter refreshes */
    memcpy(e->addr, dev->addr, 6);
    e->adv_len = dev->adv_len;
    memcpy(e->adv, dev->adv, dev->adv_len);
    s_dup_next = (s_dup_next + 1) % size;
    if (s_dup_count < size) {
        s_dup_count++;
    }
}

static void dup_clear(int64_t now)
{
    s_dup_count = 0;
    s_dup_next = 0;
    s_dup_refresh_at = s_cfg.dup_list_refresh_period ? now + (int64_t)s_cfg.dup_list_refresh_period * 1000000000LL
                                                     : 0;
}

/* The first advertisement of dev at or after t. */
static int64_t next_advertisement(const host_ble_advertiser_t *dev, int64_t t)
{
    if (t <= dev->first_ns) {
        return dev->first_ns;
    }
    int64_t periods = (t - dev->first_ns + dev->interval_ns - 1) / dev->interval_ns;
    return dev->first_ns + periods * dev->interval_ns;
}

static void report(const host_ble_advertiser_t *dev)
{
    if (s_scan.white_list_only) {
        return; /* the white list is empty: the host port has no esp_ble_gap_update_whitelist() */
    }
    if (s_scan.filter_duplicates) {
        if (dup_seen(dev)) {
            return;
        }
        dup_add(dev);
    }
    host_ble_report_t r = {.scan_id = s_scan.id, .rssi = (int8_t)dev->rssi, .adv_len = dev->adv_len};
    memcpy(r.addr, dev->addr, 6);
    memcpy(r.adv, dev->adv, dev->adv_len);
    s_scan.on_report(&r);
}

/* Reports the advertisements due by now (heard since the scan began); returns when the next one is due
   (-1: none). Called with s_lock held and the scan on. */
static int64_t hear(int64_t now, int64_t scan_start)
{
    if (s_scan.filter_duplicates && s_dup_refresh_at != 0 && now >= s_dup_refresh_at) {
        dup_clear(now);
    }
    int64_t next = -1;
    for (size_t i = 0; i < host_ble_air_count(); i++) {
        host_ble_advertiser_t *dev = host_ble_air_device(i);
        int64_t from = dev->heard_until_ns > scan_start ? dev->heard_until_ns : scan_start;
        int64_t due = next_advertisement(dev, from);
        if (due <= now) {
            report(dev); /* one report even if the task slept through several: the others are lost */
            dev->heard_until_ns = now + 1;
            due = next_advertisement(dev, now + 1);
        }
        if (next < 0 || due < next) {
            next = due;
        }
    }
    return next;
}

static int poll_timeout_ms(int64_t next, int64_t now)
{
    if (next < 0) {
        return -1; /* nothing to hear until the air or the scan changes */
    }
    int64_t ms = (next - now + 999999) / 1000000;
    return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

static void radio_task(void *arg)
{
    (void)arg;
    int air = host_ble_air_open();
    uint32_t scan_id = 0;
    bool was_on = false;
    int64_t scan_start = 0;
    for (;;) {
        int64_t now = now_ns();
        int64_t next = -1;
        pthread_mutex_lock(&s_lock);
        if (s_scan.on && (!was_on || s_scan.id != scan_id)) {
            scan_id = s_scan.id; /* a new scan: advertisements from now on, a clear duplicate filter */
            scan_start = now;
            dup_clear(now);
        }
        was_on = s_scan.on;
        if (s_scan.on) {
            next = hear(now, scan_start);
        }
        pthread_mutex_unlock(&s_lock);
        /* Event driven: the air file's inotify descriptor, the scan's eventfd, and the next advertisement;
           a polled air (no inotify instance left) is read again every HOST_RECORD_POLL_MS. */
        struct pollfd fds[2] = {{.fd = air, .events = POLLIN}, {.fd = s_wake, .events = POLLIN}};
        int timeout_ms = poll_timeout_ms(next, now);
        if (host_ble_air_polled() && (timeout_ms < 0 || timeout_ms > HOST_RECORD_POLL_MS)) {
            timeout_ms = HOST_RECORD_POLL_MS;
        }
        int ready = poll(fds, 2, timeout_ms);
        if (host_ble_air_polled()) {
            host_ble_air_update();
        }
        if (ready > 0) {
            if (fds[0].revents & POLLIN) {
                host_ble_air_update();
            }
            uint64_t count;
            if ((fds[1].revents & POLLIN) && read(s_wake, &count, sizeof(count)) < 0) {
                ESP_LOGE(TAG, "radio wake-up lost");
            }
        }
    }
}

static void wake_radio(void)
{
    uint64_t one = 1;
    if (write(s_wake, &one, sizeof(one)) < 0) {
        ESP_LOGE(TAG, "cannot wake the radio");
    }
}

esp_err_t host_ble_scan_enable(uint32_t scan_id, bool filter_duplicates, bool white_list_only,
                               host_ble_report_cb_t on_report)
{
    if (s_status != ESP_BT_CONTROLLER_STATUS_ENABLED || !(s_cfg.mode & ESP_BT_MODE_BLE) || on_report == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    pthread_mutex_lock(&s_lock);
    s_scan.on = true;
    s_scan.id = scan_id;
    s_scan.filter_duplicates = filter_duplicates;
    s_scan.white_list_only = white_list_only;
    s_scan.on_report = on_report;
    pthread_mutex_unlock(&s_lock);
    wake_radio();
    return ESP_OK;
}

void host_ble_scan_disable(void)
{
    pthread_mutex_lock(&s_lock); /* waits for a report being made */
    bool was_on = s_scan.on;
    s_scan.on = false;
    pthread_mutex_unlock(&s_lock);
    if (was_on) {
        wake_radio();
    }
}

/* ---------------------------------------------------------------- enable / disable */

esp_err_t esp_bt_controller_enable(esp_bt_mode_t mode)
{
    if (s_status != ESP_BT_CONTROLLER_STATUS_INITED) {
        return ESP_ERR_INVALID_STATE;
    }
    if (mode != s_cfg.mode) { /* bt.c: "mode should be equal to the mode which set in esp_bt_controller_init()" */
        return ESP_ERR_INVALID_ARG;
    }
    if (s_radio == NULL) {
        s_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s_wake < 0 || xTaskCreate(radio_task, "btController", s_cfg.controller_task_stack_size, NULL,
                                      s_cfg.controller_task_prio, &s_radio) != pdPASS) {
            return ESP_ERR_INVALID_STATE; /* what bt.c returns when btdm_controller_enable() fails */
        }
    }
    s_status = ESP_BT_CONTROLLER_STATUS_ENABLED;
    return ESP_OK;
}

esp_err_t esp_bt_controller_disable(void)
{
    if (s_status != ESP_BT_CONTROLLER_STATUS_ENABLED) {
        return ESP_ERR_INVALID_STATE;
    }
    host_ble_scan_disable(); /* the radio stops; the radio task waits for the next enable */
    s_status = ESP_BT_CONTROLLER_STATUS_INITED;
    return ESP_OK;
}

esp_bt_controller_status_t esp_bt_controller_get_status(void)
{
    return s_status;
}
