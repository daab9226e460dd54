/*
 * port_check's ESP-WIFI-MESH commands (tests_unit/test_host_port_mesh.py): the mesh brought up with the call
 * sequence of ESP-IDF's examples/mesh/internal_communication, every MESH_EVENT (and IP_EVENT) printed as the
 * app's handler gets it, and packets sent and received as that example's tasks do.
 *
 *   mesh_start <max_connection>      netif, event loop, esp_wifi_init/start, esp_mesh_init, handlers,
 *                                    topology, max layer, config, esp_mesh_start
 *   mesh_info                        is_root, layer, parent, routing table size, total nodes, type
 *   mesh_rt                          esp_mesh_get_routing_table()
 *   mesh_send <mac|root|all> <p2p|def> <text>   esp_mesh_send() of text (to NULL for root, ff:.. for all)
 *   mesh_flood <mac|all> <count> <size>         count packets of size bytes, MESH_TOS_P2P; prints the time
 *   mesh_recv <ms>                   esp_mesh_recv() with that timeout: from, size, flag and the text
 *   mesh_count <n> <ms>              receives n packets within ms; prints how many came and when the last did
 *   mesh_tods <0|1>                  esp_mesh_post_toDS_state()
 *   mesh_stop                        esp_mesh_stop()
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "esp_event.h"
#include "esp_mac.h"
#include "esp_mesh.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "mesh_check.h"

static const uint8_t MESH_ID[6] = {0x77, 0x77, 0x77, 0x77, 0x77, 0x77};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *event_name(int32_t id)
{
    static const char *names[] = {
        "STARTED", "STOPPED", "CHANNEL_SWITCH", "CHILD_CONNECTED", "CHILD_DISCONNECTED", "ROUTING_TABLE_ADD",
        "ROUTING_TABLE_REMOVE", "PARENT_CONNECTED", "PARENT_DISCONNECTED", "NO_PARENT_FOUND", "LAYER_CHANGE",
        "TODS_STATE", "VOTE_STARTED", "VOTE_STOPPED", "ROOT_ADDRESS", "ROOT_SWITCH_REQ", "ROOT_SWITCH_ACK",
        "ROOT_ASKED_YIELD", "ROOT_FIXED", "SCAN_DONE", "NETWORK_STATE", "STOP_RECONNECTION", "FIND_NETWORK",
        "ROUTER_SWITCH", "PS_PARENT_DUTY", "PS_CHILD_DUTY", "PS_DEVICE_DUTY"};
    return id >= 0 && id < MESH_EVENT_MAX ? names[id] : "?";
}

static void on_mesh_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    flockfile(stdout); /* one line, never split by the prompt another thread prints */
    printf("mesh_event=%s", event_name(id));
    switch (id) {
    case MESH_EVENT_PARENT_CONNECTED: {
        const mesh_event_connected_t *c = data;
        printf(" layer=%d parent=" MACSTR " root=%d", c->self_layer, MAC2STR(c->connected.bssid),
               esp_mesh_is_root() ? 1 : 0);
        break;
    }
    case MESH_EVENT_PARENT_DISCONNECTED: {
        const mesh_event_disconnected_t *d = data;
        printf(" reason=%d parent=" MACSTR, d->reason, MAC2STR(d->bssid));
        break;
    }
    case MESH_EVENT_CHILD_CONNECTED:
    case MESH_EVENT_CHILD_DISCONNECTED: {
        const mesh_event_child_connected_t *c = data;
        printf(" child=" MACSTR " aid=%d", MAC2STR(c->mac), c->aid);
        break;
    }
    case MESH_EVENT_ROUTING_TABLE_ADD:
    case MESH_EVENT_ROUTING_TABLE_REMOVE: {
        const mesh_event_routing_table_change_t *r = data;
        printf(" change=%d new=%d", r->rt_size_change, r->rt_size_new);
        break;
    }
    case MESH_EVENT_LAYER_CHANGE:
        printf(" layer=%d", ((const mesh_event_layer_change_t *)data)->new_layer);
        break;
    case MESH_EVENT_ROOT_ADDRESS:
        printf(" root=" MACSTR, MAC2STR(((const mesh_event_root_address_t *)data)->addr));
        break;
    case MESH_EVENT_TODS_STATE:
        printf(" state=%d", *(const mesh_event_toDS_state_t *)data);
        break;
    case MESH_EVENT_NETWORK_STATE:
        printf(" rootless=%d", ((const mesh_event_network_state_t *)data)->is_rootless ? 1 : 0);
        break;
    default:
        break;
    }
    printf(" t_ms=%lld\n", now_ms());
    fflush(stdout);
    funlockfile(stdout);
}

static void on_ip_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    printf("ip_event=%s t_ms=%lld\n", id == IP_EVENT_STA_GOT_IP ? "GOT_IP" : "LOST_IP", now_ms());
    fflush(stdout);
}

#define STEP(call)                                                                 \
    do {                                                                           \
        esp_err_t err_ = (call);                                                   \
        if (err_ != ESP_OK) {                                                      \
            printf("mesh_start=%s at %s\n", esp_err_to_name(err_), #call);         \
            return;                                                                \
        }                                                                          \
    } while (0)

static void mesh_start(int max_connection)
{
    static bool loop_created;
    if (!loop_created) {
        esp_event_loop_create_default();
        loop_created = true;
    }
    esp_netif_t *netif_sta = NULL;
    STEP(esp_netif_init());
    STEP(esp_netif_create_default_wifi_mesh_netifs(&netif_sta, NULL));
    wifi_init_config_t config = WIFI_INIT_CONFIG_DEFAULT();
    STEP(esp_wifi_init(&config));
    STEP(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, &on_ip_event, NULL));
    STEP(esp_wifi_start());
    STEP(esp_mesh_init());
    STEP(esp_event_handler_register(MESH_EVENT, ESP_EVENT_ANY_ID, &on_mesh_event, NULL));
    STEP(esp_mesh_set_topology(MESH_TOPO_TREE));
    STEP(esp_mesh_set_max_layer(6));
    STEP(esp_mesh_set_vote_percentage(1));
    STEP(esp_mesh_set_xon_qsize(128));
    STEP(esp_mesh_disable_ps());
    STEP(esp_mesh_set_ap_assoc_expire(10));
    mesh_cfg_t cfg = MESH_INIT_CONFIG_DEFAULT();
    memcpy((uint8_t *)&cfg.mesh_id, MESH_ID, 6);
    cfg.channel = 6;
    cfg.router.ssid_len = (uint8_t)strlen("hil-ap");
    memcpy((uint8_t *)&cfg.router.ssid, "hil-ap", cfg.router.ssid_len);
    STEP(esp_mesh_set_ap_authmode(WIFI_AUTH_WPA2_PSK));
    cfg.mesh_ap.max_connection = (uint8_t)max_connection;
    cfg.mesh_ap.nonmesh_max_connection = 0;
    memcpy((uint8_t *)&cfg.mesh_ap.password, "mesh-password", strlen("mesh-password"));
    STEP(esp_mesh_set_config(&cfg));
    STEP(esp_mesh_start());
    uint8_t mac[6];
    esp_read_mac(mac, ESP_MAC_WIFI_STA);
    printf("mesh_start=ESP_OK mac=" MACSTR "\n", MAC2STR(mac));
}

static bool parse_to(const char *text, mesh_addr_t *to, const mesh_addr_t **out)
{
    if (strcmp(text, "root") == 0) {
        *out = NULL;
        return true;
    }
    if (strcmp(text, "all") == 0) {
        memset(to->addr, 0xff, 6);
        *out = to;
        return true;
    }
    unsigned m[6];
    if (sscanf(text, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        to->addr[i] = (uint8_t)m[i];
    }
    *out = to;
    return true;
}

static void mesh_send_text(const char *dest, const char *tos, const char *text)
{
    mesh_addr_t to;
    const mesh_addr_t *target;
    if (!parse_to(dest, &to, &target)) {
        printf("mesh_send=bad_address\n");
        return;
    }
    mesh_data_t data = {.data = (uint8_t *)text, .size = (uint16_t)strlen(text), .proto = MESH_PROTO_BIN,
                        .tos = strcmp(tos, "def") == 0 ? MESH_TOS_DEF : MESH_TOS_P2P};
    int flag = target == NULL ? MESH_DATA_TODS : esp_mesh_is_root() ? MESH_DATA_FROMDS : MESH_DATA_P2P;
    printf("mesh_send=%s\n", esp_err_to_name(esp_mesh_send(target, &data, flag, NULL, 0)));
}

static void mesh_flood(const char *dest, int count, int size)
{
    static uint8_t buf[MESH_MPS + 1];
    mesh_addr_t to;
    const mesh_addr_t *target;
    if (!parse_to(dest, &to, &target) || size < 1 || size > (int)sizeof(buf)) {
        printf("mesh_flood=bad_argument\n");
        return;
    }
    memset(buf, 'x', sizeof(buf));
    mesh_data_t data = {.data = buf, .size = (uint16_t)size, .proto = MESH_PROTO_BIN, .tos = MESH_TOS_P2P};
    long long started = now_ms();
    esp_err_t err = ESP_OK;
    for (int i = 0; i < count && err == ESP_OK; i++) {
        err = esp_mesh_send(target, &data, MESH_DATA_P2P, NULL, 0);
    }
    printf("mesh_flood=%s ms=%lld\n", esp_err_to_name(err), now_ms() - started);
}

static void mesh_recv(int ms)
{
    static uint8_t buf[MESH_MPS + 1];
    mesh_addr_t from;
    mesh_data_t data = {.data = buf, .size = MESH_MPS};
    int flag = 0;
    esp_err_t err = esp_mesh_recv(&from, &data, ms, &flag, NULL, 0);
    if (err != ESP_OK) {
        printf("mesh_recv=%s\n", esp_err_to_name(err));
        return;
    }
    printf("mesh_recv=ESP_OK from=" MACSTR " size=%d flag=%d tos=%d text=%.*s\n", MAC2STR(from.addr), data.size,
           flag, data.tos, data.size > 64 ? 64 : data.size, (const char *)buf);
}

static void mesh_count(int n, int ms)
{
    static uint8_t buf[MESH_MPS + 1];
    long long started = now_ms(), last = started;
    int got = 0;
    while (got < n) {
        long long left = started + ms - now_ms();
        if (left <= 0) {
            break;
        }
        mesh_addr_t from;
        mesh_data_t data = {.data = buf, .size = MESH_MPS};
        int flag = 0;
        if (esp_mesh_recv(&from, &data, (int)left, &flag, NULL, 0) == ESP_OK) {
            got++;
            last = now_ms();
        }
    }
    printf("mesh_count=%d last_ms=%lld\n", got, last - started);
}

static void mesh_info(void)
{
    mesh_addr_t parent;
    esp_mesh_get_parent_bssid(&parent);
    printf("is_root=%d layer=%d parent=" MACSTR " rt_size=%d total=%d type=%d\n", esp_mesh_is_root() ? 1 : 0,
           esp_mesh_get_layer(), MAC2STR(parent.addr), esp_mesh_get_routing_table_size(),
           esp_mesh_get_total_node_num(), (int)esp_mesh_get_type());
}

static void mesh_rt(void)
{
    mesh_addr_t table[64];
    int size = 0;
    esp_err_t err = esp_mesh_get_routing_table(table, sizeof(table), &size);
    printf("mesh_rt=%s size=%d", esp_err_to_name(err), size);
    for (int i = 0; i < size; i++) {
        printf(" " MACSTR, MAC2STR(table[i].addr));
    }
    printf("\n");
}

bool mesh_check_command(const char *line)
{
    int a = 0, b = 0, c = 0;
    char dest[32], tos[8], text[256];
    if (sscanf(line, "mesh_start %d", &a) == 1) {
        mesh_start(a);
    } else if (strncmp(line, "mesh_info", 9) == 0) {
        mesh_info();
    } else if (strncmp(line, "mesh_rt", 7) == 0) {
        mesh_rt();
    } else if (sscanf(line, "mesh_send %31s %7s %255[^\n]", dest, tos, text) == 3) {
        mesh_send_text(dest, tos, text);
    } else if (sscanf(line, "mesh_flood %31s %d %d", dest, &b, &c) == 3) {
        mesh_flood(dest, b, c);
    } else if (sscanf(line, "mesh_recv %d", &a) == 1) {
        mesh_recv(a);
    } else if (sscanf(line, "mesh_count %d %d", &a, &b) == 2) {
        mesh_count(a, b);
    } else if (sscanf(line, "mesh_tods %d", &a) == 1) {
        printf("mesh_tods=%s\n", esp_err_to_name(esp_mesh_post_toDS_state(a != 0)));
    } else if (strncmp(line, "mesh_stop", 9) == 0) {
        printf("mesh_stop=%s\n", esp_err_to_name(esp_mesh_stop()));
    } else {
        return false;
    }
    return true;
}
