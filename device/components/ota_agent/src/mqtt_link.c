/*
 * MQTT session on esp-mqtt. Incoming commands are copied and queued so that the esp-mqtt task
 * never runs OTA work, and a long payload split over several DATA events is reassembled (or
 * refused when it is over MQTT_LINK_MAX_COMMAND_LEN).
 *
 * A command that finds the queue full is not dropped: its id is noted and the command task
 * hands it to the callback as MQTT_LINK_COMMAND_QUEUE_FULL once it is free, so the agent answers
 * `busy`. The esp-mqtt task does not publish that answer itself: every OTA event goes out from
 * the tasks that number them (ota_events.c), so their seq stays in order, and the esp-mqtt task,
 * which holds the client's lock while it runs this handler, never waits on their lock.
 *
 * Chunks of a `push` (<prefix>/<id>/push/<transfer>/<offset>) are assembled the same way into a
 * malloc'd buffer and handed to ota_push.c's handler, which queues them for the update task.
 *
 * On an ESP-WIFI-MESH network (CONFIG_OTA_AGENT_MESH: mesh_link.c sets its hooks here, mqtt_link_set_mesh())
 * only the root runs the esp-mqtt client,
 * started when it is root with an address and stopped when it no longer is. It subscribes to
 * <prefix>/+/cmd: a command on <prefix>/all/cmd is relayed to every node and run here; one on its own topic
 * is run here and, if it is an ota_trigger, relayed to every node too; one for another device id goes to
 * that node only. A node publishes through the root (mesh_link_forward_publish), and "connected" means its
 * way out: the mesh up to a root that reaches the broker.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "esp_bit_defs.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "esp_transport.h"
#include "mqtt_client.h"
#include "sdkconfig.h"
#include "agent_config.h"
#include "mqtt_link.h"
#include "ota_request.h"

static const char *TAG = "mqtt_link";

#define CONNECTED_BIT BIT0
#define ACKED_BIT     BIT1 /* set on every PUBACK or SUBACK: the outbox may be empty now */
#define UPLINK_BIT    BIT2 /* the device's way out: the broker, or on a mesh node the root that reaches it */
#define TOPIC_MAX 128
/* esp-mqtt's buffer (in and out): a push chunk of the default size (OTA_PUSH_CHUNK_DEFAULT), its topic
   (under TOPIC_MAX + a transfer id and an offset) and the fixed header fit in one, so such a chunk arrives
   as one DATA event; a larger one comes in several and is assembled in its own buffer. Not sized for the
   largest chunk: the buffer is allocated twice (in and out) for the device's whole life. */
#define MQTT_BUFFER_SIZE (4096 + 256)
#define ID_MAX 48
/* Ids of commands that found the queue full, kept until the command task answers them; past
 * this many at once (a flood), the rest are answered with an empty id. 3 KB. */
#define OVERFLOW_IDS 64

typedef struct {
    char *payload; /* NUL-terminated copy; NULL marks an over-long payload */
    int len;
} command_t;

typedef struct {
    SemaphoreHandle_t lock;  /* taken for a copy only, never across a publish */
    char ids[OVERFLOW_IDS][ID_MAX];
    int named;               /* ids[0..named) */
    int unnamed;             /* more of them, ids not kept */
    int queued_bytes;        /* payload bytes in s_commands */
} overflow_t;

static esp_mqtt_client_handle_t s_client;
static EventGroupHandle_t s_events;
/* One flush at a time: each clears ACKED_BIT before it looks at the outbox, so a second flush clearing it
   between the first one's look and its wait would take the wake-up of the PUBACK that emptied the outbox,
   and the first would wait out its whole timeout with nothing left to send. */
static SemaphoreHandle_t s_flush_lock;
static QueueHandle_t s_commands;
static mqtt_link_command_cb_t s_on_command;
static char s_topic_cmd[TOPIC_MAX];
static char s_topic_all[TOPIC_MAX];
static char s_topic_online[TOPIC_MAX];
static char s_topic_push[TOPIC_MAX];     /* "<prefix>/<id>/push/": the chunks' topics start so */
static char s_topic_push_sub[TOPIC_MAX]; /* "<prefix>/<id>/push/#" */
static const mqtt_link_push_handler_t *s_push;
static overflow_t s_overflow;
static bool s_client_started; /* esp_mqtt_client_start() done and not stopped (a mesh node's is not) */

/* Who a command on a cmd topic is for. */
typedef enum { CMD_NONE, CMD_OWN, CMD_ALL, CMD_OTHER } cmd_target_t;
static cmd_target_t s_cmd_target;
static char s_cmd_dev[ID_MAX + 1]; /* CMD_OTHER: the device id in the topic */
static const mqtt_link_mesh_t *s_mesh; /* the mesh's hooks (NULL: not on a mesh) */

void mqtt_link_set_mesh(const mqtt_link_mesh_t *mesh)
{
    s_mesh = mesh;
}

/* On a mesh, as a node (not the root): no broker session of its own. */
static bool mesh_node(void)
{
    return s_mesh != NULL && !s_mesh->is_root();
}

/* Reassembly of a message that esp-mqtt delivers in several DATA events. */
static char *s_partial;
static int s_partial_len;
/* The same for a push chunk: its transfer id and offset come from the first event's topic. */
static uint8_t *s_chunk;
static char s_chunk_transfer[ID_MAX];
static int64_t s_chunk_offset;

static void make_topic(char *out, const char *device_id, const char *kind)
{
    snprintf(out, TOPIC_MAX, "%s/%s/%s", agent_config_get()->topic_prefix, device_id, kind);
}

/* The "id" of a command, when it has a short string one ("" otherwise). */
static void command_id(const char *payload, int len, char *id)
{
    id[0] = '\0';
    if (payload == NULL || !ota_json_depth_ok(payload, (size_t)len, OTA_JSON_MAX_DEPTH)) {
        return;
    }
    cJSON *json = cJSON_ParseWithLength(payload, (size_t)len);
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(json, "id");
    if (cJSON_IsString(value) && strlen(value->valuestring) < ID_MAX) {
        strcpy(id, value->valuestring);
    }
    cJSON_Delete(json);
}

static void note_overflow(const char *payload, int len)
{
    char id[ID_MAX];
    command_id(payload, len, id);
    ESP_LOGW(TAG, "command queue full; '%s' will be answered busy", id);
    xSemaphoreTake(s_overflow.lock, portMAX_DELAY);
    if (s_overflow.named < OVERFLOW_IDS) {
        strcpy(s_overflow.ids[s_overflow.named++], id);
    } else {
        s_overflow.unnamed++;
    }
    xSemaphoreGive(s_overflow.lock);
}

static void queue_command(char *payload, int len)
{
    int bytes = payload != NULL ? len : 0;
    xSemaphoreTake(s_overflow.lock, portMAX_DELAY);
    bool room = s_overflow.queued_bytes + bytes <= CONFIG_HIL_COMMAND_QUEUE_BYTES;
    if (room) {
        s_overflow.queued_bytes += bytes;
    }
    xSemaphoreGive(s_overflow.lock);
    command_t cmd = {payload, len};
    if (room && xQueueSend(s_commands, &cmd, 0) == pdPASS) {
        return;
    }
    if (room) {
        xSemaphoreTake(s_overflow.lock, portMAX_DELAY);
        s_overflow.queued_bytes -= bytes;
        xSemaphoreGive(s_overflow.lock);
    }
    note_overflow(payload, len);
    free(payload);
}

static bool topic_is(const esp_mqtt_event_t *event, const char *topic)
{
    return event->topic_len == (int)strlen(topic) && memcmp(event->topic, topic, (size_t)event->topic_len) == 0;
}

static cmd_target_t command_target(const esp_mqtt_event_t *event)
{
    if (topic_is(event, s_topic_cmd)) {
        return CMD_OWN;
    }
    if (topic_is(event, s_topic_all)) {
        return CMD_ALL;
    }
    if (s_mesh == NULL) {
        return CMD_NONE;
    }
    /* <prefix>/<device id>/cmd of a node this root may relay to */
    const char *prefix = agent_config_get()->topic_prefix;
    int prefix_len = (int)strlen(prefix);
    int id_len = event->topic_len - prefix_len - 5; /* "/" id "/cmd" */
    if (id_len > 0 && id_len <= ID_MAX && memcmp(event->topic, prefix, (size_t)prefix_len) == 0 &&
        event->topic[prefix_len] == '/' && memcmp(event->topic + prefix_len + 1 + id_len, "/cmd", 4) == 0) {
        memcpy(s_cmd_dev, event->topic + prefix_len + 1, (size_t)id_len);
        s_cmd_dev[id_len] = '\0';
        return CMD_OTHER;
    }
    return CMD_NONE;
}

/* The root's relay of a whole command; true when it is not for this device (nothing to run here). */
static bool relay_to_mesh(const char *payload, int len)
{
    if (s_mesh == NULL || !s_mesh->is_root()) {
        return false;
    }
    if (s_cmd_target == CMD_OTHER) {
        if (!s_mesh->relay_command(s_cmd_dev, payload, len)) {
            ESP_LOGD(TAG, "a command for %s: not a node of this mesh", s_cmd_dev);
        }
        return true;
    }
    bool everyone = s_cmd_target == CMD_ALL;
    if (s_cmd_target == CMD_OWN) {
        cJSON *json = ota_json_depth_ok(payload, (size_t)len, OTA_JSON_MAX_DEPTH)
                          ? cJSON_ParseWithLength(payload, (size_t)len) : NULL;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(json, "type");
        /* an ota_trigger the nodes download themselves (001); with "mesh" the root distributes it instead */
        everyone = cJSON_IsString(type) && strcmp(type->valuestring, "ota_trigger") == 0 &&
                   cJSON_GetObjectItemCaseSensitive(json, "mesh") == NULL;
        cJSON_Delete(json);
    }
    if (everyone) {
        s_mesh->relay_command(NULL, payload, len);
    }
    return false;
}

void mqtt_link_set_push_handler(const mqtt_link_push_handler_t *handler)
{
    s_push = handler;
}

/* "<transfer>/<offset>" after the push prefix: false when the topic is not a chunk's. */
static bool parse_chunk_topic(const esp_mqtt_event_t *event, char *transfer, int64_t *offset)
{
    int prefix_len = (int)strlen(s_topic_push);
    if (event->topic_len <= prefix_len || memcmp(event->topic, s_topic_push, (size_t)prefix_len) != 0) {
        return false;
    }
    const char *rest = event->topic + prefix_len;
    int rest_len = event->topic_len - prefix_len;
    const char *slash = memchr(rest, '/', (size_t)rest_len);
    if (slash == NULL || slash == rest || slash - rest >= ID_MAX) {
        return false;
    }
    memcpy(transfer, rest, (size_t)(slash - rest));
    transfer[slash - rest] = '\0';
    int digits = rest_len - (int)(slash - rest) - 1;
    if (digits < 1 || digits > 10) {
        return false;
    }
    int64_t value = 0;
    for (int i = 0; i < digits; i++) {
        char c = slash[1 + i];
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + (c - '0');
    }
    *offset = value;
    return true;
}

/* A push chunk, in one or several DATA events. */
static void on_chunk_data(const esp_mqtt_event_t *event)
{
    if (event->current_data_offset == 0) {
        free(s_chunk);
        s_chunk = NULL;
        if (s_push == NULL || event->total_data_len < 1 || event->total_data_len > MQTT_LINK_MAX_CHUNK_LEN ||
            !parse_chunk_topic(event, s_chunk_transfer, &s_chunk_offset) || !s_push->wants(s_chunk_transfer)) {
            return;
        }
        s_chunk = malloc((size_t)event->total_data_len);
        if (s_chunk == NULL) {
            ESP_LOGW(TAG, "no memory for a %d byte chunk; the pusher will send it again", event->total_data_len);
            return;
        }
    }
    if (s_chunk == NULL) {
        return; /* the rest of an ignored chunk */
    }
    memcpy(s_chunk + event->current_data_offset, event->data, (size_t)event->data_len);
    if (event->current_data_offset + event->data_len >= event->total_data_len) {
        s_push->chunk(s_chunk_transfer, s_chunk_offset, s_chunk, event->total_data_len);
        s_chunk = NULL;
    }
}

static bool is_chunk_topic(const esp_mqtt_event_t *event)
{
    int prefix_len = (int)strlen(s_topic_push);
    return event->topic_len > prefix_len && memcmp(event->topic, s_topic_push, (size_t)prefix_len) == 0;
}

static void on_data(const esp_mqtt_event_t *event)
{
    /* The first event of a message names its topic; the next ones (topic NULL) continue it. */
    static bool s_in_chunk;
    if (event->current_data_offset == 0) {
        s_in_chunk = is_chunk_topic(event);
        free(s_partial); /* a message cut short by a disconnection is not continued by the next one */
        s_partial = NULL;
    }
    if (s_in_chunk) {
        on_chunk_data(event);
        return;
    }
    if (event->current_data_offset == 0) {
        free(s_partial);
        s_partial = NULL;
        s_partial_len = 0;
        s_cmd_target = command_target(event);
        if (s_cmd_target == CMD_NONE) {
            return;
        }
        if (event->total_data_len > MQTT_LINK_MAX_COMMAND_LEN) {
            if (s_cmd_target != CMD_OTHER) {
                queue_command(NULL, event->total_data_len);
            }
            return;
        }
        s_partial = malloc((size_t)event->total_data_len + 1);
        if (s_partial == NULL) {
            ESP_LOGE(TAG, "no memory for a %d byte command", event->total_data_len);
            return;
        }
    }
    if (s_partial == NULL) {
        return; /* the rest of a refused or foreign message */
    }
    memcpy(s_partial + event->current_data_offset, event->data, (size_t)event->data_len);
    s_partial_len = event->current_data_offset + event->data_len;
    if (s_partial_len >= event->total_data_len) {
        s_partial[s_partial_len] = '\0';
        if (relay_to_mesh(s_partial, s_partial_len)) {
            free(s_partial);
            s_partial = NULL;
            return;
        }
        queue_command(s_partial, s_partial_len);
        s_partial = NULL;
    }
}

/* esp-tls leaves Nagle's algorithm on. A reply written right after esp-mqtt's PUBACK of the
 * command would then wait for the broker's delayed ACK of that PUBACK (40 ms from a Linux
 * broker) before it leaves. Commands, events and their answers are small and latency-bound. */
static void disable_nagle(void)
{
    char scheme[8];
    snprintf(scheme, sizeof(scheme), "%s",
             strncmp(agent_config_get()->broker_url, "mqtts:", 6) == 0 ? MQTT_OVER_SSL_SCHEME : MQTT_OVER_TCP_SCHEME);
    int fd = esp_transport_get_socket(esp_mqtt_client_get_transport(s_client, scheme));
    int on = 1;
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
        ESP_LOGW(TAG, "TCP_NODELAY not set on the broker connection: replies may wait for delayed ACKs");
    }
}

static void on_connected(void)
{
    ESP_LOGI(TAG, "connected to the broker");
    disable_nagle();
    if (s_mesh != NULL) {
        char every_cmd[TOPIC_MAX];
        make_topic(every_cmd, "+", "cmd"); /* its own, all, and the nodes' (one subscription: no duplicates) */
        esp_mqtt_client_subscribe(s_client, every_cmd, 1);
    } else {
        esp_mqtt_client_subscribe(s_client, s_topic_cmd, 1);
        esp_mqtt_client_subscribe(s_client, s_topic_all, 1);
    }
    esp_mqtt_client_subscribe(s_client, s_topic_push_sub, 1);
    /* `online` after the SUBSCRIBEs: the broker handles a client's packets in order, so whoever sees it and
       then sends a command reaches a subscribed device (the session is clean: a command before would be lost). */
    esp_mqtt_client_publish(s_client, s_topic_online, "online", 0, 1, 1);
    xEventGroupSetBits(s_events, CONNECTED_BIT);
    mqtt_link_uplink_changed();
    if (s_mesh != NULL) {
        s_mesh->broker_state(true);
    }
    if (s_push != NULL) {
        s_push->reconnected(); /* a running push acknowledges again, so its pusher resumes */
    }
}

static void mqtt_event_handler(void *arg, esp_event_base_t base, int32_t event_id, void *event_data)
{
    (void)arg;
    (void)base;
    esp_mqtt_event_handle_t event = event_data;
    switch ((esp_mqtt_event_id_t)event_id) {
    case MQTT_EVENT_CONNECTED:
        on_connected();
        break;
    case MQTT_EVENT_DISCONNECTED:
        ESP_LOGW(TAG, "disconnected from the broker");
        xEventGroupClearBits(s_events, CONNECTED_BIT);
        mqtt_link_uplink_changed();
        if (s_mesh != NULL) {
            s_mesh->broker_state(false);
        }
        break;
    case MQTT_EVENT_PUBLISHED:
        if (s_mesh != NULL) {
            s_mesh->published(event->msg_id); /* a node's message the root published: ack it to the node */
        }
        xEventGroupSetBits(s_events, ACKED_BIT);
        break;
    case MQTT_EVENT_SUBSCRIBED:
        xEventGroupSetBits(s_events, ACKED_BIT);
        break;
    case MQTT_EVENT_DATA:
        on_data(event);
        break;
    case MQTT_EVENT_ERROR:
        ESP_LOGW(TAG, "MQTT error event");
        break;
    default:
        break;
    }
}

static void deliver_command(const command_t *cmd)
{
    mqtt_link_command_t command = {
        .kind = cmd->payload != NULL ? MQTT_LINK_COMMAND : MQTT_LINK_COMMAND_TOO_LONG,
        .payload = cmd->payload,
        .len = cmd->len,
        .id = "",
    };
    s_on_command(&command);
}

/* Answers, through the callback, the commands that found the queue full since the last call. */
static void deliver_overflow(void)
{
    for (;;) {
        char id[ID_MAX];
        xSemaphoreTake(s_overflow.lock, portMAX_DELAY);
        bool any = s_overflow.named > 0 || s_overflow.unnamed > 0;
        if (s_overflow.named > 0) {
            strcpy(id, s_overflow.ids[0]);
            memmove(s_overflow.ids[0], s_overflow.ids[1], (size_t)(--s_overflow.named) * ID_MAX);
        } else if (s_overflow.unnamed > 0) {
            s_overflow.unnamed--;
            id[0] = '\0';
        }
        xSemaphoreGive(s_overflow.lock);
        if (!any) {
            return;
        }
        mqtt_link_command_t command = {.kind = MQTT_LINK_COMMAND_QUEUE_FULL, .id = id};
        s_on_command(&command);
    }
}

static void command_task(void *arg)
{
    (void)arg;
    command_t cmd;
    for (;;) {
        if (xQueueReceive(s_commands, &cmd, portMAX_DELAY) == pdPASS) {
            xSemaphoreTake(s_overflow.lock, portMAX_DELAY);
            s_overflow.queued_bytes -= cmd.payload != NULL ? cmd.len : 0;
            xSemaphoreGive(s_overflow.lock);
            deliver_command(&cmd);
            free(cmd.payload);
        }
        /* An overflow happens only while the queue is full, so it is seen here before the task
         * blocks again. */
        deliver_overflow();
    }
}

esp_err_t mqtt_link_start(mqtt_link_command_cb_t on_command)
{
    const agent_config_t *cfg = agent_config_get();
    s_on_command = on_command;
    s_events = xEventGroupCreate();
    s_commands = xQueueCreate(CONFIG_HIL_COMMAND_QUEUE_LEN, sizeof(command_t));
    s_overflow.lock = xSemaphoreCreateMutex();
    s_flush_lock = xSemaphoreCreateMutex();
    if (s_events == NULL || s_commands == NULL || s_overflow.lock == NULL || s_flush_lock == NULL) {
        return ESP_ERR_NO_MEM;
    }
    make_topic(s_topic_cmd, cfg->device_id, "cmd");
    make_topic(s_topic_all, "all", "cmd");
    make_topic(s_topic_online, cfg->device_id, "online");
    make_topic(s_topic_push, cfg->device_id, "push/");
    make_topic(s_topic_push_sub, cfg->device_id, "push/#");

    /* mqtts://: the broker's certificate must chain to broker_ca_cert (esp-mqtt would otherwise need the
       certificate bundle, which a private broker's CA is not in). Kept for the client's whole life. */
    static char broker_ca[AGENT_CONFIG_CA_MAX + 128];
    bool have_broker_ca = agent_config_broker_ca_pem(broker_ca, sizeof(broker_ca));
    if (strncmp(cfg->broker_url, "mqtts://", 8) == 0 && !have_broker_ca) {
        ESP_LOGW(TAG, "mqtts broker but no broker_ca_cert: the TLS handshake will fail "
                      "(config set broker_ca_cert <base64 DER>)");
    }
    esp_mqtt_client_config_t mqtt_cfg = {
        .broker.address.uri = cfg->broker_url,
        .broker.verification.certificate = have_broker_ca ? broker_ca : NULL,
        .credentials.client_id = cfg->device_id,
        .credentials.username = cfg->broker_username[0] ? cfg->broker_username : NULL,
        .credentials.authentication.password = cfg->broker_password[0] ? cfg->broker_password : NULL,
        .session.last_will = {.topic = s_topic_online, .msg = "offline", .qos = 1, .retain = 1},
        .session.keepalive = cfg->mqtt_keepalive_s,
        .network.reconnect_timeout_ms = 1000,
        .buffer.size = MQTT_BUFFER_SIZE,
    };
    s_client = esp_mqtt_client_init(&mqtt_cfg);
    if (s_client == NULL) {
        ESP_LOGE(TAG, "esp_mqtt_client_init failed (check broker_url)");
        return ESP_FAIL;
    }
    esp_err_t err = esp_mqtt_client_register_event(s_client, ESP_EVENT_ANY_ID, mqtt_event_handler, NULL);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_mqtt_client_register_event failed: %s", esp_err_to_name(err));
        return err;
    }
    if (xTaskCreate(command_task, "commands", 8192, NULL, 5, NULL) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    if (s_mesh != NULL) {
        return ESP_OK; /* started when this node is the mesh's root (mqtt_link_mesh_root) */
    }
    err = esp_mqtt_client_start(s_client);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_mqtt_client_start failed: %s", esp_err_to_name(err));
    }
    s_client_started = err == ESP_OK;
    return err;
}

bool mqtt_link_broker_connected(void)
{
    return s_events != NULL && (xEventGroupGetBits(s_events) & CONNECTED_BIT) != 0;
}

void mqtt_link_uplink_changed(void)
{
    if (s_events == NULL) {
        return;
    }
    bool up = mesh_node() ? s_mesh->node_uplink() : mqtt_link_broker_connected();
    if (up) {
        xEventGroupSetBits(s_events, UPLINK_BIT);
    } else {
        xEventGroupClearBits(s_events, UPLINK_BIT);
    }
}

void mqtt_link_mesh_root(bool is_root)
{
    if (s_client == NULL || s_mesh == NULL) {
        return;
    }
    if (is_root && !s_client_started) {
        esp_err_t err = esp_mqtt_client_start(s_client);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_mqtt_client_start failed: %s", esp_err_to_name(err));
        }
        s_client_started = err == ESP_OK;
    } else if (!is_root && s_client_started) {
        esp_err_t err = esp_mqtt_client_stop(s_client);
        if (err != ESP_OK) {
            ESP_LOGW(TAG, "esp_mqtt_client_stop failed: %s", esp_err_to_name(err));
        }
        s_client_started = false;
        xEventGroupClearBits(s_events, CONNECTED_BIT);
        ESP_LOGI(TAG, "not the mesh's root any more: the broker session is closed");
    }
    mqtt_link_uplink_changed();
}

void mqtt_link_inject_command(const char *payload, int len)
{
    if (s_commands == NULL) {
        return;
    }
    if (len > MQTT_LINK_MAX_COMMAND_LEN) {
        queue_command(NULL, len);
        return;
    }
    char *copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        ESP_LOGE(TAG, "no memory for a %d byte command", len);
        return;
    }
    memcpy(copy, payload, (size_t)len);
    copy[len] = '\0';
    queue_command(copy, len);
}

/* QoS 1 on <prefix>/<device_id>/<kind>, on this device's broker session (s_client set). */
static int publish_on_session(const char *device_id, const char *kind, const char *text, bool retain)
{
    char topic[TOPIC_MAX];
    make_topic(topic, device_id, kind);
    int msg_id = esp_mqtt_client_publish(s_client, topic, text, 0, 1, retain ? 1 : 0);
    if (msg_id < 0) {
        ESP_LOGW(TAG, "publish to %s failed (%d)", topic, msg_id);
    }
    return msg_id;
}

int mqtt_link_publish_as(const char *device_id, const char *kind, const char *text, bool retain)
{
    if (s_client == NULL || !s_client_started) {
        return -1;
    }
    return publish_on_session(device_id, kind, text, retain);
}

/* pdMS_TO_TICKS() multiplies in TickType_t (32 bits) and overflows for long waits. */
static TickType_t ms_to_ticks(int timeout_ms)
{
    if (timeout_ms < 0) {
        return portMAX_DELAY;
    }
    uint64_t ticks = (uint64_t)timeout_ms * configTICK_RATE_HZ / 1000;
    return ticks < portMAX_DELAY ? (TickType_t)ticks : portMAX_DELAY - 1;
}

bool mqtt_link_wait_connected(int timeout_ms)
{
    if (s_events == NULL) {
        return false; /* mqtt_link_start() was not called: there is no broker to wait for */
    }
    EventBits_t bits = xEventGroupWaitBits(s_events, UPLINK_BIT, pdFALSE, pdTRUE, ms_to_ticks(timeout_ms));
    return (bits & UPLINK_BIT) != 0;
}

bool mqtt_link_is_connected(void)
{
    return s_events != NULL && (xEventGroupGetBits(s_events) & UPLINK_BIT) != 0;
}

int mqtt_link_publish_text(const char *kind, const char *text, bool retain)
{
    if (s_client == NULL) {
        return -1; /* no broker configured: nothing can be published */
    }
    if (mesh_node()) {
        return s_mesh->forward_publish(kind, text, retain); /* through the root */
    }
    if (s_mesh != NULL && s_mesh->publish_behind_held(kind, text, retain)) {
        return 0; /* a node that became root: after the messages it still holds */
    }
    return mqtt_link_publish_own(kind, text, retain);
}

int mqtt_link_publish_own(const char *kind, const char *text, bool retain)
{
    if (s_client == NULL) {
        return -1;
    }
    return publish_on_session(agent_config_get()->device_id, kind, text, retain);
}

int mqtt_link_publish_json(const char *kind, const cJSON *json, bool retain)
{
    char *text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        return -1;
    }
    int msg_id = mqtt_link_publish_text(kind, text, retain);
    cJSON_free(text);
    return msg_id;
}

/* esp-mqtt keeps a QoS 1 message in its outbox until the broker acknowledges it, so an empty
 * outbox means everything published so far has arrived. Waiting on one message id instead
 * would race: its PUBACK can be handled before the publishing task has the id back. */
bool mqtt_link_flush(int timeout_ms)
{
    if (s_client == NULL) {
        return false;
    }
    if (mesh_node()) {
        return s_mesh->flush(timeout_ms); /* until the root says the broker has them */
    }
    const TickType_t start = xTaskGetTickCount();
    const TickType_t budget = ms_to_ticks(timeout_ms);
    if (s_mesh != NULL && !s_mesh->flush(timeout_ms)) {
        return false; /* a node that became root: what it still holds is not yet with esp-mqtt */
    }
    TickType_t waited = xTaskGetTickCount() - start;
    if (budget != portMAX_DELAY && waited >= budget) {
        return false;
    }
    if (xSemaphoreTake(s_flush_lock, budget == portMAX_DELAY ? budget : budget - waited) != pdTRUE) {
        return false; /* another flush held it for all of this one's time */
    }
    bool empty = false;
    for (;;) {
        xEventGroupClearBits(s_events, ACKED_BIT);
        if (esp_mqtt_client_get_outbox_size(s_client) == 0) {
            empty = true;
            break;
        }
        TickType_t elapsed = xTaskGetTickCount() - start;
        if (budget != portMAX_DELAY && elapsed >= budget) {
            break;
        }
        xEventGroupWaitBits(s_events, ACKED_BIT, pdFALSE, pdTRUE, budget == portMAX_DELAY ? budget : budget - elapsed);
    }
    xSemaphoreGive(s_flush_lock);
    return empty;
}
