/*
 * port_check's Wi-Fi and socket commands (tests_unit/test_host_port_wifi.py): the station brought up as an
 * app does, every WIFI_EVENT and IP_EVENT printed as its handler gets it (the handler never reconnects: the
 * test says when), and plain BSD sockets over the port's network gate, as an lwIP app uses them.
 *
 *   wifi_start <ssid>               netif, event loop, esp_wifi_init/set_mode/set_config/start
 *   wifi_connect                    esp_wifi_connect()
 *   wifi_ap_info                    esp_wifi_sta_get_ap_info()
 *   wifi_inactive <s>               esp_wifi_set_inactive_time(WIFI_IF_STA, s)
 *   wifi_gate <up|stalled|down> <ms> waits for the port's network gate to be in that state (host_net_gate.h)
 *   tcp_connect <ip> <port> <ms>    a non-blocking connect, waited on with poll() for up to ms
 *   tcp_wait <fd> <ms>              waits for a pending connect to end (poll POLLOUT, then SO_ERROR)
 *   tcp_send <fd> <text>            send()
 *   tcp_recv <fd> <ms>              poll() POLLIN for up to ms, then recv()
 *   tcp_recv_now <fd>               recv(MSG_DONTWAIT) without poll()
 *   tcp_close <fd>                  close()
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "esp_event.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "../src/host_net_gate.h" /* the port's own test app may look inside */
#include "wifi_check.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errno_name(int err)
{
    const char *name = strerrorname_np(err);
    return name != NULL ? name : "E?";
}

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        const wifi_event_sta_disconnected_t *d = data;
        printf("wifi_event=STA_DISCONNECTED reason=%u rssi=%d ssid=%.*s bssid_set=%d t_ms=%lld\n", d->reason, d->rssi,
               d->ssid_len, (const char *)d->ssid, d->bssid[0] | d->bssid[5] ? 1 : 0, (long long)now_ms());
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_CONNECTED) {
        const wifi_event_sta_connected_t *c = data;
        printf("wifi_event=STA_CONNECTED ssid=%.*s channel=%u t_ms=%lld\n", c->ssid_len, (const char *)c->ssid,
               c->channel, (long long)now_ms());
    } else if (base == WIFI_EVENT) {
        const char *name = id == WIFI_EVENT_STA_START ? "STA_START"
                         : id == WIFI_EVENT_STA_BEACON_TIMEOUT ? "STA_BEACON_TIMEOUT" : "OTHER";
        printf("wifi_event=%s id=%d t_ms=%lld\n", name, (int)id, (long long)now_ms());
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *g = data;
        printf("ip_event=GOT_IP ip=" IPSTR " ip_changed=%d t_ms=%lld\n", IP2STR(&g->ip_info.ip), g->ip_changed ? 1 : 0,
               (long long)now_ms());
    } else if (base == IP_EVENT && id == IP_EVENT_STA_LOST_IP) {
        printf("ip_event=LOST_IP t_ms=%lld\n", (long long)now_ms());
    }
    fflush(stdout);
}

static void wifi_start(const char *ssid)
{
    static bool loop_created;
    if (!loop_created) {
        esp_event_loop_create_default();
        loop_created = true;
    }
    esp_netif_init();
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    esp_err_t err = esp_wifi_init(&init);
    esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_event, NULL, NULL);
    esp_event_handler_instance_register(IP_EVENT, ESP_EVENT_ANY_ID, on_event, NULL, NULL);
    wifi_config_t config = {0};
    memcpy(config.sta.ssid, ssid, strnlen(ssid, sizeof(config.sta.ssid)));
    if (err == ESP_OK) {
        err = esp_wifi_set_mode(WIFI_MODE_STA);
    }
    if (err == ESP_OK) {
        err = esp_wifi_set_config(WIFI_IF_STA, &config);
    }
    if (err == ESP_OK) {
        err = esp_wifi_start();
    }
    printf("wifi_start=%s\n", esp_err_to_name(err));
}

static void print_result(const char *what, int fd, int err, int64_t started)
{
    printf("%s=%s fd=%d ms=%lld\n", what, err == 0 ? "connected" : err == EINPROGRESS ? "pending" : errno_name(err), fd,
           (long long)(now_ms() - started));
}

/* Waits up to ms for fd's connect to end: 0 (connected), an errno, or EINPROGRESS (still going). */
static int wait_connected(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, ms) <= 0) {
        return EINPROGRESS;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        return errno;
    }
    return err;
}

static void tcp_connect(const char *ip, int port, int ms)
{
    int64_t started = now_ms();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        err = errno == EINPROGRESS ? wait_connected(fd, ms) : errno;
    }
    print_result("tcp_connect", fd, err, started);
}

static void tcp_recv(int fd, int ms)
{
    char buf[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t started = now_ms();
    int ready = poll(&p, 1, ms);
    if (ready == 0) {
        printf("tcp_recv=timeout ms=%lld\n", (long long)(now_ms() - started));
        return;
    }
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n < 0) {
        printf("tcp_recv=%s revents=0x%x ms=%lld\n", errno_name(errno), p.revents, (long long)(now_ms() - started));
    } else if (n == 0) {
        printf("tcp_recv=eof ms=%lld\n", (long long)(now_ms() - started));
    } else {
        buf[n] = '\0';
        printf("tcp_recv=%s ms=%lld\n", buf, (long long)(now_ms() - started));
    }
}

bool wifi_check_command(const char *line)
{
    char a[64];
    char text[256];
    int x = 0, y = 0, fd = 0;
    if (sscanf(line, "wifi_start %63s", a) == 1) {
        wifi_start(a);
    } else if (strncmp(line, "wifi_connect", 12) == 0) {
        printf("wifi_connect=%s\n", esp_err_to_name(esp_wifi_connect()));
    } else if (strncmp(line, "wifi_ap_info", 12) == 0) {
        wifi_ap_record_t ap;
        esp_err_t err = esp_wifi_sta_get_ap_info(&ap);
        if (err == ESP_OK) {
            printf("ap_info=ESP_OK rssi=%d ssid=%s channel=%u\n", ap.rssi, (const char *)ap.ssid, ap.primary);
        } else {
            printf("ap_info=%s\n", esp_err_to_name(err));
        }
    } else if (sscanf(line, "wifi_inactive %d", &x) == 1) {
        printf("wifi_inactive=%s\n", esp_err_to_name(esp_wifi_set_inactive_time(WIFI_IF_STA, (uint16_t)x)));
    } else if (sscanf(line, "wifi_gate %63s %d", a, &x) == 2) {
        host_net_state_t want = strcmp(a, "up") == 0 ? HOST_NET_UP : strcmp(a, "stalled") == 0 ? HOST_NET_STALLED
                                                                                              : HOST_NET_DOWN;
        printf("wifi_gate=%s\n", host_net_wait_state(want, x) ? a : "timeout");
    } else if (sscanf(line, "tcp_connect %63s %d %d", a, &x, &y) == 3) {
        tcp_connect(a, x, y);
    } else if (sscanf(line, "tcp_wait %d %d", &fd, &x) == 2) {
        int64_t started = now_ms();
        print_result("tcp_wait", fd, wait_connected(fd, x), started);
    } else if (sscanf(line, "tcp_send %d %255s", &fd, text) == 2) {
        ssize_t n = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            printf("tcp_send=%s\n", errno_name(errno));
        } else {
            printf("tcp_send=%zd\n", n);
        }
    } else if (sscanf(line, "tcp_recv_now %d", &fd) == 1) {
        ssize_t n = recv(fd, text, sizeof(text) - 1, MSG_DONTWAIT);
        text[n > 0 ? n : 0] = '\0';
        printf("tcp_recv_now=%s\n", n < 0 ? errno_name(errno) : n == 0 ? "eof" : text);
    } else if (sscanf(line, "tcp_recv %d %d", &fd, &x) == 2) {
        tcp_recv(fd, x);
    } else if (sscanf(line, "tcp_close %d", &fd) == 1) {
        printf("tcp_close=%d\n", close(fd));
    } else {
        return false;
    }
    return true;
}
