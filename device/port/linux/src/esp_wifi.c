/*
 * Wi-Fi station and netif for the virtual board, against the board's access point (HIL_WIFI_AP,
 * host_wifi_ap.c): the chip's events in the chip's order, through the default event loop, and the
 * network gate (host_net_gate.c) set as lwIP would leave the app's sockets.
 *
 * As on the chip, esp_wifi_connect() only asks the Wi-Fi driver's task to associate and returns;
 * that task posts the events. Apps call esp_wifi_connect() from their STA_START or STA_DISCONNECTED
 * handler, that is from the event loop's own task: posting there, with the loop's queue full (an HTTP
 * download posts an event per chunk), would block that task on its own queue for ever.
 *
 * The driver task follows the AP's file with inotify (or reads it every 200 ms when the user's inotify
 * instances are used up, as by a fleet of over a hundred boards) and its own deadlines, as the chip's timers:
 *   esp_wifi_start():        the station's netif has no address yet: connects fail with EHOSTUNREACH
 *                            (gate DOWN) until the first association.
 *   connect, AP on the air:  STA_CONNECTED, then IP_EVENT_STA_GOT_IP (127.0.0.1; ip_changed unless the
 *                            station gets its old address back before the IP-lost timer fired).
 *   connect, AP off the air: an all-channel scan (13 channels x 120 ms, the default active dwell), then
 *                            STA_DISCONNECTED with WIFI_REASON_NO_AP_FOUND; an AP back during the scan
 *                            is found and joined at once.
 *   AP gone while connected: frames are lost (gate STALLED) but nothing is posted until the beacon
 *                            timeout, esp_wifi_set_inactive_time() (6 s by default) after the last
 *                            beacon: WIFI_EVENT_STA_BEACON_TIMEOUT, then the 5 probe requests go
 *                            unanswered for 1 s, then STA_DISCONNECTED with WIFI_REASON_BEACON_TIMEOUT.
 *                            wifi_default.c's handler then runs esp_netif_action_disconnected(), whose
 *                            esp_netif_down() zeroes the address: lwIP aborts every TCP connection and
 *                            new connects fail (gate DOWN). The IP-lost timer starts
 *                            (CONFIG_ESP_NETIF_IP_LOST_TIMER_INTERVAL): IP_EVENT_STA_LOST_IP when it
 *                            fires before the next GOT_IP. An AP back before the beacon timeout: no
 *                            event at all, the stalled connections carry on (gate UP).
 *   esp_wifi_sta_get_ap_info(): the AP's SSID, BSSID, channel and RSSI while associated (also while the
 *                            beacon timeout runs), ESP_ERR_WIFI_NOT_CONNECT otherwise.
 *
 * Known differences from the chip: association and DHCP take no time (the chip needs tens to hundreds
 * of ms); no authentication (any password joins), no roaming, no power save; the wifi library's own log
 * lines are not printed except the two around the beacon timeout, which say what the chip's say in the
 * port's log format; the port prints lines of its own when the virtual AP comes in range, goes off the
 * air and is back (the board's AP file is followed asynchronously: a test waits for them); the RSSI is
 * what the board set, without fading; STA_DISCONNECTED after NO_AP_FOUND carries rssi 0 and a zero BSSID.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "host_net_gate.h"
#include "host_record_file.h"
#include "host_wifi_ap.h"
#include "sdkconfig.h"

static const char *TAG = "wifi";

ESP_EVENT_DEFINE_BASE(WIFI_EVENT);
ESP_EVENT_DEFINE_BASE(IP_EVENT);

#define SCAN_ALL_CHANNELS_MS (13 * 120) /* channels 1-13 at the default 120 ms active dwell */
#define AP_PROBE_MS 1000                /* the 5 probe requests after a beacon timeout */
#define DEFAULT_INACTIVE_S 6            /* esp_wifi_set_inactive_time()'s station default */
#define MIN_INACTIVE_S 3
#define AP_CHANNEL 6
static const uint8_t AP_BSSID[6] = {0x02, 0x48, 0x49, 0x4c, 0x41, 0x50}; /* locally administered "HILAP" */

struct esp_netif_obj {
    int unused;
};

typedef enum {
    STA_IDLE,        /* started, not associated, not connecting */
    STA_SCANNING,    /* esp_wifi_connect() with the AP off the air: the scan ends at s_deadline_ns */
    STA_CONNECTED,   /* associated, with an IP */
    STA_BEACON_LOST, /* the AP is gone; the beacon timeout comes at s_deadline_ns */
    STA_PROBING,     /* beacon timeout posted; the disconnect comes at s_deadline_ns */
} sta_state_t;

static struct esp_netif_obj s_sta_netif;
static bool s_initialised;
static bool s_started;
static wifi_config_t s_config;
static int s_requests = -1; /* eventfd: one count per esp_wifi_connect() */
static int s_ap_file = -1;  /* readable when the board changes its AP */

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* what other tasks read: state, RSSI, inactive time */
static sta_state_t s_state = STA_IDLE;
static int s_rssi = HOST_WIFI_AP_DEFAULT_RSSI;
static uint16_t s_inactive_s = DEFAULT_INACTIVE_S;
static int64_t s_deadline_ns;   /* of the scan, beacon timeout or probes (0: none) */
static int64_t s_ip_lost_ns;    /* the IP-lost timer (0: not running) */
static bool s_ip_kept;          /* the netif's previous address is still remembered (ip_info_old) */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static sta_state_t set_state(sta_state_t state, int64_t deadline_ns)
{
    pthread_mutex_lock(&s_lock);
    sta_state_t before = s_state;
    s_state = state;
    s_deadline_ns = deadline_ns;
    pthread_mutex_unlock(&s_lock);
    return before;
}

static sta_state_t get_state(void)
{
    pthread_mutex_lock(&s_lock);
    sta_state_t state = s_state;
    pthread_mutex_unlock(&s_lock);
    return state;
}

esp_err_t esp_netif_init(void)
{
    return ESP_OK;
}

esp_netif_t *esp_netif_create_default_wifi_sta(void)
{
    return &s_sta_netif;
}

esp_err_t esp_wifi_init(const wifi_init_config_t *config)
{
    if (config == NULL || config->magic != WIFI_INIT_CONFIG_MAGIC) {
        return ESP_ERR_INVALID_ARG;
    }
    s_initialised = true;
    return ESP_OK;
}

esp_err_t esp_wifi_set_mode(wifi_mode_t mode)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    return mode == WIFI_MODE_STA ? ESP_OK : ESP_ERR_NOT_SUPPORTED;
}

esp_err_t esp_wifi_set_config(wifi_interface_t interface, wifi_config_t *conf)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (interface != WIFI_IF_STA || conf == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    s_config = *conf;
    return ESP_OK;
}

static uint8_t ssid_len(void)
{
    return (uint8_t)strnlen((const char *)s_config.sta.ssid, sizeof(s_config.sta.ssid));
}

/* The chip's association and DHCP, at once: CONNECTED, then GOT_IP, with the gate open before GOT_IP
   so that sockets the app opens on it work. */
static void associate(void)
{
    ESP_LOGI(TAG, "virtual access point \"%.32s\" in range", (const char *)s_config.sta.ssid);
    set_state(STA_CONNECTED, 0);
    wifi_event_sta_connected_t connected = {
        .ssid_len = ssid_len(), .channel = AP_CHANNEL, .authmode = WIFI_AUTH_WPA2_PSK, .aid = 1,
    };
    memcpy(connected.ssid, s_config.sta.ssid, sizeof(connected.ssid));
    memcpy(connected.bssid, AP_BSSID, sizeof(AP_BSSID));
    if (esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_CONNECTED, &connected, sizeof(connected), portMAX_DELAY) != ESP_OK) {
        return;
    }
    host_net_set_state(HOST_NET_UP);
    ip_event_got_ip_t got_ip = {.esp_netif = &s_sta_netif, .ip_changed = !s_ip_kept};
    got_ip.ip_info.ip.addr = 0x0100007F;      /* 127.0.0.1 in network byte order */
    got_ip.ip_info.netmask.addr = 0x000000FF; /* 255.0.0.0 */
    got_ip.ip_info.gw.addr = 0x0100007F;
    s_ip_kept = true;
    s_ip_lost_ns = 0;
    esp_event_post(IP_EVENT, IP_EVENT_STA_GOT_IP, &got_ip, sizeof(got_ip), portMAX_DELAY);
}

static void post_disconnected(uint8_t reason, bool with_ap)
{
    wifi_event_sta_disconnected_t event = {.ssid_len = ssid_len(), .reason = reason};
    memcpy(event.ssid, s_config.sta.ssid, sizeof(event.ssid));
    if (with_ap) {
        memcpy(event.bssid, AP_BSSID, sizeof(AP_BSSID));
        pthread_mutex_lock(&s_lock);
        event.rssi = (int8_t)s_rssi;
        pthread_mutex_unlock(&s_lock);
    }
    esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_DISCONNECTED, &event, sizeof(event), portMAX_DELAY);
}

static void on_connect_request(void)
{
    if (get_state() != STA_IDLE) {
        return; /* already associated or connecting: this request changes nothing */
    }
    if (host_wifi_ap_present()) {
        associate();
    } else {
        set_state(STA_SCANNING, now_ns() + (int64_t)SCAN_ALL_CHANNELS_MS * 1000000);
    }
}

static void on_ap_change(void)
{
    bool present = host_wifi_ap_present();
    pthread_mutex_lock(&s_lock);
    s_rssi = host_wifi_ap_rssi();
    sta_state_t state = s_state;
    uint16_t inactive_s = s_inactive_s;
    pthread_mutex_unlock(&s_lock);
    if (!present && state == STA_CONNECTED) {
        /* The beacon timeout counts from the last beacon heard, that is from when the AP went away. */
        int64_t gone = host_wifi_ap_changed_ns() > 0 ? host_wifi_ap_changed_ns() : now_ns();
        set_state(STA_BEACON_LOST, gone + (int64_t)inactive_s * 1000000000);
        host_net_set_state(HOST_NET_STALLED);
        /* The chip prints nothing here; this port's line (like its "in range") tells a test the driver
           has seen the AP go, since the AP's file is followed asynchronously. Printed once the stall is in
           force: a test that sends a command when it sees the line must find the link stalled. */
        ESP_LOGI(TAG, "virtual access point \"%.32s\" off the air", (const char *)s_config.sta.ssid);
    } else if (present && (state == STA_BEACON_LOST || state == STA_PROBING)) {
        set_state(STA_CONNECTED, 0); /* beacons again before the station gave up: nothing to tell */
        host_net_set_state(HOST_NET_UP);
        ESP_LOGI(TAG, "virtual access point \"%.32s\" on the air again", (const char *)s_config.sta.ssid);
    } else if (present && state == STA_SCANNING) {
        associate();
    }
}

static void on_deadline(int64_t now)
{
    pthread_mutex_lock(&s_lock);
    sta_state_t state = s_state;
    int64_t deadline = s_deadline_ns;
    pthread_mutex_unlock(&s_lock);
    if (deadline != 0 && now >= deadline) {
        if (state == STA_BEACON_LOST) {
            ESP_LOGI(TAG, "bcn_timeout,ap_probe_send_start");
            set_state(STA_PROBING, now + (int64_t)AP_PROBE_MS * 1000000);
            esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_BEACON_TIMEOUT, NULL, 0, portMAX_DELAY);
        } else if (state == STA_PROBING) {
            ESP_LOGI(TAG, "ap_probe_send over, reset wifi status to disassoc");
            set_state(STA_IDLE, 0);
            host_net_set_state(HOST_NET_DOWN); /* esp_netif_action_disconnected(), before the app's handler */
            if (CONFIG_ESP_NETIF_IP_LOST_TIMER_INTERVAL > 0) {
                s_ip_lost_ns = now + (int64_t)CONFIG_ESP_NETIF_IP_LOST_TIMER_INTERVAL * 1000000000;
            }
            post_disconnected(WIFI_REASON_BEACON_TIMEOUT, true);
        } else if (state == STA_SCANNING) {
            set_state(STA_IDLE, 0);
            post_disconnected(WIFI_REASON_NO_AP_FOUND, false);
        }
    }
    if (s_ip_lost_ns != 0 && now >= s_ip_lost_ns) {
        s_ip_lost_ns = 0;
        s_ip_kept = false; /* esp_netif_ip_lost_timer() clears ip_info_old: the next GOT_IP is a change */
        ip_event_got_ip_t lost = {.esp_netif = &s_sta_netif};
        esp_event_post(IP_EVENT, IP_EVENT_STA_LOST_IP, &lost, sizeof(lost), portMAX_DELAY);
    }
}

static int next_timeout_ms(int64_t now)
{
    pthread_mutex_lock(&s_lock);
    int64_t next = s_deadline_ns;
    pthread_mutex_unlock(&s_lock);
    if (s_ip_lost_ns != 0 && (next == 0 || s_ip_lost_ns < next)) {
        next = s_ip_lost_ns;
    }
    if (next == 0) {
        return -1;
    }
    return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

static void wifi_driver_task(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = s_requests, .events = POLLIN}, {.fd = s_ap_file, .events = POLLIN}};
        int timeout_ms = next_timeout_ms(now_ns());
        if (host_wifi_ap_polled() && (timeout_ms < 0 || timeout_ms > HOST_RECORD_POLL_MS)) {
            timeout_ms = HOST_RECORD_POLL_MS; /* no inotify: look at the AP's file again soon */
        }
        int rc = poll(fds, 2, timeout_ms);
        if (rc < 0 && errno != EINTR) {
            ESP_LOGE(TAG, "driver task: poll: %s", strerror(errno));
            vTaskDelay(pdMS_TO_TICKS(100));
            continue;
        }
        bool ap_changed = (fds[1].revents & POLLIN) != 0;
        if (ap_changed) {
            host_wifi_ap_update();
        } else if (host_wifi_ap_polled()) {
            ap_changed = host_wifi_ap_update();
        }
        if (ap_changed) {
            on_ap_change();
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            if (read(s_requests, &count, sizeof(count)) == sizeof(count)) {
                on_connect_request();
            }
        }
        on_deadline(now_ns());
    }
}

esp_err_t esp_wifi_start(void)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (!s_started && get_state() == STA_IDLE) {
        /* The station's netif has no address until it associates: lwIP finds no route (EHOSTUNREACH),
           whatever the host's network would allow. */
        host_net_set_state(HOST_NET_DOWN);
    }
    if (s_requests < 0) {
        s_requests = eventfd(0, EFD_CLOEXEC);
        if (s_requests < 0) {
            return ESP_ERR_NO_MEM;
        }
        s_ap_file = host_wifi_ap_open(); /* the AP as the board left it, then its changes */
        pthread_mutex_lock(&s_lock);
        s_rssi = host_wifi_ap_rssi();
        pthread_mutex_unlock(&s_lock);
        if (xTaskCreate(wifi_driver_task, "wifi", 4096, NULL, 23, NULL) != pdPASS) {
            return ESP_ERR_NO_MEM;
        }
    }
    s_started = true;
    return esp_event_post(WIFI_EVENT, WIFI_EVENT_STA_START, NULL, 0, portMAX_DELAY);
}

esp_err_t esp_wifi_connect(void)
{
    if (!s_started) {
        return ESP_ERR_WIFI_NOT_STARTED;
    }
    uint64_t one = 1;
    if (write(s_requests, &one, sizeof(one)) != sizeof(one)) {
        return ESP_ERR_WIFI_CONN;
    }
    return ESP_OK;
}

esp_err_t esp_wifi_sta_get_ap_info(wifi_ap_record_t *ap_info)
{
    if (ap_info == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s_lock);
    sta_state_t state = s_state;
    int rssi = s_rssi;
    pthread_mutex_unlock(&s_lock);
    if (state != STA_CONNECTED && state != STA_BEACON_LOST && state != STA_PROBING) {
        return ESP_ERR_WIFI_NOT_CONNECT;
    }
    memset(ap_info, 0, sizeof(*ap_info));
    memcpy(ap_info->ssid, s_config.sta.ssid, sizeof(s_config.sta.ssid));
    memcpy(ap_info->bssid, AP_BSSID, sizeof(AP_BSSID));
    ap_info->primary = AP_CHANNEL;
    ap_info->rssi = (int8_t)rssi;
    ap_info->authmode = WIFI_AUTH_WPA2_PSK;
    return ESP_OK;
}

esp_err_t esp_wifi_set_inactive_time(wifi_interface_t ifx, uint16_t sec)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (!s_started) {
        return ESP_ERR_WIFI_NOT_STARTED;
    }
    if (ifx != WIFI_IF_STA || sec < MIN_INACTIVE_S) {
        return ESP_ERR_INVALID_ARG; /* the port has no soft-AP */
    }
    pthread_mutex_lock(&s_lock);
    s_inactive_s = sec;
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_wifi_get_inactive_time(wifi_interface_t ifx, uint16_t *sec)
{
    if (!s_initialised) {
        return ESP_ERR_WIFI_NOT_INIT;
    }
    if (!s_started) {
        return ESP_ERR_WIFI_NOT_STARTED;
    }
    if (ifx != WIFI_IF_STA || sec == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s_lock);
    *sec = s_inactive_s;
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}
