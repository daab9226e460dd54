/*
 * The agent on an ESP-WIFI-MESH network (CONFIG_OTA_AGENT_MESH; docs/protocol.md, "Mesh"). Bring-up follows
 * ESP-IDF's examples/mesh/internal_communication: mesh netifs, Wi-Fi started (never connected by the app:
 * the mesh stack does it), esp_mesh_init, the event handler, topology, config (mesh ID, the router from the
 * provisioned wifi_ssid/wifi_password, the softAP), esp_mesh_start.
 *
 * Only the root has the broker: its esp-mqtt client runs while it is root and has an IP (mqtt_link.c), and it
 * posts the toDS state as its broker session goes up and down, so that every node knows whether its way out
 * works. Mesh packets are JSON (MESH_PROTO_JSON, at most MESH_MPS bytes, MESH_TOS_P2P):
 *   root -> nodes   {"m":"cmd","cmd":"<the command as it came from MQTT>"}
 *                   broadcast for <prefix>/all/cmd and for an ota_trigger on the root's own cmd topic;
 *                   to one node for <prefix>/<its device id>/cmd
 *   node -> root    {"m":"pub","dev":"<device id>","kind":"ota|status|...","retain":0|1,"text":"<payload>",
 *                    "b":<boot id>,"n":<number in this boot>}
 *                   what the node would have published; the root publishes it on <prefix>/<dev>/<kind>
 *   root -> node    {"m":"ack","b":<boot id>,"n":<n>} at the broker's PUBACK for it
 * A node's messages wait in its outbox (mesh_outbox.c) while it has no way out, and stay there until the
 * root acks them: a root that reboots (into its own update, just after its nodes) drops what it had not
 * published yet, and the node sends it again through the next root.
 * Distribution packets (chunks and their control messages) go to mesh_dist.c.
 * A node reports its status when it gets a way out and every CONFIG_OTA_AGENT_MESH_STATUS_S (2B's periodic
 * status packages); the root keeps the last one of each node and publishes the aggregate, retained, on
 * <prefix>/<root id>/mesh every CONFIG_OTA_AGENT_MESH_AGGREGATE_S and when a node or its state changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sdkconfig.h"
#include "esp_log.h"
#include "mesh_link.h"

#if CONFIG_OTA_AGENT_MESH

#include "cJSON.h"
#include "esp_event.h"
#include "esp_mac.h"
#include "esp_mesh.h"
#include "esp_netif.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "agent_config.h"
#include "mesh_dist.h"
#include "mesh_outbox.h"
#include "mesh_send.h"
#include "mqtt_link.h"
#include "status.h"

static const char *TAG = "mesh_link";

typedef struct {
    bool used;
    char dev[33];
    uint8_t mac[6];
    char version[32];
    char ota_state[16];
    int layer;
    int64_t seen_us;
} node_entry_t;

static node_entry_t *s_nodes;          /* the root's table of nodes that reported (CONFIG_OTA_AGENT_MESH_MAX_NODES) */
static SemaphoreHandle_t s_lock;       /* s_nodes */
static SemaphoreHandle_t s_wake;       /* the status task: report now */
static volatile bool s_attached;       /* has a parent (the router, for the root) */
static volatile bool s_to_ds;          /* the root says the broker is reachable */
static volatile bool s_report_now;     /* a node's status is due at once (it just got a way out) */
static volatile bool s_aggregate_now;  /* the root's aggregate changed */
static volatile int s_layer;
static uint8_t s_rx[MESH_MPS + 1];
static esp_netif_t *s_sta;           /* the mesh's station netif (the root's way to the router) */

static bool mesh_link_is_root(void)
{
    return esp_mesh_is_root();
}

static bool mesh_link_node_uplink(void)
{
    return !esp_mesh_is_root() && s_attached && s_to_ds;
}

static bool send_json(const mesh_addr_t *to, cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);
    if (text == NULL) {
        return false;
    }
    const uint8_t *mac = to != NULL ? to->addr : NULL;
    esp_err_t err = mesh_send_packet(mac, text, strlen(text), MESH_PROTO_JSON, MESH_TOS_P2P);
    if (err != ESP_OK && err != ESP_ERR_INVALID_SIZE) { /* an oversized one is logged already */
        ESP_LOGW(TAG, "esp_mesh_send failed: %s", esp_err_to_name(err));
    }
    cJSON_free(text);
    return err == ESP_OK;
}

/* A node's publish: into its outbox, which sends it to the root once there is a way out. */
static int mesh_link_forward_publish(const char *kind, const char *text, bool retain)
{
    return mesh_outbox_put(kind, text, retain) ? 1 : -1;
}

static node_entry_t *find_node(const char *dev)
{
    for (int i = 0; i < CONFIG_OTA_AGENT_MESH_MAX_NODES; i++) {
        if (s_nodes[i].used && strcmp(s_nodes[i].dev, dev) == 0) {
            return &s_nodes[i];
        }
    }
    return NULL;
}

static bool mesh_link_relay_command(const char *device_id, const char *payload, int len)
{
    mesh_addr_t to;
    memset(to.addr, 0xff, sizeof(to.addr)); /* broadcast: every node */
    if (device_id != NULL) {
        xSemaphoreTake(s_lock, portMAX_DELAY);
        node_entry_t *node = find_node(device_id);
        if (node != NULL) {
            memcpy(to.addr, node->mac, sizeof(to.addr));
        }
        xSemaphoreGive(s_lock);
        if (node == NULL) {
            return false; /* not a node of this mesh (or it has not reported yet) */
        }
    }
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "m", "cmd");
    char *copy = strndup(payload, (size_t)len);
    cJSON_AddStringToObject(msg, "cmd", copy != NULL ? copy : "");
    free(copy);
    bool ok = send_json(&to, msg);
    cJSON_Delete(msg);
    ESP_LOGI(TAG, "command relayed to %s%s", device_id != NULL ? device_id : "every node", ok ? "" : ": failed");
    return ok;
}

static void mesh_link_broker_state(bool connected)
{
    if (!esp_mesh_is_root()) {
        return;
    }
    esp_err_t err = esp_mesh_post_toDS_state(connected);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "esp_mesh_post_toDS_state failed: %s", esp_err_to_name(err));
    }
    s_aggregate_now = true;
    xSemaphoreGive(s_wake);
    mesh_outbox_uplink_changed(); /* a node that became root publishes what it still holds now */
}

static void mesh_link_add_status(cJSON *status)
{
    cJSON *mesh = cJSON_AddObjectToObject(status, "mesh");
    mesh_addr_t parent;
    char mac[18];
    cJSON_AddBoolToObject(mesh, "root", esp_mesh_is_root());
    cJSON_AddNumberToObject(mesh, "layer", esp_mesh_get_layer());
    if (esp_mesh_get_parent_bssid(&parent) == ESP_OK) {
        snprintf(mac, sizeof(mac), MACSTR, MAC2STR(parent.addr));
        cJSON_AddStringToObject(mesh, "parent", mac);
    }
}

static bool valid_segment(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strpbrk(s, "/+#") == NULL;
}

/* The root: a node's status, kept for the aggregate. */
static void remember(const char *dev, const uint8_t mac[6], const char *text)
{
    cJSON *status = cJSON_Parse(text);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(status, "version");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(status, "ota_state");
    const cJSON *layer = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(status, "mesh"), "layer");
    xSemaphoreTake(s_lock, portMAX_DELAY);
    node_entry_t *node = find_node(dev);
    for (int i = 0; node == NULL && i < CONFIG_OTA_AGENT_MESH_MAX_NODES; i++) {
        if (!s_nodes[i].used) {
            node = &s_nodes[i];
            memset(node, 0, sizeof(*node));
            node->used = true;
            snprintf(node->dev, sizeof(node->dev), "%s", dev);
            s_aggregate_now = true;
        }
    }
    if (node != NULL) {
        char before[sizeof(node->version) + sizeof(node->ota_state)];
        snprintf(before, sizeof(before), "%s%s", node->version, node->ota_state);
        memcpy(node->mac, mac, 6);
        snprintf(node->version, sizeof(node->version), "%s", cJSON_IsString(version) ? version->valuestring : "?");
        snprintf(node->ota_state, sizeof(node->ota_state), "%s", cJSON_IsString(state) ? state->valuestring : "?");
        node->layer = cJSON_IsNumber(layer) ? layer->valueint : 0;
        node->seen_us = esp_timer_get_time();
        char after[sizeof(before)];
        snprintf(after, sizeof(after), "%s%s", node->version, node->ota_state);
        s_aggregate_now = s_aggregate_now || strcmp(before, after) != 0;
    } else {
        ESP_LOGW(TAG, "more than %d nodes: %s is not in the aggregate", CONFIG_OTA_AGENT_MESH_MAX_NODES, dev);
    }
    xSemaphoreGive(s_lock);
    cJSON_Delete(status);
    if (s_aggregate_now) {
        xSemaphoreGive(s_wake);
    }
}

static void on_node_message(const mesh_addr_t *from, const cJSON *msg)
{
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(msg, "dev");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(msg, "kind");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(msg, "text");
    const cJSON *retain = cJSON_GetObjectItemCaseSensitive(msg, "retain");
    if (!cJSON_IsString(dev) || !cJSON_IsString(kind) || !cJSON_IsString(text) ||
        !valid_segment(dev->valuestring, 32) || !valid_segment(kind->valuestring, 32)) {
        ESP_LOGW(TAG, "a node's message from " MACSTR " is malformed: ignored", MAC2STR(from->addr));
        return;
    }
    /* Known before its status is out: whoever sees the status may command the node at once, and the
       root relays a command only to a node in its table (mesh_link_relay_command). */
    if (strcmp(kind->valuestring, "status") == 0) {
        remember(dev->valuestring, from->addr, text->valuestring);
    }
    (void)mesh_outbox_root_publish(from->addr, msg, dev->valuestring, kind->valuestring, text->valuestring,
                                   cJSON_IsNumber(retain) && retain->valueint != 0);
}

static void rx_task(void *arg)
{
    (void)arg;
    for (;;) {
        mesh_addr_t from;
        mesh_data_t data = {.data = s_rx, .size = MESH_MPS};
        int flag = 0;
        esp_err_t err = esp_mesh_recv(&from, &data, portMAX_DELAY, &flag, NULL, 0);
        if (err != ESP_OK) {
            ESP_LOGW(TAG, "esp_mesh_recv failed: %s", esp_err_to_name(err));
            vTaskDelay(pdMS_TO_TICKS(100));
            continue;
        }
        if (data.size > 0 && s_rx[0] == 'C') {
            mesh_dist_on_chunk(from.addr, s_rx, data.size); /* a distribution's chunk (mesh_dist.c) */
            continue;
        }
        cJSON *msg = cJSON_ParseWithLength((const char *)s_rx, data.size);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "m");
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(msg, "cmd");
        if (cJSON_IsString(m) && (strcmp(m->valuestring, "end") == 0 || strcmp(m->valuestring, "fin") == 0 ||
                                  strcmp(m->valuestring, "nak") == 0 || strcmp(m->valuestring, "done") == 0)) {
            mesh_dist_on_control(from.addr, m->valuestring, msg);
        } else if (cJSON_IsString(m) && strcmp(m->valuestring, "cmd") == 0 && cJSON_IsString(cmd)) {
            mqtt_link_inject_command(cmd->valuestring, (int)strlen(cmd->valuestring));
        } else if (cJSON_IsString(m) && strcmp(m->valuestring, "pub") == 0 && esp_mesh_is_root()) {
            on_node_message(&from, msg);
        } else if (cJSON_IsString(m) && strcmp(m->valuestring, "ack") == 0) {
            mesh_outbox_on_ack(msg);
        } else {
            ESP_LOGW(TAG, "a mesh packet from " MACSTR " is not understood (%d bytes)", MAC2STR(from.addr), data.size);
        }
        cJSON_Delete(msg);
    }
}

/* The root's aggregate (option 2B): itself and every node that reported, present or not. */
static void publish_aggregate(void)
{
    mesh_addr_t table[CONFIG_OTA_AGENT_MESH_MAX_NODES];
    int size = 0;
    esp_mesh_get_routing_table(table, (int)sizeof(table), &size);
    cJSON *agg = cJSON_CreateObject();
    cJSON_AddStringToObject(agg, "root", agent_config_get()->device_id);
    cJSON_AddNumberToObject(agg, "routing_table_size", esp_mesh_get_routing_table_size());
    cJSON *nodes = cJSON_AddArrayToObject(agg, "nodes");
    cJSON *self = status_build();
    if (self != NULL) {
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "device_id", agent_config_get()->device_id);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(self, "version");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(self, "ota_state");
        cJSON_AddStringToObject(entry, "version", cJSON_IsString(v) ? v->valuestring : "?");
        cJSON_AddStringToObject(entry, "ota_state", cJSON_IsString(s) ? s->valuestring : "?");
        cJSON_AddNumberToObject(entry, "layer", 1);
        cJSON_AddBoolToObject(entry, "present", true);
        cJSON_AddNumberToObject(entry, "age_s", 0);
        cJSON_AddItemToArray(nodes, entry);
        cJSON_Delete(self);
    }
    int64_t now = esp_timer_get_time();
    int count = 1;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    for (int i = 0; i < CONFIG_OTA_AGENT_MESH_MAX_NODES; i++) {
        const node_entry_t *node = &s_nodes[i];
        if (!node->used || strcmp(node->dev, agent_config_get()->device_id) == 0) {
            continue;
        }
        bool present = false;
        for (int j = 0; j < size && !present; j++) {
            present = memcmp(table[j].addr, node->mac, 6) == 0;
        }
        char mac[18];
        snprintf(mac, sizeof(mac), MACSTR, MAC2STR(node->mac));
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "device_id", node->dev);
        cJSON_AddStringToObject(entry, "mac", mac);
        cJSON_AddStringToObject(entry, "version", node->version);
        cJSON_AddStringToObject(entry, "ota_state", node->ota_state);
        cJSON_AddNumberToObject(entry, "layer", node->layer);
        cJSON_AddBoolToObject(entry, "present", present);
        cJSON_AddNumberToObject(entry, "age_s", (double)((now - node->seen_us) / 1000000));
        cJSON_AddItemToArray(nodes, entry);
        count += present;
    }
    xSemaphoreGive(s_lock);
    cJSON_AddNumberToObject(agg, "count", count);
    mqtt_link_publish_json("mesh", agg, true);
    cJSON_Delete(agg);
}

/* Periodic status packages (every node) and the aggregate (the root). */
static void status_task(void *arg)
{
    (void)arg;
    int64_t next_status = 0, next_aggregate = 0;
    for (;;) {
        xSemaphoreTake(s_wake, pdMS_TO_TICKS(1000));
        int64_t now = esp_timer_get_time();
        bool root = esp_mesh_is_root();
        bool out = root ? mqtt_link_broker_connected() : mesh_link_node_uplink();
        if (out && (s_report_now || now >= next_status)) {
            s_report_now = false;
            status_publish(); /* a node's goes through the root */
            next_status = now + (int64_t)CONFIG_OTA_AGENT_MESH_STATUS_S * 1000000;
        }
        if (root && out && (s_aggregate_now || now >= next_aggregate)) {
            s_aggregate_now = false;
            publish_aggregate();
            next_aggregate = now + (int64_t)CONFIG_OTA_AGENT_MESH_AGGREGATE_S * 1000000;
        }
    }
}

static void wake(void)
{
    if (s_wake != NULL) {
        xSemaphoreGive(s_wake);
    }
}

static void on_mesh_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    bool had_uplink = mesh_link_node_uplink();
    switch (id) {
    case MESH_EVENT_PARENT_CONNECTED: {
        const mesh_event_connected_t *c = data;
        s_attached = true;
        s_layer = c->self_layer;
        ESP_LOGI(TAG, "parent " MACSTR ", layer %d%s", MAC2STR(c->connected.bssid), c->self_layer,
                 esp_mesh_is_root() ? " (root)" : "");
        if (esp_mesh_is_root()) {
            /* as the mesh example does: the root's station netif asks the router for an address */
            esp_netif_dhcpc_stop(s_sta);
            esp_err_t err = esp_netif_dhcpc_start(s_sta);
            if (err != ESP_OK) {
                ESP_LOGW(TAG, "esp_netif_dhcpc_start failed: %s", esp_err_to_name(err));
            }
        } else {
            mqtt_link_mesh_root(false); /* a node now (again): its MQTT goes nowhere */
        }
        break;
    }
    case MESH_EVENT_PARENT_DISCONNECTED: {
        const mesh_event_disconnected_t *d = data;
        ESP_LOGW(TAG, "parent lost (reason %d)", d->reason);
        s_attached = false;
        s_to_ds = false;
        mqtt_link_mesh_root(false);
        break;
    }
    case MESH_EVENT_LAYER_CHANGE:
        s_layer = ((const mesh_event_layer_change_t *)data)->new_layer;
        ESP_LOGI(TAG, "layer %d", s_layer);
        break;
    case MESH_EVENT_ROOT_ADDRESS:
        ESP_LOGI(TAG, "root " MACSTR, MAC2STR(((const mesh_event_root_address_t *)data)->addr));
        break;
    case MESH_EVENT_TODS_STATE:
        s_to_ds = *(const mesh_event_toDS_state_t *)data == MESH_TODS_REACHABLE;
        ESP_LOGI(TAG, "the root's broker: %s", s_to_ds ? "reachable" : "unreachable");
        break;
    case MESH_EVENT_NETWORK_STATE:
        if (((const mesh_event_network_state_t *)data)->is_rootless) {
            s_to_ds = false;
        }
        break;
    case MESH_EVENT_ROUTING_TABLE_ADD:
    case MESH_EVENT_ROUTING_TABLE_REMOVE: {
        const mesh_event_routing_table_change_t *r = data;
        ESP_LOGI(TAG, "routing table %s %d: %d nodes", id == MESH_EVENT_ROUTING_TABLE_ADD ? "+" : "-",
                 r->rt_size_change, r->rt_size_new);
        s_aggregate_now = true;
        break;
    }
    default:
        break;
    }
    mqtt_link_uplink_changed();
    mesh_outbox_uplink_changed();
    if (!had_uplink && mesh_link_node_uplink()) {
        s_report_now = true; /* the node's first status through this root */
    }
    wake();
}

static void on_ip_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    (void)data;
    if (id == IP_EVENT_STA_GOT_IP && esp_mesh_is_root()) {
        ESP_LOGI(TAG, "root with an address: connecting to the broker");
        s_report_now = true;
        mqtt_link_mesh_root(true);
    }
}

static esp_err_t parse_mesh_id(const char *text, mesh_addr_t *id)
{
    unsigned m[6];
    if (sscanf(text, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
        return ESP_ERR_INVALID_ARG;
    }
    for (int i = 0; i < 6; i++) {
        id->addr[i] = (uint8_t)m[i];
    }
    return ESP_OK;
}

static const mqtt_link_mesh_t HOOKS = {
    .is_root = mesh_link_is_root,
    .node_uplink = mesh_link_node_uplink,
    .forward_publish = mesh_link_forward_publish,
    .publish_behind_held = mesh_outbox_put_behind_held,
    .relay_command = mesh_link_relay_command,
    .broker_state = mesh_link_broker_state,
    .published = mesh_outbox_root_published,
    .flush = mesh_outbox_flush,
};

void mesh_link_attach(void)
{
    mqtt_link_set_mesh(&HOOKS);
    status_set_extra(mesh_link_add_status);
}

#define CHECK(call)                                                                 \
    do {                                                                            \
        esp_err_t err_ = (call);                                                    \
        if (err_ != ESP_OK) {                                                       \
            ESP_LOGE(TAG, "%s failed: %s", #call, esp_err_to_name(err_));           \
            return err_;                                                            \
        }                                                                           \
    } while (0)

esp_err_t mesh_link_start(void)
{
    const agent_config_t *cfg = agent_config_get();
    s_lock = xSemaphoreCreateMutex();
    s_wake = xSemaphoreCreateBinary();
    s_nodes = calloc(CONFIG_OTA_AGENT_MESH_MAX_NODES, sizeof(node_entry_t));
    if (s_lock == NULL || s_wake == NULL || s_nodes == NULL || !mesh_outbox_start(mesh_link_node_uplink)) {
        return ESP_ERR_NO_MEM;
    }
    mesh_cfg_t mesh_cfg = MESH_INIT_CONFIG_DEFAULT();
    CHECK(parse_mesh_id(CONFIG_OTA_AGENT_MESH_ID, &mesh_cfg.mesh_id));
    CHECK(esp_netif_init());
    CHECK(esp_netif_create_default_wifi_mesh_netifs(&s_sta, NULL));
    wifi_init_config_t wifi_cfg = WIFI_INIT_CONFIG_DEFAULT();
    CHECK(esp_wifi_init(&wifi_cfg));
    CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_ip_event, NULL));
    CHECK(esp_wifi_start());
    CHECK(esp_mesh_init());
    CHECK(mesh_dist_init()); /* its MESH_EVENT handler: the node's children */
    CHECK(esp_event_handler_register(MESH_EVENT, ESP_EVENT_ANY_ID, on_mesh_event, NULL));
    CHECK(esp_mesh_set_topology(MESH_TOPO_TREE));
    CHECK(esp_mesh_set_max_layer(CONFIG_OTA_AGENT_MESH_MAX_LAYER));
    CHECK(esp_mesh_set_vote_percentage(1));
    CHECK(esp_mesh_set_xon_qsize(128));
    CHECK(esp_mesh_disable_ps());
    CHECK(esp_mesh_set_ap_assoc_expire(10));
    mesh_cfg.channel = CONFIG_OTA_AGENT_MESH_CHANNEL;
    mesh_cfg.router.ssid_len = (uint8_t)strlen(cfg->wifi_ssid);
    memcpy(mesh_cfg.router.ssid, cfg->wifi_ssid, mesh_cfg.router.ssid_len);
    memcpy(mesh_cfg.router.password, cfg->wifi_password, strlen(cfg->wifi_password));
    CHECK(esp_mesh_set_ap_authmode(WIFI_AUTH_WPA2_PSK));
    mesh_cfg.mesh_ap.max_connection = CONFIG_OTA_AGENT_MESH_AP_CONNECTIONS;
    mesh_cfg.mesh_ap.nonmesh_max_connection = 0;
    memcpy(mesh_cfg.mesh_ap.password, CONFIG_OTA_AGENT_MESH_AP_PASSWORD, strlen(CONFIG_OTA_AGENT_MESH_AP_PASSWORD));
    CHECK(esp_mesh_set_config(&mesh_cfg));
    CHECK(esp_mesh_start());
    if (xTaskCreate(rx_task, "mesh_rx", 6144, NULL, 5, NULL) != pdPASS ||
        xTaskCreate(status_task, "mesh_status", 6144, NULL, 3, NULL) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    ESP_LOGI(TAG, "mesh started: id %s, up to %d children, %d layers", CONFIG_OTA_AGENT_MESH_ID,
             CONFIG_OTA_AGENT_MESH_AP_CONNECTIONS, CONFIG_OTA_AGENT_MESH_MAX_LAYER);
    return ESP_OK;
}

#else /* !CONFIG_OTA_AGENT_MESH */

void mesh_link_attach(void)
{
}

esp_err_t mesh_link_start(void)
{
    return ESP_ERR_NOT_SUPPORTED;
}

#endif /* CONFIG_OTA_AGENT_MESH */
