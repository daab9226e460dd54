/*
 * port_check's Bluetooth commands: the host port's controller, Bluedroid and GAP BLE scanning driven
 * as a BLE scanner app drives them (tests_unit/test_host_port_ble.py), in the air the board describes
 * with HIL_BLE_AIR. Results are key=value lines; GAP events are printed from the BTC task as they come,
 * one line each:
 *
 *   ble_event=SCAN_PARAM_SET_COMPLETE|SCAN_START_COMPLETE|SCAN_STOP_COMPLETE status=<n>
 *   ble_event=SCAN_RESULT search_evt=INQ_RES bda=<aa:bb:..> rssi= dev_type= addr_type= evt_type= flag=
 *       num_resps= adv_data_len= scan_rsp_len= name=<complete local name, or -> name_legacy=<the same
 *       found by esp_ble_resolve_adv_data()> adv=<the advertising data, hex>
 *   ble_event=SCAN_RESULT search_evt=INQ_CMPL num_resps=<n>
 *
 *   bt_controller                  esp_bt_controller_mem_release(CLASSIC_BT), _init(DEFAULT), _enable(BLE)
 *   bt_bluedroid                   esp_bluedroid_init(), _enable(), esp_ble_gap_register_callback()
 *   bt_off                         esp_bluedroid_disable(), _deinit(), esp_bt_controller_disable(), _deinit()
 *   ble_params <interval> <window> <duplicate 0|1> <own_addr_type>
 *                                  esp_ble_gap_set_scan_params() of an active scan that accepts all
 *   ble_start <duration_s>         esp_ble_gap_start_scanning()
 *   ble_stop                       esp_ble_gap_stop_scanning()
 *   ble_scan <duration_s> <duplicate 0|1>
 *                                  the usual app: set_scan_params (80/48 units), and start_scanning from
 *                                  the callback's SCAN_PARAM_SET_COMPLETE (prints start_scanning= there)
 */
#include <stdio.h>
#include <string.h>
#include "esp_bt.h"
#include "esp_bt_defs.h"
#include "esp_bt_main.h"
#include "esp_err.h"
#include "esp_gap_ble_api.h"
#include "ble_check.h"

static uint32_t s_scan_duration;
static bool s_start_on_params; /* ble_scan: start from the SCAN_PARAM_SET_COMPLETE callback */

static void report(const char *what, esp_err_t err)
{
    printf("%s=%s\n", what, esp_err_to_name(err));
}

/* The AD structure's text, found by esp_ble_resolve_adv_data_by_type(), or "-". */
static void ad_text(char *out, size_t size, uint8_t *data, uint8_t len)
{
    if (data == NULL || len == 0) {
        snprintf(out, size, "-");
    } else {
        snprintf(out, size, "%.*s", (int)len, (const char *)data);
    }
}

static void print_result(struct ble_scan_result_evt_param *rst)
{
    if (rst->search_evt == ESP_GAP_SEARCH_INQ_CMPL_EVT) {
        printf("ble_event=SCAN_RESULT search_evt=INQ_CMPL num_resps=%d\n", rst->num_resps);
        return;
    }
    if (rst->search_evt != ESP_GAP_SEARCH_INQ_RES_EVT) {
        printf("ble_event=SCAN_RESULT search_evt=%d\n", (int)rst->search_evt);
        return;
    }
    uint8_t len = 0;
    uint16_t total = (uint16_t)(rst->adv_data_len + rst->scan_rsp_len);
    char name[ESP_BLE_ADV_DATA_LEN_MAX + 1], legacy[ESP_BLE_ADV_DATA_LEN_MAX + 1];
    uint8_t *found = esp_ble_resolve_adv_data_by_type(rst->ble_adv, total, ESP_BLE_AD_TYPE_NAME_CMPL, &len);
    ad_text(name, sizeof(name), found, len);
    found = esp_ble_resolve_adv_data(rst->ble_adv, ESP_BLE_AD_TYPE_NAME_CMPL, &len);
    ad_text(legacy, sizeof(legacy), found, len);
    char hex[2 * (ESP_BLE_ADV_DATA_LEN_MAX + ESP_BLE_SCAN_RSP_DATA_LEN_MAX) + 2] = "-";
    for (int i = 0; i < total; i++) {
        sprintf(hex + 2 * i, "%02x", rst->ble_adv[i]);
    }
    /* One printf per event: lines from the BTC task never interleave with the main task's. */
    printf("ble_event=SCAN_RESULT search_evt=INQ_RES bda=" ESP_BD_ADDR_STR " rssi=%d dev_type=%d addr_type=%d "
           "evt_type=%d flag=%d num_resps=%d adv_data_len=%d scan_rsp_len=%d name=%s name_legacy=%s adv=%s\n",
           ESP_BD_ADDR_HEX(rst->bda), rst->rssi, (int)rst->dev_type, (int)rst->ble_addr_type,
           (int)rst->ble_evt_type, rst->flag, rst->num_resps, rst->adv_data_len, rst->scan_rsp_len, name, legacy,
           hex);
}

static void gap_callback(esp_gap_ble_cb_event_t event, esp_ble_gap_cb_param_t *param)
{
    switch (event) {
    case ESP_GAP_BLE_SCAN_PARAM_SET_COMPLETE_EVT:
        printf("ble_event=SCAN_PARAM_SET_COMPLETE status=%d\n", (int)param->scan_param_cmpl.status);
        if (s_start_on_params) {
            s_start_on_params = false;
            report("start_scanning", esp_ble_gap_start_scanning(s_scan_duration));
        }
        break;
    case ESP_GAP_BLE_SCAN_START_COMPLETE_EVT:
        printf("ble_event=SCAN_START_COMPLETE status=%d\n", (int)param->scan_start_cmpl.status);
        break;
    case ESP_GAP_BLE_SCAN_RESULT_EVT:
        print_result(&param->scan_rst);
        break;
    case ESP_GAP_BLE_SCAN_STOP_COMPLETE_EVT:
        printf("ble_event=SCAN_STOP_COMPLETE status=%d\n", (int)param->scan_stop_cmpl.status);
        break;
    default:
        printf("ble_event=%d\n", (int)event);
        break;
    }
}

static void controller_up(void)
{
    report("mem_release", esp_bt_controller_mem_release(ESP_BT_MODE_CLASSIC_BT));
    esp_bt_controller_config_t bt_cfg = BT_CONTROLLER_INIT_CONFIG_DEFAULT();
    report("controller_init", esp_bt_controller_init(&bt_cfg));
    report("controller_enable", esp_bt_controller_enable(ESP_BT_MODE_BLE));
    printf("controller_status=%d\n", (int)esp_bt_controller_get_status());
}

static void bluedroid_up(void)
{
    report("bluedroid_init", esp_bluedroid_init());
    report("bluedroid_enable", esp_bluedroid_enable());
    report("register_callback", esp_ble_gap_register_callback(gap_callback));
    printf("bluedroid_status=%d\n", (int)esp_bluedroid_get_status());
}

static void all_off(void)
{
    report("bluedroid_disable", esp_bluedroid_disable());
    report("bluedroid_deinit", esp_bluedroid_deinit());
    report("controller_disable", esp_bt_controller_disable());
    report("controller_deinit", esp_bt_controller_deinit());
}

static esp_err_t set_params(int interval, int window, int duplicate, int own_addr_type)
{
    esp_ble_scan_params_t params = {
        .scan_type = BLE_SCAN_TYPE_ACTIVE,
        .own_addr_type = (esp_ble_addr_type_t)own_addr_type,
        .scan_filter_policy = BLE_SCAN_FILTER_ALLOW_ALL,
        .scan_interval = (uint16_t)interval,
        .scan_window = (uint16_t)window,
        .scan_duplicate = duplicate ? BLE_SCAN_DUPLICATE_ENABLE : BLE_SCAN_DUPLICATE_DISABLE,
    };
    return esp_ble_gap_set_scan_params(&params);
}

bool ble_check_command(const char *line)
{
    int a = 0, b = 0, c = 0, d = 0;
    if (strncmp(line, "bt_controller", 13) == 0) {
        controller_up();
    } else if (strncmp(line, "bt_bluedroid", 12) == 0) {
        bluedroid_up();
    } else if (strncmp(line, "bt_off", 6) == 0) {
        all_off();
    } else if (sscanf(line, "ble_params %d %d %d %d", &a, &b, &c, &d) == 4) {
        report("set_scan_params", set_params(a, b, c, d));
    } else if (sscanf(line, "ble_start %d", &a) == 1) {
        report("start_scanning", esp_ble_gap_start_scanning((uint32_t)a));
    } else if (strncmp(line, "ble_stop", 8) == 0) {
        report("stop_scanning", esp_ble_gap_stop_scanning());
    } else if (sscanf(line, "ble_scan %d %d", &a, &b) == 2) {
        s_scan_duration = (uint32_t)a;
        s_start_on_params = true;
        esp_err_t err = set_params(0x50, 0x30, b, BLE_ADDR_TYPE_PUBLIC);
        if (err != ESP_OK) {
            s_start_on_params = false;
        }
        report("set_scan_params", err);
    } else {
        return false;
    }
    return true;
}
