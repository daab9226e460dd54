/*
 * Host port of Bluedroid's GAP BLE API for scanning (components/bt/host/bluedroid/api/esp_gap_ble_api.c,
 * v5.5.4, and what carries it out in btc_gap_ble.c, bta_dm_act.c and btm_ble_gap.c), with the BTC task
 * that runs the app's GAP callback.
 *
 * As on the chip, each call checks that Bluedroid is enabled (ESP_ERR_INVALID_STATE if not), queues a
 * message for the BTC task and returns; the BTC task carries it out and calls the callback, one event at
 * a time, in order:
 *   esp_ble_gap_set_scan_params -> SCAN_PARAM_SET_COMPLETE, status 0; 5 (BTM_ILLEGAL_VALUE) for a value
 *       out of range, 1 (BTA_FAILURE) for a window longer than the interval, an own random address never
 *       set (the port has no esp_ble_gap_set_rand_addr()), or during a scan (the controller's Command
 *       Disallowed; the parameters are kept for the next scan, as Bluedroid keeps them).
 *   esp_ble_gap_start_scanning -> SCAN_START_COMPLETE (status 0; 1 if a scan runs), one SCAN_RESULT
 *       INQ_RES per advertising report, and SCAN_RESULT INQ_CMPL once the duration is over (0: until
 *       stopped); reports still queued then are dropped.
 *   esp_ble_gap_stop_scanning -> SCAN_STOP_COMPLETE (status 0; 1 if no scan runs): no INQ_CMPL, and no
 *       report after it.
 * A scan without esp_ble_gap_set_scan_params() has Bluedroid's defaults: active, 11.25 ms, every report.
 *
 * Known differences from the chip:
 * - num_resps of INQ_CMPL counts the devices reported in this scan; the chip's counts new entries of
 *   Bluedroid's inquiry database, which BLE scans do not clear.
 * - Reports beyond 200 waiting for the BTC task are dropped without a word, as Bluedroid drops them
 *   (BTC_GAP_BLE_ADV_RPT_QUEUE_LEN_MAX); the controller's flow control and its
 *   ESP_GAP_SEARCH_INQ_DISCARD_NUM_EVT are not modelled.
 * - The BTC task is a thread: CONFIG_BT_BTC_TASK_STACK_SIZE does not limit the callback's stack.
 * What the radio hears, and how that differs, is in esp_bt.c's header.
 */
#include <string.h>
#include <time.h>
#include "esp_bt_main.h"
#include "esp_gap_ble_api.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "host_ble.h"
#include "sdkconfig.h"

static const char *TAG = "BT_BTM"; /* the log lines mirrored here are btm_ble_gap.c's */

#define BTA_SUCCESS 0                           /* bta_api.h */
#define BTA_FAILURE 1
#define BTM_ILLEGAL_VALUE 5                     /* btm_api.h tBTM_STATUS */
#define BTM_BLE_SCAN_INT_MIN 0x0004             /* btm_ble_api.h */
#define BTM_BLE_SCAN_INT_MAX 0x4000
#define BTM_BLE_GAP_DISC_SCAN_INT 18            /* btm_ble_int.h: 11.25 ms, the scan without parameters */
#define BTC_GAP_BLE_ADV_RPT_QUEUE_LEN_MAX 200   /* btc_gap_ble.c */
#define BTC_API_QUEUE_LEN 32
#define INQ_DB_SIZE 256                         /* devices told apart for num_resps */

#ifdef CONFIG_BT_BTC_TASK_STACK_SIZE
#define BTC_TASK_STACK_SIZE CONFIG_BT_BTC_TASK_STACK_SIZE
#else
#define BTC_TASK_STACK_SIZE 3072
#endif

typedef enum {
    BTC_SET_SCAN_PARAMS,
    BTC_START_SCAN,
    BTC_STOP_SCAN,
    BTC_ADV_REPORT,
    BTC_STOP_SILENTLY,  /* esp_bluedroid_disable() */
} btc_act_t;

typedef struct {
    btc_act_t act;
    union {
        esp_ble_scan_params_t scan_params;
        uint32_t duration;
        host_ble_report_t report;
    };
} btc_msg_t;

static QueueHandle_t s_btc_queue;
static QueueHandle_t s_stopped; /* one byte when BTC_STOP_SILENTLY is done */
static TaskHandle_t s_btc_task;
static esp_gap_ble_cb_t s_callback;
static int s_pending_reports; /* reports in s_btc_queue (__atomic) */

/* The BTC task's own: Bluedroid's scan state. */
static struct {
    esp_ble_scan_params_t params;
    bool scanning;
    uint32_t scan_id;
    int64_t deadline_ns; /* 0: until stopped */
    uint8_t seen[INQ_DB_SIZE][ESP_BD_ADDR_LEN];
    int num_resps;
} s_gap = {
    .params = {
        .scan_type = BLE_SCAN_TYPE_ACTIVE,
        .own_addr_type = BLE_ADDR_TYPE_PUBLIC,
        .scan_filter_policy = BLE_SCAN_FILTER_ALLOW_ALL,
        .scan_interval = BTM_BLE_GAP_DISC_SCAN_INT,
        .scan_window = BTM_BLE_GAP_DISC_SCAN_INT,
        .scan_duplicate = BLE_SCAN_DUPLICATE_DISABLE,
    },
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---------------------------------------------------------------- the BTC task */

static void callback(esp_gap_ble_cb_event_t event, esp_ble_gap_cb_param_t *param)
{
    esp_gap_ble_cb_t cb = __atomic_load_n(&s_callback, __ATOMIC_ACQUIRE);
    if (cb != NULL) {
        cb(event, param);
    }
}

static void status_event(esp_gap_ble_cb_event_t event, uint8_t status)
{
    esp_ble_gap_cb_param_t param;
    memset(&param, 0, sizeof(param));
    param.scan_param_cmpl.status = (esp_bt_status_t)status; /* the same first member in all four */
    callback(event, &param);
}

static bool in_range(unsigned int value, unsigned int min, unsigned int max)
{
    return value >= min && value <= max;
}

/* btc_ble_set_scan_params(), then BTM_BleSetScanFilterParams() and the controller's answer. */
static uint8_t set_scan_params(const esp_ble_scan_params_t *p)
{
    /* BLE_SCAN_DUPLICATE_MAX - 1 is BLE_SCAN_DUPLICATE_ENABLE in Bluedroid built for the ESP32 (no BLE 5.0) */
    if (!in_range(p->scan_interval, BTM_BLE_SCAN_INT_MIN, BTM_BLE_SCAN_INT_MAX) ||
        !in_range(p->scan_window, BTM_BLE_SCAN_INT_MIN, BTM_BLE_SCAN_INT_MAX) ||
        !in_range((unsigned int)p->own_addr_type, BLE_ADDR_TYPE_PUBLIC, BLE_ADDR_TYPE_RPA_RANDOM) ||
        !in_range((unsigned int)p->scan_filter_policy, BLE_SCAN_FILTER_ALLOW_ALL,
                  BLE_SCAN_FILTER_ALLOW_WLIST_RPA_DIR) ||
        !in_range((unsigned int)p->scan_duplicate, BLE_SCAN_DUPLICATE_DISABLE, BLE_SCAN_DUPLICATE_ENABLE) ||
        (p->scan_type != BLE_SCAN_TYPE_ACTIVE && p->scan_type != BLE_SCAN_TYPE_PASSIVE)) {
        return BTM_ILLEGAL_VALUE;
    }
    if (p->own_addr_type == BLE_ADDR_TYPE_RANDOM) {
        ESP_LOGE(TAG, "No random address yet, please set random address using API \"esp_ble_gap_set_rand_addr\" "
                 "and retry");
        return BTA_FAILURE;
    }
    if (p->own_addr_type == BLE_ADDR_TYPE_RPA_RANDOM) {
        ESP_LOGE(TAG, "No RPA and no random address yet, please set RPA or random address and try");
        return BTA_FAILURE;
    }
    if (p->scan_window > p->scan_interval) {
        ESP_LOGE(TAG, "Illegal params: scan_interval = %d scan_window = %d", p->scan_interval, p->scan_window);
        return BTA_FAILURE;
    }
    s_gap.params = *p;
    return s_gap.scanning ? BTA_FAILURE : BTA_SUCCESS;
}

static void on_report(const host_ble_report_t *report)
{
    /* The radio task: queue it or drop it, never wait for the BTC task. */
    if (__atomic_load_n(&s_pending_reports, __ATOMIC_RELAXED) >= BTC_GAP_BLE_ADV_RPT_QUEUE_LEN_MAX) {
        return;
    }
    btc_msg_t msg = {.act = BTC_ADV_REPORT, .report = *report};
    __atomic_add_fetch(&s_pending_reports, 1, __ATOMIC_RELAXED);
    if (xQueueSend(s_btc_queue, &msg, 0) != pdPASS) {
        __atomic_sub_fetch(&s_pending_reports, 1, __ATOMIC_RELAXED);
    }
}

static uint8_t start_scan(uint32_t duration)
{
    if (s_gap.scanning) {
        ESP_LOGE(TAG, "BTM_BleScan scan already active");
        return BTA_FAILURE;
    }
    const esp_ble_scan_params_t *p = &s_gap.params;
    bool white_list_only = p->scan_filter_policy == BLE_SCAN_FILTER_ALLOW_ONLY_WLST ||
                           p->scan_filter_policy == BLE_SCAN_FILTER_ALLOW_WLIST_RPA_DIR;
    if (host_ble_scan_enable(s_gap.scan_id + 1, p->scan_duplicate == BLE_SCAN_DUPLICATE_ENABLE, white_list_only,
                             on_report) != ESP_OK) {
        return BTA_FAILURE; /* no BLE controller enabled: BTM_BleScan() returns BTM_ILLEGAL_VALUE */
    }
    s_gap.scan_id++;
    s_gap.scanning = true;
    s_gap.deadline_ns = duration ? now_ns() + (int64_t)duration * 1000000000LL : 0;
    s_gap.num_resps = 0;
    return BTA_SUCCESS;
}

static uint8_t stop_scan(void)
{
    if (!s_gap.scanning) {
        ESP_LOGE(TAG, "BTM_BleScan scan not active");
        return BTA_FAILURE;
    }
    host_ble_scan_disable();
    s_gap.scanning = false;
    return BTA_SUCCESS;
}

static void count_device(const uint8_t addr[ESP_BD_ADDR_LEN])
{
    int known = s_gap.num_resps < INQ_DB_SIZE ? s_gap.num_resps : INQ_DB_SIZE;
    for (int i = 0; i < known; i++) {
        if (memcmp(s_gap.seen[i], addr, ESP_BD_ADDR_LEN) == 0) {
            return;
        }
    }
    if (s_gap.num_resps < INQ_DB_SIZE) {
        memcpy(s_gap.seen[s_gap.num_resps], addr, ESP_BD_ADDR_LEN);
    }
    s_gap.num_resps++;
}

/* btc_process_adv_rpt_pkt(): the report as ESP_GAP_BLE_SCAN_RESULT_EVT / ESP_GAP_SEARCH_INQ_RES_EVT. */
static void adv_report(const host_ble_report_t *r)
{
    if (!s_gap.scanning || r->scan_id != s_gap.scan_id) {
        return; /* made before the scan it belongs to was stopped */
    }
    esp_ble_gap_cb_param_t param;
    memset(&param, 0, sizeof(param));
    struct ble_scan_result_evt_param *rst = &param.scan_rst;
    rst->search_evt = ESP_GAP_SEARCH_INQ_RES_EVT;
    memcpy(rst->bda, r->addr, ESP_BD_ADDR_LEN);
    rst->dev_type = ESP_BT_DEVICE_TYPE_BLE;
    rst->ble_addr_type = BLE_ADDR_TYPE_PUBLIC;
    rst->ble_evt_type = ESP_BLE_EVT_NON_CONN_ADV;
    rst->rssi = r->rssi;
    memcpy(rst->ble_adv, r->adv, r->adv_len);
    uint8_t flag_len = 0;
    const uint8_t *flag = esp_ble_resolve_adv_data_by_type(rst->ble_adv, r->adv_len, ESP_BLE_AD_TYPE_FLAG, &flag_len);
    rst->flag = flag != NULL && flag_len > 0 ? flag[0] : 0;
    rst->num_resps = 1;
    rst->adv_data_len = r->adv_len;
    rst->scan_rsp_len = 0;
    count_device(r->addr);
    callback(ESP_GAP_BLE_SCAN_RESULT_EVT, &param);
}

/* The scan's duration is over: btm_ble_stop_discover() from the scan timer, then INQ_CMPL. */
static void scan_timeout(void)
{
    host_ble_scan_disable();
    s_gap.scanning = false;
    esp_ble_gap_cb_param_t param;
    memset(&param, 0, sizeof(param));
    param.scan_rst.search_evt = ESP_GAP_SEARCH_INQ_CMPL_EVT;
    param.scan_rst.num_resps = s_gap.num_resps;
    callback(ESP_GAP_BLE_SCAN_RESULT_EVT, &param);
}

static void handle(const btc_msg_t *msg)
{
    switch (msg->act) {
    case BTC_SET_SCAN_PARAMS:
        status_event(ESP_GAP_BLE_SCAN_PARAM_SET_COMPLETE_EVT, set_scan_params(&msg->scan_params));
        break;
    case BTC_START_SCAN:
        status_event(ESP_GAP_BLE_SCAN_START_COMPLETE_EVT, start_scan(msg->duration));
        break;
    case BTC_STOP_SCAN:
        status_event(ESP_GAP_BLE_SCAN_STOP_COMPLETE_EVT, stop_scan());
        break;
    case BTC_ADV_REPORT:
        __atomic_sub_fetch(&s_pending_reports, 1, __ATOMIC_RELAXED);
        adv_report(&msg->report);
        break;
    case BTC_STOP_SILENTLY: {
        if (s_gap.scanning) {
            host_ble_scan_disable();
            s_gap.scanning = false;
        }
        uint8_t done = 1;
        xQueueSend(s_stopped, &done, portMAX_DELAY);
        break;
    }
    }
}

static void btc_task(void *arg)
{
    (void)arg;
    for (;;) {
        TickType_t wait = portMAX_DELAY;
        if (s_gap.scanning && s_gap.deadline_ns != 0) {
            int64_t left = s_gap.deadline_ns - now_ns();
            if (left <= 0) {
                scan_timeout();
                continue;
            }
            wait = pdMS_TO_TICKS((left + 999999) / 1000000); /* woken by a message or the scan's end */
        }
        btc_msg_t msg;
        if (xQueueReceive(s_btc_queue, &msg, wait) == pdPASS) {
            handle(&msg);
        }
    }
}

esp_err_t host_btc_start(void)
{
    if (s_btc_task != NULL) {
        return ESP_OK;
    }
    s_btc_queue = xQueueCreate(BTC_GAP_BLE_ADV_RPT_QUEUE_LEN_MAX + BTC_API_QUEUE_LEN, sizeof(btc_msg_t));
    s_stopped = xQueueCreate(1, 1);
    if (s_btc_queue == NULL || s_stopped == NULL ||
        /* 19: btc_task.c's BTC_TASK_PRIO (25 - 6); the port's threads ignore priorities */
        xTaskCreate(btc_task, "BTC_TASK", BTC_TASK_STACK_SIZE, NULL, 19, &s_btc_task) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    return ESP_OK;
}

/* btc_transfer_context(): ESP_FAIL when the BTC task's queue does not take the message. */
static esp_err_t btc_post(const btc_msg_t *msg)
{
    /* From a callback (the BTC task itself) a full queue would never drain: do not wait there. */
    TickType_t wait = xTaskGetCurrentTaskHandle() == s_btc_task ? 0 : portMAX_DELAY;
    return xQueueSend(s_btc_queue, msg, wait) == pdPASS ? ESP_OK : ESP_FAIL;
}

void host_gap_ble_stop_silently(void)
{
    if (s_btc_task == NULL) {
        return;
    }
    btc_msg_t msg = {.act = BTC_STOP_SILENTLY};
    if (xTaskGetCurrentTaskHandle() == s_btc_task) {
        handle(&msg);
    } else if (btc_post(&msg) != ESP_OK) {
        return;
    }
    uint8_t done;
    xQueueReceive(s_stopped, &done, portMAX_DELAY);
}

/* ---------------------------------------------------------------- the API */

esp_err_t esp_ble_gap_register_callback(esp_gap_ble_cb_t callback)
{
    ESP_BLUEDROID_STATUS_CHECK(ESP_BLUEDROID_STATUS_ENABLED);
    __atomic_store_n(&s_callback, callback, __ATOMIC_RELEASE);
    return ESP_OK;
}

esp_gap_ble_cb_t esp_ble_gap_get_callback(void)
{
    return __atomic_load_n(&s_callback, __ATOMIC_ACQUIRE);
}

esp_err_t esp_ble_gap_set_scan_params(esp_ble_scan_params_t *scan_params)
{
    ESP_BLUEDROID_STATUS_CHECK(ESP_BLUEDROID_STATUS_ENABLED);
    if (scan_params == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    btc_msg_t msg = {.act = BTC_SET_SCAN_PARAMS, .scan_params = *scan_params};
    return btc_post(&msg);
}

esp_err_t esp_ble_gap_start_scanning(uint32_t duration)
{
    ESP_BLUEDROID_STATUS_CHECK(ESP_BLUEDROID_STATUS_ENABLED);
    btc_msg_t msg = {.act = BTC_START_SCAN, .duration = duration};
    return btc_post(&msg);
}

esp_err_t esp_ble_gap_stop_scanning(void)
{
    ESP_BLUEDROID_STATUS_CHECK(ESP_BLUEDROID_STATUS_ENABLED);
    btc_msg_t msg = {.act = BTC_STOP_SCAN};
    return btc_post(&msg);
}

/* BTM_CheckAdvData(), as esp_ble_resolve_adv_data_by_type() calls it. */
static uint8_t *check_adv_data(uint8_t *p_adv, uint16_t adv_data_len, uint8_t type, uint8_t *p_length)
{
    uint8_t *p = p_adv;
    uint8_t length = *p++;
    while (length && (p - p_adv < adv_data_len)) {
        uint8_t adv_type = *p++;
        if (adv_type == type) {
            if ((p + length - 1) > (p_adv + adv_data_len)) {
                *p_length = 0; /* avoid memory overflow */
                return NULL;
            }
            *p_length = length - 1; /* length doesn't include itself, minus the length of type */
            return p;
        }
        p += length - 1; /* skip the length of data */
        if (p >= p_adv + adv_data_len) {
            break; /* incorrect format */
        }
        length = *p++;
    }
    *p_length = 0;
    return NULL;
}

uint8_t *esp_ble_resolve_adv_data_by_type(uint8_t *adv_data, uint16_t adv_data_len, esp_ble_adv_data_type type,
                                          uint8_t *length)
{
    if (length == NULL) {
        return NULL;
    }
    if (adv_data_len == 0) {
        *length = 0;
        return NULL;
    }
    if (adv_data == NULL) {
        ESP_LOGE(TAG, "Invalid advertising data.");
        *length = 0;
        return NULL;
    }
    return check_adv_data(adv_data, adv_data_len, (uint8_t)type, length);
}

uint8_t *esp_ble_resolve_adv_data(uint8_t *adv_data, uint8_t type, uint8_t *length)
{
    return esp_ble_resolve_adv_data_by_type(adv_data, ESP_BLE_ADV_DATA_LEN_MAX + ESP_BLE_SCAN_RSP_DATA_LEN_MAX,
                                            (esp_ble_adv_data_type)type, length);
}
