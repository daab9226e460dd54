/*
 * ESP-WIFI-MESH (esp_mesh.h, ESP-IDF v5.5.5) for the virtual board, over the mesh medium the harness runs
 * (harness/virtual/mesh.py), whose Unix socket the board names in HIL_MESH (host_board.h).
 *
 * esp_mesh_start() connects to the medium and says who this node is (its station MAC, the mesh ID, its
 * softAP's max_connection); the medium places it in the tree and from then on sends it its state (parent,
 * layer, root, children, routing table, IP, toDS) whenever that changes, and the packets addressed to it.
 * The mesh task here (the chip's mesh stack) turns each change of state into the events a chip posts to the
 * default event loop, in the chip's order:
 *   parent lost or changed      MESH_EVENT_PARENT_DISCONNECTED (reason from the medium: 200, the parent's
 *                               beacons stopped)
 *   parent found                MESH_EVENT_PARENT_CONNECTED {bssid: the parent, or the router for the root;
 *                               self_layer}; same parent, other layer: MESH_EVENT_LAYER_CHANGE
 *   root known or changed       MESH_EVENT_ROOT_ADDRESS; the network has a root or not: MESH_EVENT_NETWORK_STATE
 *   IP                          the root's station (and, with the medium's IP forwarding, a node's mesh
 *                               netif) gets IP_EVENT_STA_GOT_IP; without IP the port's network gate is DOWN
 *                               (connects fail as lwIP's do with no route): a node reaches the world only
 *                               through the mesh
 *   the root's toDS state       MESH_EVENT_TODS_STATE (esp_mesh_post_toDS_state() on the root), and once
 *                               more after each PARENT_CONNECTED while the root says reachable (what a
 *                               node joining a mesh learns from its new parent)
 *   children                    MESH_EVENT_CHILD_DISCONNECTED / MESH_EVENT_CHILD_CONNECTED {mac, aid}
 *   sub-network                 MESH_EVENT_ROUTING_TABLE_REMOVE / MESH_EVENT_ROUTING_TABLE_ADD
 *                               {rt_size_new, rt_size_change}
 * esp_mesh_send() hands the packet to the medium, which carries it hop by hop over the tree with each hop's
 * rate, latency and loss (MESH_TOS_P2P frames retried per hop, MESH_TOS_DEF and broadcasts not); to NULL is
 * the root; ff:ff:ff:ff:ff:ff is every node. esp_mesh_recv() takes packets from this node's RX queue.
 *
 * Known differences from the chip: no radio, scan, vote or association is run here (the medium decides the
 * tree: it prefers shallow layers with a free slot, as the chip's parent selection does; a root change is
 * the old root leaving and, after the medium's healing time, the next node becoming root, without
 * MESH_EVENT_VOTE_* or ROOT_SWITCH_*); a node's mesh address, its parent's BSSID and the root address are
 * all station MACs (on a chip the parent BSSID is its softAP MAC, the station MAC + 1); MESH_EVENT_NO_PARENT_FOUND,
 * power save, groups, esp_mesh_recv_toDS() and sends to IP addresses (MESH_DATA_TODS with an IP:port) are
 * not implemented; a send blocks only while the medium's socket buffer is full (the chip's xon queues and
 * esp_mesh_send_block_time() are not modelled); the RX queue holds RX_QUEUE_MAX packets and drops beyond (a
 * chip runs out of heap instead); a packet larger than esp_mesh_recv()'s buffer is dropped with
 * ESP_ERR_MESH_ARGUMENT; a node's IP through the root (mesh_netif) uses the host's network, so those bytes do
 * not cross the medium; the router is always in reach of the root (the board's Wi-Fi AP file is not read).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_mesh.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "host_board.h"
#include "host_net_gate.h"
#include "host_time.h"

static const char *TAG = "mesh";

ESP_EVENT_DEFINE_BASE(MESH_EVENT);

const mesh_crypto_funcs_t g_wifi_default_mesh_crypto_funcs = {0};

#define RX_QUEUE_MAX 4096
#define MAX_RT 1024 /* routing-table entries a state record may carry */
#define MAX_CHILDREN 10 /* MESH_MAX_CONNECTIONS */
static const uint8_t BROADCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

typedef struct {
    bool is_root;
    bool has_ip;
    bool to_ds;
    uint8_t reason;
    uint16_t layer;
    uint8_t parent[6];
    uint8_t root[6];
    uint16_t total;
    uint8_t n_children;
    uint8_t children[MAX_CHILDREN][6];
    uint16_t n_rt;
    uint8_t rt[MAX_RT][6];
} mesh_state_t;

typedef struct rx_packet {
    struct rx_packet *next;
    uint8_t from[6];
    uint16_t flag;
    uint8_t proto;
    uint8_t tos;
    uint16_t size;
    uint8_t data[];
} rx_packet_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* the state, the config, the RX queue */
static pthread_mutex_t s_send_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_rx_cond;
static bool s_inited;
static bool s_started;
static bool s_configured;
static int s_fd = -1;
static uint8_t s_mac[6];
static mesh_cfg_t s_cfg;
static mesh_type_t s_type = MESH_IDLE;
static int s_max_layer = 25;
static wifi_auth_mode_t s_ap_authmode = WIFI_AUTH_WPA2_PSK;
static int s_assoc_expire_s = 10;
static bool s_self_organized = true;
static float s_vote_percentage = 0.9f;
static int s_xon_qsize = 32;
static bool s_root_fixed;
static int s_healing_delay_ms = 6000;
static esp_mesh_topology_t s_topology = MESH_TOPO_TREE;
static bool s_ps;
static mesh_state_t s_state;
static rx_packet_t *s_rx_head, *s_rx_tail;
static int s_rx_count;
static int s_rx_dropped;

static bool is_zero(const uint8_t mac[6])
{
    static const uint8_t zero[6];
    return memcmp(mac, zero, 6) == 0;
}

esp_err_t esp_mesh_init(void)
{
    pthread_mutex_lock(&s_lock);
    if (!s_inited) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s_rx_cond, &attr);
        pthread_condattr_destroy(&attr);
        s_inited = true;
    }
    memset(&s_state, 0, sizeof(s_state));
    pthread_mutex_unlock(&s_lock);
    esp_read_mac(s_mac, ESP_MAC_WIFI_STA);
    return ESP_OK;
}

esp_err_t esp_mesh_deinit(void)
{
    if (s_started) {
        esp_mesh_stop();
    }
    pthread_mutex_lock(&s_lock);
    s_inited = false;
    s_configured = false;
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

/* ---- events ---------------------------------------------------------------------------------------- */

static void post(int32_t id, const void *data, size_t size)
{
    esp_err_t err = esp_event_post(MESH_EVENT, id, data, size, portMAX_DELAY);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "posting mesh event %d: %s", (int)id, esp_err_to_name(err));
    }
}

static int find_mac(const uint8_t (*list)[6], int n, const uint8_t mac[6])
{
    for (int i = 0; i < n; i++) {
        if (memcmp(list[i], mac, 6) == 0) {
            return i;
        }
    }
    return -1;
}

static void post_got_ip(void)
{
    ip_event_got_ip_t got_ip = {.esp_netif = esp_netif_create_default_wifi_sta(), .ip_changed = false};
    got_ip.ip_info.ip.addr = 0x0100007F;
    got_ip.ip_info.netmask.addr = 0x000000FF;
    got_ip.ip_info.gw.addr = 0x0100007F;
    esp_err_t err = esp_event_post(IP_EVENT, IP_EVENT_STA_GOT_IP, &got_ip, sizeof(got_ip), portMAX_DELAY);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "posting IP_EVENT_STA_GOT_IP: %s", esp_err_to_name(err));
    }
}

/* The events a chip's mesh stack posts when its view changes from `was` to `now` (the mesh task's only). */
static void post_changes(const mesh_state_t *was, const mesh_state_t *now)
{
    bool had_parent = was->layer > 0;
    bool has_parent = now->layer > 0;
    bool parent_changed = memcmp(was->parent, now->parent, 6) != 0;
    bool connected = has_parent && (!had_parent || parent_changed);
    if (had_parent && (!has_parent || parent_changed)) {
        mesh_event_disconnected_t d = {.reason = now->reason ? now->reason : WIFI_REASON_BEACON_TIMEOUT};
        memcpy(d.bssid, was->parent, 6);
        post(MESH_EVENT_PARENT_DISCONNECTED, &d, sizeof(d));
    }
    if (connected) {
        mesh_event_connected_t c = {.self_layer = now->layer, .duty = 0};
        memcpy(c.connected.bssid, now->parent, 6);
        c.connected.ssid_len = now->is_root ? s_cfg.router.ssid_len : 0;
        memcpy(c.connected.ssid, s_cfg.router.ssid, sizeof(c.connected.ssid));
        c.connected.channel = s_cfg.channel ? s_cfg.channel : 6;
        c.connected.authmode = now->is_root ? WIFI_AUTH_WPA2_PSK : s_ap_authmode;
        c.connected.aid = 1;
        post(MESH_EVENT_PARENT_CONNECTED, &c, sizeof(c));
    } else if (has_parent && was->layer != now->layer) {
        mesh_event_layer_change_t l = {.new_layer = now->layer};
        post(MESH_EVENT_LAYER_CHANGE, &l, sizeof(l));
    }
    if (memcmp(was->root, now->root, 6) != 0) {
        if (!is_zero(now->root)) {
            mesh_event_root_address_t r;
            memcpy(r.addr, now->root, 6);
            post(MESH_EVENT_ROOT_ADDRESS, &r, sizeof(r));
        }
        if (is_zero(was->root) != is_zero(now->root)) {
            mesh_event_network_state_t n = {.is_rootless = is_zero(now->root)};
            post(MESH_EVENT_NETWORK_STATE, &n, sizeof(n));
        }
    }
    if (now->has_ip != was->has_ip) {
        host_net_set_state(now->has_ip ? HOST_NET_UP : HOST_NET_DOWN);
        if (now->has_ip) {
            post_got_ip();
        }
    }
    /* A new parent tells the node the root's toDS state it carries (an app forgets it with the old parent:
     * it may be another mesh's now), or the node would wait for a change that never comes. */
    if (has_parent && (now->to_ds != was->to_ds || (connected && now->to_ds))) {
        mesh_event_toDS_state_t t = now->to_ds ? MESH_TODS_REACHABLE : MESH_TODS_UNREACHABLE;
        post(MESH_EVENT_TODS_STATE, &t, sizeof(t));
    }
    for (int i = 0; i < was->n_children; i++) {
        if (find_mac(now->children, now->n_children, was->children[i]) < 0) {
            mesh_event_child_disconnected_t d = {.aid = (uint8_t)(i + 1), .is_mesh_child = true,
                                                 .reason = WIFI_REASON_AUTH_LEAVE};
            memcpy(d.mac, was->children[i], 6);
            post(MESH_EVENT_CHILD_DISCONNECTED, &d, sizeof(d));
        }
    }
    for (int i = 0; i < now->n_children; i++) {
        if (find_mac(was->children, was->n_children, now->children[i]) < 0) {
            mesh_event_child_connected_t c = {.aid = (uint8_t)(i + 1), .is_mesh_child = true};
            memcpy(c.mac, now->children[i], 6);
            post(MESH_EVENT_CHILD_CONNECTED, &c, sizeof(c));
        }
    }
    int removed = 0, added = 0;
    for (int i = 0; i < was->n_rt; i++) {
        removed += find_mac(now->rt, now->n_rt, was->rt[i]) < 0;
    }
    for (int i = 0; i < now->n_rt; i++) {
        added += find_mac(was->rt, was->n_rt, now->rt[i]) < 0;
    }
    /* A node's table starts with itself, which no chip reports as an addition. */
    if (was->n_rt == 0 && added > 0) {
        added--;
    }
    if (removed > 0 && now->n_rt > 0) {
        mesh_event_routing_table_change_t r = {.rt_size_new = now->n_rt, .rt_size_change = (uint16_t)removed};
        post(MESH_EVENT_ROUTING_TABLE_REMOVE, &r, sizeof(r));
    }
    if (added > 0) {
        mesh_event_routing_table_change_t r = {.rt_size_new = now->n_rt, .rt_size_change = (uint16_t)added};
        post(MESH_EVENT_ROUTING_TABLE_ADD, &r, sizeof(r));
    }
}

/* ---- the medium --------------------------------------------------------------------------------------- */

static bool parse_state(const uint8_t *p, size_t n, mesh_state_t *st)
{
    /* is_root u8 has_ip u8 toDS u8 reason u8 layer u16 parent[6] root[6] total u16 n_children u8 ... */
    if (n < 20) {
        return false;
    }
    memset(st, 0, sizeof(*st));
    st->is_root = p[0];
    st->has_ip = p[1];
    st->to_ds = p[2];
    st->reason = p[3];
    st->layer = (uint16_t)(p[4] | p[5] << 8);
    memcpy(st->parent, p + 6, 6);
    memcpy(st->root, p + 12, 6);
    st->total = (uint16_t)(p[18] | p[19] << 8);
    size_t at = 20;
    if (at + 1 > n) {
        return false;
    }
    st->n_children = p[at++];
    if (st->n_children > MAX_CHILDREN || at + (size_t)st->n_children * 6 + 2 > n) {
        return false;
    }
    memcpy(st->children, p + at, (size_t)st->n_children * 6);
    at += (size_t)st->n_children * 6;
    st->n_rt = (uint16_t)(p[at] | p[at + 1] << 8);
    at += 2;
    if (st->n_rt > MAX_RT || at + (size_t)st->n_rt * 6 > n) {
        return false;
    }
    memcpy(st->rt, p + at, (size_t)st->n_rt * 6);
    return true;
}

static void queue_packet(const uint8_t *p, size_t n)
{
    if (n < 10) {
        return;
    }
    rx_packet_t *pkt = malloc(sizeof(*pkt) + n - 10);
    if (pkt == NULL) {
        return;
    }
    pkt->next = NULL;
    memcpy(pkt->from, p, 6);
    pkt->flag = (uint16_t)(p[6] | p[7] << 8);
    pkt->proto = p[8];
    pkt->tos = p[9];
    pkt->size = (uint16_t)(n - 10);
    memcpy(pkt->data, p + 10, n - 10);
    pthread_mutex_lock(&s_lock);
    if (s_rx_count >= RX_QUEUE_MAX) {
        s_rx_dropped++;
        pthread_mutex_unlock(&s_lock);
        free(pkt);
        ESP_LOGW(TAG, "RX queue full (%d packets): a packet is dropped", RX_QUEUE_MAX);
        return;
    }
    if (s_rx_tail) {
        s_rx_tail->next = pkt;
    } else {
        s_rx_head = pkt;
    }
    s_rx_tail = pkt;
    s_rx_count++;
    pthread_cond_signal(&s_rx_cond);
    pthread_mutex_unlock(&s_lock);
}

/* The mesh stack's task: reads the medium until esp_mesh_stop() (or the medium going away). */
static void mesh_task(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static uint8_t buf[65536];
    static mesh_state_t now, was;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        if (buf[0] == 'X') {
            queue_packet(buf + 1, (size_t)n - 1);
        } else if (buf[0] == 'S' && parse_state(buf + 1, (size_t)n - 1, &now)) {
            pthread_mutex_lock(&s_lock);
            was = s_state;
            s_state = now;
            s_type = now.is_root ? MESH_ROOT : now.layer > 0 ? MESH_NODE : MESH_IDLE;
            pthread_mutex_unlock(&s_lock);
            post_changes(&was, &now);
        } else {
            ESP_LOGW(TAG, "medium record '%c' (%d bytes) not understood", buf[0], (int)n);
        }
    }
    ESP_LOGD(TAG, "medium closed");
    vTaskDelete(NULL);
}

static int connect_medium(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(path) >= sizeof(addr.sun_path)) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    strcpy(addr.sun_path, path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

esp_err_t esp_mesh_start(void)
{
    if (!s_inited) {
        return ESP_ERR_MESH_NOT_INIT;
    }
    if (!s_configured) {
        return ESP_ERR_MESH_NOT_CONFIG;
    }
    if (s_started) {
        return ESP_OK;
    }
    host_net_set_state(HOST_NET_DOWN); /* no IP until the mesh gives one */
    const char *path = getenv(HOST_ENV_MESH);
    if (path == NULL || path[0] == '\0') {
        ESP_LOGW(TAG, "no " HOST_ENV_MESH ": no mesh network in range, no parent will be found");
    } else {
        s_fd = connect_medium(path);
        if (s_fd < 0) {
            ESP_LOGE(TAG, "cannot reach the mesh medium at %s: %s", path, strerror(errno));
        }
    }
    /* Started, and MESH_EVENT_STARTED posted, before the mesh task reads its first state: on a busy host the
     * root could otherwise get its parent, IP and broker session, and call esp_mesh_post_toDS_state(), while
     * this function had not yet said it was started (ESP_FAIL, and its nodes never heard "reachable"). */
    s_started = true;
    post(MESH_EVENT_STARTED, NULL, 0);
    if (s_fd >= 0) {
        uint8_t join[14] = {'J'};
        memcpy(join + 1, s_mac, 6);
        memcpy(join + 7, s_cfg.mesh_id.addr, 6);
        join[13] = s_cfg.mesh_ap.max_connection;
        if (send(s_fd, join, sizeof(join), MSG_NOSIGNAL) != (ssize_t)sizeof(join) ||
            xTaskCreate(mesh_task, "mesh", 4096, (void *)(intptr_t)s_fd, 22, NULL) != pdPASS) {
            ESP_LOGE(TAG, "joining the mesh medium failed");
            close(s_fd);
            s_fd = -1;
        }
    }
    return ESP_OK;
}

esp_err_t esp_mesh_stop(void)
{
    if (!s_started) {
        return ESP_ERR_MESH_NOT_START;
    }
    s_started = false;
    if (s_fd >= 0) {
        shutdown(s_fd, SHUT_RDWR); /* the medium sees this node leave; the mesh task's recv() ends */
    }
    pthread_mutex_lock(&s_lock);
    mesh_state_t was = s_state;
    memset(&s_state, 0, sizeof(s_state));
    s_type = MESH_IDLE;
    while (s_rx_head) {
        rx_packet_t *next = s_rx_head->next;
        free(s_rx_head);
        s_rx_head = next;
    }
    s_rx_tail = NULL;
    s_rx_count = 0;
    pthread_cond_broadcast(&s_rx_cond);
    pthread_mutex_unlock(&s_lock);
    if (was.layer > 0) {
        mesh_event_disconnected_t d = {.reason = MESH_REASON_PARENT_STOPPED};
        memcpy(d.bssid, was.parent, 6);
        post(MESH_EVENT_PARENT_DISCONNECTED, &d, sizeof(d));
    }
    post(MESH_EVENT_STOPPED, NULL, 0);
    return ESP_OK;
}

/* ---- data ------------------------------------------------------------------------------------------- */

esp_err_t esp_mesh_send(const mesh_addr_t *to, const mesh_data_t *data, int flag, const mesh_opt_t opt[],
                        int opt_count)
{
    if (!s_started) {
        return ESP_ERR_MESH_NOT_START;
    }
    if (data == NULL || (data->size > 0 && data->data == NULL) || opt_count < 0 || (opt_count > 0 && opt == NULL)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    if (opt_count > 0) {
        return ESP_ERR_MESH_OPTION_UNKNOWN; /* groups and DS addresses are not implemented */
    }
    if (data->size > MESH_MPS) {
        return ESP_ERR_MESH_EXCEED_MTU;
    }
    pthread_mutex_lock(&s_lock);
    bool connected = s_state.layer > 0 && s_fd >= 0;
    bool is_root = s_state.is_root;
    bool routed = true;
    if (connected && is_root && to != NULL && memcmp(to->addr, BROADCAST, 6) != 0) {
        routed = find_mac(s_state.rt, s_state.n_rt, to->addr) >= 0;
    }
    pthread_mutex_unlock(&s_lock);
    if (!connected) {
        return ESP_ERR_MESH_DISCONNECTED;
    }
    if (!routed) {
        return ESP_ERR_MESH_NO_ROUTE_FOUND;
    }
    if (to == NULL && is_root) {
        return ESP_ERR_MESH_ARGUMENT; /* the root has no root to send to */
    }
    uint8_t frame[1 + 10 + MESH_MPS];
    frame[0] = 'D';
    if (to != NULL) {
        memcpy(frame + 1, to->addr, 6);
    } else {
        memset(frame + 1, 0, 6);
    }
    frame[7] = (uint8_t)(flag & 0xff);
    frame[8] = (uint8_t)((flag >> 8) & 0xff);
    frame[9] = (uint8_t)data->proto;
    frame[10] = (uint8_t)data->tos;
    memcpy(frame + 11, data->data, data->size);
    size_t len = 11 + (size_t)data->size;
    pthread_mutex_lock(&s_send_lock);
    ssize_t sent = send(s_fd, frame, len, MSG_NOSIGNAL);
    pthread_mutex_unlock(&s_send_lock);
    if (sent != (ssize_t)len) {
        return ESP_ERR_MESH_DISCONNECTED;
    }
    return ESP_OK;
}

esp_err_t esp_mesh_recv(mesh_addr_t *from, mesh_data_t *data, int timeout_ms, int *flag, mesh_opt_t opt[],
                        int opt_count)
{
    if (!s_started) {
        return ESP_ERR_MESH_NOT_START;
    }
    if (from == NULL || data == NULL || data->data == NULL || (opt_count > 0 && opt == NULL)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    bool forever = (uint32_t)timeout_ms == portMAX_DELAY || timeout_ms < 0;
    struct timespec deadline = host_deadline_ms(CLOCK_MONOTONIC, forever ? 0 : timeout_ms);
    pthread_mutex_lock(&s_lock);
    while (s_rx_head == NULL && s_started) {
        if (forever) {
            pthread_cond_wait(&s_rx_cond, &s_lock);
        } else if (timeout_ms == 0 || pthread_cond_timedwait(&s_rx_cond, &s_lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    rx_packet_t *pkt = s_rx_head;
    if (pkt != NULL) {
        s_rx_head = pkt->next;
        if (s_rx_head == NULL) {
            s_rx_tail = NULL;
        }
        s_rx_count--;
    }
    bool started = s_started;
    pthread_mutex_unlock(&s_lock);
    if (pkt == NULL) {
        return started ? ESP_ERR_MESH_TIMEOUT : ESP_ERR_MESH_NOT_START;
    }
    esp_err_t err = ESP_OK;
    if (pkt->size > data->size) {
        ESP_LOGW(TAG, "a %u-byte packet from " MACSTR " does not fit a %u-byte buffer: dropped", pkt->size,
                 MAC2STR(pkt->from), data->size);
        err = ESP_ERR_MESH_ARGUMENT;
    } else {
        memcpy(from->addr, pkt->from, 6);
        memcpy(data->data, pkt->data, pkt->size);
        data->size = pkt->size;
        data->proto = (mesh_proto_t)pkt->proto;
        data->tos = (mesh_tos_t)pkt->tos;
        if (flag != NULL) {
            *flag = pkt->flag & (MESH_DATA_P2P | MESH_DATA_FROMDS | MESH_DATA_TODS);
        }
    }
    free(pkt);
    return err;
}

/* ---- configuration and state ---------------------------------------------------------------------------- */

esp_err_t esp_mesh_set_config(const mesh_cfg_t *config)
{
    if (!s_inited) {
        return ESP_ERR_MESH_NOT_INIT;
    }
    if (config == NULL || config->mesh_ap.max_connection > MESH_MAX_CONNECTIONS ||
        config->router.ssid_len > sizeof(config->router.ssid)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    if (s_started) {
        return ESP_ERR_MESH_NOT_ALLOWED;
    }
    s_cfg = *config;
    if (s_cfg.mesh_ap.max_connection == 0) {
        s_cfg.mesh_ap.max_connection = 6;
    }
    s_configured = true;
    return ESP_OK;
}

esp_err_t esp_mesh_get_config(mesh_cfg_t *config)
{
    if (config == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    *config = s_cfg;
    return ESP_OK;
}

esp_err_t esp_mesh_set_router(const mesh_router_t *router)
{
    if (router == NULL || router->ssid_len > sizeof(router->ssid)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_cfg.router = *router;
    return ESP_OK;
}

esp_err_t esp_mesh_get_router(mesh_router_t *router)
{
    if (router == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    *router = s_cfg.router;
    return ESP_OK;
}

esp_err_t esp_mesh_set_id(const mesh_addr_t *id)
{
    if (id == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_cfg.mesh_id = *id;
    return ESP_OK;
}

esp_err_t esp_mesh_get_id(mesh_addr_t *id)
{
    if (id == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    *id = s_cfg.mesh_id;
    return ESP_OK;
}

esp_err_t esp_mesh_set_type(mesh_type_t type)
{
    if (s_started) {
        return ESP_ERR_MESH_NOT_ALLOWED;
    }
    if (type > MESH_STA) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_type = type;
    return ESP_OK;
}

mesh_type_t esp_mesh_get_type(void)
{
    pthread_mutex_lock(&s_lock);
    mesh_type_t type = s_type;
    pthread_mutex_unlock(&s_lock);
    return type;
}

esp_err_t esp_mesh_set_max_layer(int max_layer)
{
    if (max_layer < 1 || max_layer > (s_topology == MESH_TOPO_CHAIN ? 1000 : 25)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    if (s_started) {
        return ESP_ERR_MESH_NOT_ALLOWED;
    }
    s_max_layer = max_layer;
    return ESP_OK;
}

int esp_mesh_get_max_layer(void)
{
    return s_max_layer;
}

esp_err_t esp_mesh_set_ap_password(const uint8_t *pwd, int len)
{
    if (pwd == NULL || len < 0 || len > (int)sizeof(s_cfg.mesh_ap.password)) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    memset(s_cfg.mesh_ap.password, 0, sizeof(s_cfg.mesh_ap.password));
    memcpy(s_cfg.mesh_ap.password, pwd, (size_t)len);
    return ESP_OK;
}

esp_err_t esp_mesh_set_ap_authmode(wifi_auth_mode_t authmode)
{
    if ((int)authmode < WIFI_AUTH_OPEN || authmode > WIFI_AUTH_WPA2_PSK) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_ap_authmode = authmode;
    return ESP_OK;
}

wifi_auth_mode_t esp_mesh_get_ap_authmode(void)
{
    return s_ap_authmode;
}

esp_err_t esp_mesh_set_ap_connections(int connections)
{
    if (connections < 0 || connections > MESH_MAX_CONNECTIONS) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_cfg.mesh_ap.max_connection = (uint8_t)connections;
    return ESP_OK;
}

int esp_mesh_get_ap_connections(void)
{
    return s_cfg.mesh_ap.max_connection;
}

int esp_mesh_get_layer(void)
{
    pthread_mutex_lock(&s_lock);
    int layer = s_state.layer;
    pthread_mutex_unlock(&s_lock);
    return layer;
}

esp_err_t esp_mesh_get_parent_bssid(mesh_addr_t *bssid)
{
    if (bssid == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    pthread_mutex_lock(&s_lock);
    memcpy(bssid->addr, s_state.layer > 0 ? s_state.parent : (const uint8_t[6]){0}, 6);
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

bool esp_mesh_is_root(void)
{
    pthread_mutex_lock(&s_lock);
    bool root = s_state.is_root;
    pthread_mutex_unlock(&s_lock);
    return root;
}

esp_err_t esp_mesh_set_self_organized(bool enable, bool select_parent)
{
    if (!enable) {
        return ESP_ERR_MESH_NOT_SUPPORT; /* the medium always organizes the tree */
    }
    s_self_organized = enable;
    return ESP_OK;
}

bool esp_mesh_get_self_organized(void)
{
    return s_self_organized;
}

esp_err_t esp_mesh_set_vote_percentage(float percentage)
{
    if (percentage <= 0 || percentage > 1) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_vote_percentage = percentage;
    return ESP_OK;
}

float esp_mesh_get_vote_percentage(void)
{
    return s_vote_percentage;
}

esp_err_t esp_mesh_set_ap_assoc_expire(int seconds)
{
    if (seconds < 1) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_assoc_expire_s = seconds;
    return ESP_OK;
}

int esp_mesh_get_ap_assoc_expire(void)
{
    return s_assoc_expire_s;
}

int esp_mesh_get_total_node_num(void)
{
    pthread_mutex_lock(&s_lock);
    int total = s_state.total;
    pthread_mutex_unlock(&s_lock);
    return total;
}

int esp_mesh_get_routing_table_size(void)
{
    pthread_mutex_lock(&s_lock);
    int size = s_state.n_rt;
    pthread_mutex_unlock(&s_lock);
    return size;
}

esp_err_t esp_mesh_get_routing_table(mesh_addr_t *mac, int len, int *size)
{
    if (mac == NULL || size == NULL || len < 0) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    pthread_mutex_lock(&s_lock);
    int n = s_state.n_rt;
    if (n > len / 6) {
        n = len / 6;
    }
    for (int i = 0; i < n; i++) {
        memcpy(mac[i].addr, s_state.rt[i], 6);
    }
    pthread_mutex_unlock(&s_lock);
    *size = n;
    return ESP_OK;
}

esp_err_t esp_mesh_post_toDS_state(bool reachable)
{
    if (!s_started || s_fd < 0) {
        return ESP_FAIL;
    }
    uint8_t record[2] = {'T', reachable ? 1 : 0};
    pthread_mutex_lock(&s_send_lock);
    ssize_t sent = send(s_fd, record, sizeof(record), MSG_NOSIGNAL);
    pthread_mutex_unlock(&s_send_lock);
    return sent == (ssize_t)sizeof(record) ? ESP_OK : ESP_FAIL;
}

esp_err_t esp_mesh_get_tx_pending(mesh_tx_pending_t *pending)
{
    if (pending == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    memset(pending, 0, sizeof(*pending)); /* the medium holds what is in flight */
    return ESP_OK;
}

esp_err_t esp_mesh_get_rx_pending(mesh_rx_pending_t *pending)
{
    if (pending == NULL) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    pthread_mutex_lock(&s_lock);
    pending->toDS = 0;
    pending->toSelf = s_rx_count;
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_mesh_set_xon_qsize(int qsize)
{
    if (qsize < 16) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_xon_qsize = qsize;
    return ESP_OK;
}

int esp_mesh_get_xon_qsize(void)
{
    return s_xon_qsize;
}

esp_err_t esp_mesh_fix_root(bool enable)
{
    s_root_fixed = enable;
    return ESP_OK;
}

bool esp_mesh_is_root_fixed(void)
{
    return s_root_fixed;
}

esp_err_t esp_mesh_set_root_healing_delay(int delay_ms)
{
    if (delay_ms < 0) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    s_healing_delay_ms = delay_ms; /* the medium's healing time applies (harness/virtual/mesh.py) */
    return ESP_OK;
}

int esp_mesh_get_root_healing_delay(void)
{
    return s_healing_delay_ms;
}

esp_err_t esp_mesh_set_topology(esp_mesh_topology_t topo)
{
    if (topo != MESH_TOPO_TREE && topo != MESH_TOPO_CHAIN) {
        return ESP_ERR_MESH_ARGUMENT;
    }
    if (s_started) {
        return ESP_ERR_MESH_NOT_ALLOWED;
    }
    s_topology = topo;
    return ESP_OK;
}

esp_mesh_topology_t esp_mesh_get_topology(void)
{
    return s_topology;
}

esp_err_t esp_mesh_enable_ps(void)
{
    return ESP_ERR_MESH_NOT_SUPPORT; /* power save is not modelled */
}

esp_err_t esp_mesh_disable_ps(void)
{
    s_ps = false;
    return ESP_OK;
}

bool esp_mesh_is_ps_enabled(void)
{
    return s_ps;
}

esp_err_t esp_netif_create_default_wifi_mesh_netifs(esp_netif_t **p_netif_sta, esp_netif_t **p_netif_ap)
{
    static struct {
        int unused;
    } s_ap_netif;
    if (p_netif_sta != NULL) {
        *p_netif_sta = esp_netif_create_default_wifi_sta();
    }
    if (p_netif_ap != NULL) {
        *p_netif_ap = (esp_netif_t *)&s_ap_netif;
    }
    return ESP_OK;
}

esp_err_t esp_netif_dhcpc_start(esp_netif_t *esp_netif)
{
    return esp_netif != NULL ? ESP_OK : ESP_ERR_INVALID_ARG;
}

esp_err_t esp_netif_dhcpc_stop(esp_netif_t *esp_netif)
{
    return esp_netif != NULL ? ESP_OK : ESP_ERR_INVALID_ARG;
}
