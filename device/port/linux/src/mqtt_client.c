/*
 * Host port of esp-mqtt (ESP-IDF v5.5.4, components/mqtt/esp-mqtt @ 6af4446a48ea) over
 * libmosquitto. libmosquitto speaks MQTT 3.1.1 (or 3.1) and TLS; this file reproduces the
 * esp-mqtt API and its observable behaviour: the client task, its state machine, events, outbox,
 * reconnect timing and log lines.
 *
 * How it maps onto libmosquitto:
 *  - Each started client runs its own "mqtt_task" thread, as esp-mqtt does. That thread drives
 *    libmosquitto's network loop (mosquitto_loop()) and delivers every event, so handlers run in
 *    the same single context as on the device. mosquitto_loop_start() is not used because its
 *    reconnect delay has one-second granularity and reports nothing about failed attempts, while
 *    esp-mqtt reconnects every network.reconnect_timeout_ms and posts ERROR / DISCONNECTED for
 *    each failed attempt.
 *  - Each connection attempt uses a fresh libmosquitto instance, destroyed when the connection
 *    ends. Closing it without DISCONNECT is how esp-mqtt's esp_mqtt_abort_connection() closes
 *    the transport, so the broker publishes the last will exactly when the device's would.
 *  - QoS>0 publishes live in this client's own outbox (not libmosquitto's) until acknowledged,
 *    like esp-mqtt's: published while disconnected they are queued and sent after the next
 *    CONNECTED; sent but unacknowledged when the connection drops they are sent again after
 *    reconnecting; after OUTBOX_EXPIRED_TIMEOUT_MS (30 s) they are dropped. Message ids are the
 *    client's own, so MQTT_EVENT_PUBLISHED carries the id esp_mqtt_client_publish() returned.
 *  - MQTT_EVENT_DATA: the message is laid out in an input buffer of buffer.size bytes (default
 *    1024) exactly as esp-mqtt's in_buffer holds it (fixed header, topic, packet id, payload),
 *    so topic and data point into it and are not NUL-terminated. A message that does not fit is
 *    split as esp-mqtt splits it: the first event carries the topic and as much payload as fits
 *    after the header, the next ones carry up to buffer.size bytes each with topic NULL/0 and
 *    current_data_offset advancing; total_data_len is the whole payload length.
 *  - Publishes, subscribes and unsubscribes are handed to libmosquitto from the calling task,
 *    at once: its wake-up socket pair ends the mqtt_task's select() and the mqtt_task writes
 *    them, within microseconds. esp-mqtt writes from the calling task under its lock; here the
 *    mqtt_task writes because libmosquitto's TLS connection must not be written from two
 *    threads. The 50 ms loop slice bounds only how soon the task notices its own state changes.
 *  - Nagle's algorithm stays on, as lwIP leaves it on the chip: an app that wants small messages
 *    to leave at once sets TCP_NODELAY on esp_transport_get_socket() of
 *    esp_mqtt_client_get_transport(client, "mqtt" or "mqtts"), which give libmosquitto's socket.
 *  - Every publish is also appended to the board's HIL_MQTT_TRACE file (host_trace.c), so the
 *    harness can place it in a test's timeline when the app made it; the chip has no such record.
 *  - mqtts:// takes broker.verification.certificate as the only CA. libmosquitto only loads a
 *    CA from a file, so the PEM is written to a private temporary file, deleted when the client
 *    is destroyed. crt_bundle_attach means "trust the system CA store".
 *
 * Known differences from the device:
 *  - ws:// and wss:// (websocket transports) are not available: the task logs and stops.
 *  - verification.common_name, psk_hint_key, use_global_ca_store, ds_data, secure element,
 *    ECDSA peripheral, network.if_name and a custom network.transport are not supported.
 *  - The DUP flag of incoming messages is not visible through libmosquitto: dup is always false.
 *  - While connected, unacknowledged QoS>0 messages are not retransmitted every
 *    message_retransmit_timeout; they are sent again after a reconnect.
 *  - esp_mqtt_client_subscribe_multiple() with different QoS per topic subscribes all of them
 *    with the highest one (libmosquitto sends a single QoS per SUBSCRIBE).
 *  - Pending SUBSCRIBE/UNSUBSCRIBE requests are dropped when the connection ends.
 *  - Keep-alive PINGREQs are sent by libmosquitto after keepalive seconds of silence, not at
 *    keepalive/2; the broker-side timeout (1.5 x keepalive) is the same.
 *
 * Not implemented (an OTA agent's MQTT link does not call them; they are not declared in
 * include/mqtt_client.h, so a caller fails to build): esp_mqtt_client_reconnect(),
 * esp_mqtt_client_disconnect(), esp_mqtt_client_unregister_event(),
 * esp_mqtt_dispatch_custom_event() (so no MQTT_USER_EVENT). With
 * network.disable_auto_reconnect the client therefore stays disconnected once the connection
 * ends, until esp_mqtt_client_stop() and esp_mqtt_client_start().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <mosquitto.h>

#include "esp_err.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "host_board.h"
#include "mqtt_client.h"

ESP_EVENT_DEFINE_BASE(MQTT_EVENTS);

static const char *TAG = "mqtt_client";
/* Tags of the ESP-IDF components whose error lines the device prints for this client. */
static const char *TAG_TRANSPORT = "transport_base";
static const char *TAG_TLS = "esp-tls";
static const char *TAG_MBEDTLS = "esp-tls-mbedtls";

/* esp-mqtt defaults (lib/include/mqtt_config.h) with the ESP-IDF default Kconfig. */
#define MQTT_RECON_DEFAULT_MS               (10 * 1000)
#define MQTT_BUFFER_SIZE_BYTE               1024
#define MQTT_KEEPALIVE_TICK                 (120)
#define MQTT_NETWORK_TIMEOUT_MS             (10000)
#define MQTT_TCP_DEFAULT_PORT               1883
#define MQTT_SSL_DEFAULT_PORT               8883
#define MQTT_WS_DEFAULT_PORT                80
#define MQTT_WSS_DEFAULT_PORT               443
#define OUTBOX_EXPIRED_TIMEOUT_MS           (30 * 1000)
#define MQTT_DEFAULT_RETRANSMIT_TIMEOUT_MS  1000

/* How long the task waits in libmosquitto's select() before checking its own state. */
#define MQTT_LOOP_SLICE_MS                  50
/* Time allowed for a clean DISCONNECT to leave before the connection is dropped. */
#define MQTT_DISCONNECT_FLUSH_MS            1000

/* Error codes and mbedTLS values reported by esp-tls on the device. */
#define HOST_ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME    0x8001
#define HOST_ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST     0x8004
#define HOST_ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT         0x8006
#define HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED       0x801A
#define HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED        0x2700
#define HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE        0x7780
#define HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED           0x08

typedef enum {
    MQTT_STATE_INIT = 0,
    MQTT_STATE_DISCONNECTED,
    MQTT_STATE_CONNECTED,
    MQTT_STATE_WAIT_RECONNECT,
} mqtt_client_state_t;

typedef enum {
    QUEUED,
    TRANSMITTED,
} pending_state_t;

/* One outgoing PUBLISH kept until it is acknowledged (esp-mqtt's outbox item). */
typedef struct outbox_item {
    int msg_id;
    int mosq_mid;               /* id libmosquitto gave it on the current connection, 0 if none */
    char *topic;
    char *payload;
    int len;
    int qos;
    bool retain;
    pending_state_t pending;
    int64_t tick;
    struct outbox_item *next;
} outbox_item_t;

/* A SUBSCRIBE or UNSUBSCRIBE waiting for its acknowledgement. */
typedef struct pending_req {
    int msg_id;
    int mosq_mid;
    bool subscribe;
    struct pending_req *next;
} pending_req_t;

/* The transports esp_mqtt_client_get_transport() hands out: one per scheme, as in esp-mqtt's
 * transport list; their socket is the connection libmosquitto holds at the time. */
struct esp_transport_item_t {
    struct esp_mqtt_client *client;
    const char *scheme;
};

typedef struct handler_entry {
    int32_t event_id;
    esp_event_handler_t handler;
    void *arg;
    struct handler_entry *next;
} handler_entry_t;

typedef struct {
    /* broker */
    char *scheme;
    char *host;
    char *path;
    char *uri;
    int port;
    /* credentials */
    char *username;
    char *password;
    char *client_id;
    bool null_client_id;
    /* session */
    char *will_topic;
    char *will_message;
    int will_length;
    int will_qos;
    int will_retain;
    bool clean_session;
    int keepalive;
    esp_mqtt_protocol_ver_t protocol_ver;
    int message_retransmit_timeout;
    /* network */
    int network_timeout_ms;
    int refresh_connection_after_ms;
    bool auto_reconnect;
    int reconnect_timeout_ms;
    esp_transport_keep_alive_t tcp_keep_alive_cfg;
    /* buffers */
    int buffer_size;
    uint64_t outbox_limit;
    /* TLS, kept by pointer as esp-mqtt keeps them */
    const char *cacert_buf;
    size_t cacert_bytes;
    bool use_global_ca_store;
    bool use_crt_bundle;
    bool use_psk;
    bool skip_cert_common_name_check;
    const char *common_name;
    char *alpn;
    const char *clientcert_buf;
    size_t clientcert_bytes;
    const char *clientkey_buf;
    size_t clientkey_bytes;
    char *clientkey_password;
    /* temporary files holding the PEM data for libmosquitto */
    char *ca_file;
    char *cert_file;
    char *key_file;
} mqtt_config_storage_t;

struct esp_mqtt_client {
    pthread_mutex_t lock;       /* recursive: handlers may call the API from the task */
    pthread_cond_t wake;
    mqtt_config_storage_t *config;

    /* task */
    pthread_t task;
    bool task_running;
    bool run;
    mqtt_client_state_t state;
    bool connecting;
    int wait_timeout_ms;
    int64_t reconnect_tick;
    int64_t refresh_connection_tick;
    int64_t connect_started;

    struct esp_transport_item_t transports[2];   /* "mqtt", "mqtts" */

    /* current libmosquitto connection and what its callbacks reported */
    struct mosquitto *mosq;
    bool tcp_connected;
    int last_sock;
    int sock_error;
    int connack_rc;             /* -1 until a CONNACK arrives */
    bool link_lost;
    int link_rc;
    int link_errno;
    bool tls_error_logged;
    bool verify_failed;
    bool abort_requested;

    /* outbox and pending requests */
    outbox_item_t *outbox;
    pending_req_t *pending;
    int next_msg_id;

    /* events */
    handler_entry_t *handlers;
    esp_mqtt_event_t event;
    esp_mqtt_error_codes_t error_codes;
    char *in_buffer;
    int in_buffer_length;
};

static pthread_once_t s_mosq_once = PTHREAD_ONCE_INIT;
static int s_mosq_init_result = MOSQ_ERR_UNKNOWN;

static void mqtt_lib_init(void)
{
    s_mosq_init_result = mosquitto_lib_init();
}

static int64_t platform_tick_get_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *create_string(const char *ptr, int len)
{
    if (len <= 0) {
        return NULL;
    }
    char *ret = calloc(1, (size_t)len + 1);
    if (ret) {
        memcpy(ret, ptr, (size_t)len);
    }
    return ret;
}

static bool esp_mqtt_set_if_config(char const *const new_config, char **old_config)
{
    if (new_config) {
        free(*old_config);
        *old_config = strdup(new_config);
        if (*old_config == NULL) {
            return false;
        }
    }
    return true;
}

/* ESP32_%02x%02X%02X from the last three bytes of the Wi-Fi station MAC, as
 * platform_create_id_string() builds it, so each virtual board has its own id. */
static char *platform_create_id_string(void)
{
    uint8_t mac[6] = {0};
    char *id_string = calloc(1, 32);
    if (id_string == NULL) {
        return NULL;
    }
    if (esp_read_mac(mac, ESP_MAC_WIFI_STA) != ESP_OK) {
        ESP_LOGW(TAG, "Soc doesn't provide MAC, client could be disconnected in case of device with same name in the broker.");
        sprintf(id_string, "esp_mqtt_client_id");
        return id_string;
    }
    sprintf(id_string, "ESP32_%02x%02X%02X", mac[3], mac[4], mac[5]);
    return id_string;
}

/* ---------------------------------------------------------------- events */

static void esp_mqtt_dispatch_event(esp_mqtt_client_handle_t client)
{
    client->event.client = client;
    client->event.protocol_ver = client->config->protocol_ver;
    client->event.error_handle = &client->error_codes;

    /* Handlers run without the client lock so they can call any API; like the device's
     * esp_event, each handler gets a pointer to one copy of the event structure. */
    handler_entry_t snapshot[16];
    int count = 0;
    pthread_mutex_lock(&client->lock);
    for (handler_entry_t *h = client->handlers; h && count < 16; h = h->next) {
        if (h->event_id == ESP_EVENT_ANY_ID || h->event_id == client->event.event_id) {
            snapshot[count++] = *h;
        }
    }
    esp_mqtt_event_t copy = client->event;
    pthread_mutex_unlock(&client->lock);
    for (int i = 0; i < count; i++) {
        snapshot[i].handler(snapshot[i].arg, MQTT_EVENTS, copy.event_id, &copy);
    }
}

static void esp_mqtt_dispatch_simple(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t id, int msg_id)
{
    client->event.event_id = id;
    client->event.msg_id = msg_id;
    esp_mqtt_dispatch_event(client);
}

static void esp_mqtt_client_dispatch_transport_error(esp_mqtt_client_handle_t client, esp_err_t tls_err,
                                                     int stack_err, int verify_flags, int sock_errno)
{
    client->event.event_id = MQTT_EVENT_ERROR;
    client->error_codes.error_type = MQTT_ERROR_TYPE_TCP_TRANSPORT;
    client->error_codes.connect_return_code = 0;
    client->error_codes.esp_tls_last_esp_err = tls_err;
    client->error_codes.esp_tls_stack_err = stack_err;
    client->error_codes.esp_tls_cert_verify_flags = verify_flags;
    client->error_codes.esp_transport_sock_errno = sock_errno;
    client->event.msg_id = 0;
    esp_mqtt_dispatch_event(client);
}

/* ---------------------------------------------------------------- outbox */

static int outbox_get_size_locked(esp_mqtt_client_handle_t client)
{
    int size = 0;
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        size += it->len + (int)strlen(it->topic) + 4;   /* roughly the PUBLISH packet length */
    }
    return size;
}

static bool msg_id_in_use(esp_mqtt_client_handle_t client, int id)
{
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        if (it->msg_id == id) {
            return true;
        }
    }
    for (pending_req_t *p = client->pending; p; p = p->next) {
        if (p->msg_id == id) {
            return true;
        }
    }
    return false;
}

static int new_msg_id(esp_mqtt_client_handle_t client)
{
    for (;;) {
        client->next_msg_id = client->next_msg_id % 65535 + 1;
        if (!msg_id_in_use(client, client->next_msg_id)) {
            return client->next_msg_id;
        }
    }
}

static outbox_item_t *outbox_enqueue(esp_mqtt_client_handle_t client, const char *topic, const char *data,
                                     int len, int qos, int retain, int msg_id, pending_state_t pending)
{
    outbox_item_t *item = calloc(1, sizeof(*item));
    if (item == NULL) {
        return NULL;
    }
    item->topic = strdup(topic);
    item->payload = malloc(len > 0 ? (size_t)len : 1);
    if (item->topic == NULL || item->payload == NULL) {
        free(item->topic);
        free(item->payload);
        free(item);
        return NULL;
    }
    if (len > 0) {
        memcpy(item->payload, data, (size_t)len);
    }
    item->len = len;
    item->qos = qos;
    item->retain = retain != 0;
    item->msg_id = msg_id;
    item->pending = pending;
    item->tick = platform_tick_get_ms();
    outbox_item_t **link = &client->outbox;
    while (*link) {
        link = &(*link)->next;
    }
    *link = item;
    ESP_LOGD(TAG, "mqtt_enqueue id: %d, type=%d successful", msg_id, 3);
    return item;
}

static void outbox_free_item(outbox_item_t *item)
{
    free(item->topic);
    free(item->payload);
    free(item);
}

static void outbox_delete_item(esp_mqtt_client_handle_t client, outbox_item_t *item)
{
    for (outbox_item_t **link = &client->outbox; *link; link = &(*link)->next) {
        if (*link == item) {
            *link = item->next;
            outbox_free_item(item);
            return;
        }
    }
}

static void outbox_delete_all_items(esp_mqtt_client_handle_t client)
{
    while (client->outbox) {
        outbox_item_t *it = client->outbox;
        client->outbox = it->next;
        outbox_free_item(it);
    }
}

/* esp-mqtt's mqtt_delete_expired_messages() without MQTT_REPORT_DELETED_MESSAGES. */
static void mqtt_delete_expired_messages(esp_mqtt_client_handle_t client)
{
    int64_t now = platform_tick_get_ms();
    pthread_mutex_lock(&client->lock);
    outbox_item_t **link = &client->outbox;
    while (*link) {
        outbox_item_t *it = *link;
        if (now - it->tick > OUTBOX_EXPIRED_TIMEOUT_MS) {
            *link = it->next;
            outbox_free_item(it);
        } else {
            link = &it->next;
        }
    }
    pthread_mutex_unlock(&client->lock);
}

static void pending_clear(esp_mqtt_client_handle_t client)
{
    while (client->pending) {
        pending_req_t *p = client->pending;
        client->pending = p->next;
        free(p);
    }
}

/* ---------------------------------------------------------------- libmosquitto callbacks
 * All of them run in the MQTT task, inside mosquitto_loop(). */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    if (rc != 0) {
        client->connack_rc = rc;
        return;
    }
    pthread_mutex_lock(&client->lock);
    client->connack_rc = 0;
    client->connecting = false;
    client->state = MQTT_STATE_CONNECTED;
    /* Messages sent on the previous connection and not acknowledged go out again. */
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        if (it->pending == TRANSMITTED) {
            it->pending = QUEUED;
        }
        it->mosq_mid = 0;
    }
    client->refresh_connection_tick = platform_tick_get_ms();
    pthread_mutex_unlock(&client->lock);
    ESP_LOGD(TAG, "Connected");
    client->event.session_present = flags & 0x01;
    esp_mqtt_dispatch_simple(client, MQTT_EVENT_CONNECTED, 0);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    client->link_errno = errno;
    client->link_lost = true;
    client->link_rc = rc;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    int msg_id = -1;
    pthread_mutex_lock(&client->lock);
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        if (it->qos > 0 && it->mosq_mid == mid && it->pending == TRANSMITTED) {
            msg_id = it->msg_id;
            outbox_delete_item(client, it);
            break;
        }
    }
    pthread_mutex_unlock(&client->lock);
    if (msg_id >= 0) {
        /* Only acknowledged QoS 1/2 messages produce MQTT_EVENT_PUBLISHED on the device. */
        ESP_LOGD(TAG, "received MQTT_MSG_TYPE_PUBACK, finish QoS1 publish");
        esp_mqtt_dispatch_simple(client, MQTT_EVENT_PUBLISHED, msg_id);
    }
}

static int take_pending(esp_mqtt_client_handle_t client, int mid, bool subscribe)
{
    int msg_id = -1;
    pthread_mutex_lock(&client->lock);
    for (pending_req_t **link = &client->pending; *link; link = &(*link)->next) {
        pending_req_t *p = *link;
        if (p->mosq_mid == mid && p->subscribe == subscribe) {
            msg_id = p->msg_id;
            *link = p->next;
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&client->lock);
    return msg_id;
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted_qos)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    int msg_id = take_pending(client, mid, true);
    if (msg_id < 0) {
        return;
    }
    /* data is the SUBACK payload: one return code per topic, 0x80 for a refused one. */
    int n = qos_count < client->in_buffer_length ? qos_count : client->in_buffer_length;
    client->error_codes.esp_tls_stack_err = 0;
    client->error_codes.esp_tls_last_esp_err = 0;
    client->error_codes.esp_tls_cert_verify_flags = 0;
    client->error_codes.error_type = MQTT_ERROR_TYPE_NONE;
    client->error_codes.connect_return_code = MQTT_CONNECTION_ACCEPTED;
    for (int i = 0; i < n; i++) {
        client->in_buffer[i] = (char)granted_qos[i];
        if ((uint8_t)granted_qos[i] >= 0x80) {
            client->error_codes.error_type = MQTT_ERROR_TYPE_SUBSCRIBE_FAILED;
        }
    }
    client->event.data = client->in_buffer;
    client->event.data_len = n;
    client->event.total_data_len = n;
    client->event.current_data_offset = 0;
    esp_mqtt_dispatch_simple(client, MQTT_EVENT_SUBSCRIBED, msg_id);
}

static void on_unsubscribe(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    int msg_id = take_pending(client, mid, false);
    if (msg_id >= 0) {
        ESP_LOGD(TAG, "UnSubscribe successful");
        esp_mqtt_dispatch_simple(client, MQTT_EVENT_UNSUBSCRIBED, msg_id);
    }
}

/* Lays the PUBLISH out in in_buffer as esp-mqtt's mqtt_message_receive() leaves it and
 * delivers it through deliver_publish()'s sequence of MQTT_EVENT_DATA events. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    char *buf = client->in_buffer;
    const int buf_len = client->in_buffer_length;
    const int topic_len = (int)strlen(msg->topic);
    const int id_len = msg->qos > 0 ? 2 : 0;
    const int payload_len = msg->payloadlen;

    uint8_t fixed[5];
    uint32_t remaining = (uint32_t)(2 + topic_len + id_len + payload_len);
    int fixed_len = 1;
    fixed[0] = (uint8_t)(0x30 | ((msg->qos & 3) << 1) | (msg->retain ? 1 : 0));
    do {
        uint8_t b = remaining % 128;
        remaining /= 128;
        fixed[fixed_len++] = (uint8_t)(b | (remaining ? 0x80 : 0));
    } while (remaining && fixed_len < 5);

    const int header_len = fixed_len + 2 + topic_len + id_len;
    if (header_len > buf_len) {
        ESP_LOGE(TAG, "%s: message is too big, insufficient buffer size", "mqtt_message_receive");
        esp_mqtt_client_dispatch_transport_error(client, 0, 0, 0, 0);
        ESP_LOGE(TAG, "%s: mqtt_message_receive() returned %d", "mqtt_process_receive", -2);
        client->abort_requested = true;
        return;
    }
    memcpy(buf, fixed, (size_t)fixed_len);
    buf[fixed_len] = (char)(topic_len >> 8);
    buf[fixed_len + 1] = (char)(topic_len & 0xff);
    memcpy(buf + fixed_len + 2, msg->topic, (size_t)topic_len);
    if (id_len) {
        buf[fixed_len + 2 + topic_len] = (char)(msg->mid >> 8);
        buf[fixed_len + 3 + topic_len] = (char)(msg->mid & 0xff);
    }
    int first = payload_len < buf_len - header_len ? payload_len : buf_len - header_len;
    if (first > 0) {
        memcpy(buf + header_len, msg->payload, (size_t)first);
    }

    client->event.retain = msg->retain;
    client->event.msg_id = msg->qos > 0 ? msg->mid : 0;
    client->event.qos = msg->qos;
    client->event.dup = false;
    client->event.total_data_len = payload_len;
    client->event.event_id = MQTT_EVENT_DATA;
    client->event.data = first > 0 ? buf + header_len : NULL;
    client->event.data_len = first;
    client->event.current_data_offset = 0;
    client->event.topic = buf + fixed_len + 2;
    client->event.topic_len = topic_len;
    esp_mqtt_dispatch_event(client);

    int offset = first;
    while (offset < payload_len) {
        int chunk = payload_len - offset < buf_len ? payload_len - offset : buf_len;
        memcpy(buf, (const char *)msg->payload + offset, (size_t)chunk);
        client->event.event_id = MQTT_EVENT_DATA;
        client->event.data = buf;
        client->event.data_len = chunk;
        client->event.current_data_offset = offset;
        client->event.topic = NULL;
        client->event.topic_len = 0;
        esp_mqtt_dispatch_event(client);
        offset += chunk;
    }
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    (void)mosq;
    esp_mqtt_client_handle_t client = obj;
    if (strstr(str, "certificate verify failed")) {
        client->verify_failed = true;
    }
    if (strstr(str, "OpenSSL Error")) {
        client->tls_error_logged = true;
    }
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) {
        ESP_LOGD(TAG, "libmosquitto: %s", str);
    }
}

static int on_key_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    esp_mqtt_client_handle_t client = mosquitto_userdata((struct mosquitto *)userdata);
    if (client == NULL || client->config->clientkey_password == NULL) {
        return 0;
    }
    snprintf(buf, (size_t)size, "%s", client->config->clientkey_password);
    return (int)strlen(buf);
}

/* ---------------------------------------------------------------- TLS material */

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes certificate or key data, given as esp-mqtt accepts it (NUL-terminated PEM with len 0,
 * or PEM/DER with its length), as a PEM file readable only by this process. */
static char *mqtt_write_pem_file(const char *data, size_t len, const char *what, const char *pem_label)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/esp_mqtt_%s_XXXXXX", dir && dir[0] ? dir : "/tmp", what) < 0) {
        return NULL;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        ESP_LOGE(TAG, "Cannot create a temporary file for the %s: %s", what, strerror(errno));
        free(path);
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f != NULL;
    if (ok && (len == 0 || memmem(data, len, "-----BEGIN ", 11) != NULL)) {
        size_t n = len ? len : strlen(data);
        while (n > 0 && data[n - 1] == '\0') {
            n--;
        }
        ok = fwrite(data, 1, n, f) == n && fputc('\n', f) != EOF;
    } else if (ok) {
        /* DER: base64 in 64-column lines between the PEM markers. */
        ok = fprintf(f, "-----BEGIN %s-----\n", pem_label) > 0;
        const unsigned char *in = (const unsigned char *)data;
        int col = 0;
        for (size_t i = 0; ok && i < len; i += 3) {
            uint32_t v = (uint32_t)in[i] << 16;
            if (i + 1 < len) {
                v |= (uint32_t)in[i + 1] << 8;
            }
            if (i + 2 < len) {
                v |= in[i + 2];
            }
            char q[4] = {s_b64[(v >> 18) & 0x3f], s_b64[(v >> 12) & 0x3f],
                         i + 1 < len ? s_b64[(v >> 6) & 0x3f] : '=', i + 2 < len ? s_b64[v & 0x3f] : '='};
            ok = fwrite(q, 1, 4, f) == 4;
            col += 4;
            if (col == 64) {
                fputc('\n', f);
                col = 0;
            }
        }
        ok = ok && fprintf(f, "%s-----END %s-----\n", col ? "\n" : "", pem_label) > 0;
    }
    if (f == NULL || fclose(f) != 0 || !ok) {
        if (f == NULL) {
            close(fd);
        }
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

static void mqtt_remove_tls_files(mqtt_config_storage_t *cfg)
{
    char **files[] = {&cfg->ca_file, &cfg->cert_file, &cfg->key_file};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (*files[i]) {
            unlink(*files[i]);
            free(*files[i]);
            *files[i] = NULL;
        }
    }
}

/* ---------------------------------------------------------------- configuration */

static void esp_mqtt_destroy_config(esp_mqtt_client_handle_t client)
{
    mqtt_config_storage_t *cfg = client->config;
    if (cfg == NULL) {
        return;
    }
    mqtt_remove_tls_files(cfg);
    free(cfg->scheme);
    free(cfg->host);
    free(cfg->path);
    free(cfg->uri);
    free(cfg->username);
    if (cfg->password) {
        memset(cfg->password, 0, strlen(cfg->password));
        free(cfg->password);
    }
    free(cfg->client_id);
    free(cfg->will_topic);
    free(cfg->will_message);
    free(cfg->alpn);
    if (cfg->clientkey_password) {
        memset(cfg->clientkey_password, 0, strlen(cfg->clientkey_password));
        free(cfg->clientkey_password);
    }
    free(cfg);
    client->config = NULL;
}

esp_err_t esp_mqtt_client_set_uri(esp_mqtt_client_handle_t client, const char *uri)
{
    if (client == NULL || uri == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    /* scheme://[user[:password]@]host[:port][/path][?query] */
    const char *sep = strstr(uri, "://");
    const char *host_start = sep ? sep + 3 : NULL;
    const char *authority_end = host_start ? host_start + strcspn(host_start, "/?#") : NULL;
    if (sep == NULL || sep == uri || host_start == authority_end) {
        ESP_LOGE(TAG, "Error parse uri = %s", uri);
        return ESP_FAIL;
    }
    const char *at = memchr(host_start, '@', (size_t)(authority_end - host_start));
    const char *userinfo = at ? host_start : NULL;
    const char *host = at ? at + 1 : host_start;
    const char *host_end;
    const char *port = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(authority_end - host));
        if (close == NULL) {
            ESP_LOGE(TAG, "Error parse uri = %s", uri);
            return ESP_FAIL;
        }
        host_end = close;
        host++;
        if (close + 1 < authority_end && close[1] == ':') {
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(authority_end - host));
        host_end = colon ? colon : authority_end;
        port = colon ? colon + 1 : NULL;
    }
    if (host_end == host) {
        ESP_LOGE(TAG, "Error parse uri = %s", uri);
        return ESP_FAIL;
    }

    pthread_mutex_lock(&client->lock);
    mqtt_config_storage_t *cfg = client->config;
    free(cfg->scheme);
    free(cfg->host);
    free(cfg->path);
    cfg->scheme = create_string(uri, (int)(sep - uri));
    cfg->host = create_string(host, (int)(host_end - host));
    cfg->path = NULL;
    if (*authority_end == '/' || *authority_end == '?') {
        /* esp-mqtt keeps path and query together, "/?query" when there is no path. */
        if (asprintf(&cfg->path, "%s%s", *authority_end == '?' ? "/" : "", authority_end) < 0) {
            cfg->path = NULL;
            pthread_mutex_unlock(&client->lock);
            ESP_LOGE(TAG, "%s(%d): %s", __FUNCTION__, __LINE__, "Memory exhausted");
            return ESP_ERR_NO_MEM;
        }
    }
    if (port && port < authority_end) {
        cfg->port = (int)strtol(port, NULL, 10);
    }
    if (userinfo) {
        char *user_info = create_string(userinfo, (int)(at - userinfo));
        if (user_info) {
            char *pass = strchr(user_info, ':');
            if (pass) {
                pass[0] = 0; //terminal username
                pass++;
                free(cfg->password);
                cfg->password = strdup(pass);
            }
            free(cfg->username);
            cfg->username = strdup(user_info);
            free(user_info);
        }
    }
    pthread_mutex_unlock(&client->lock);
    return ESP_OK;
}

static esp_err_t esp_mqtt_check_cfg_conflict(const mqtt_config_storage_t *cfg, const esp_mqtt_client_config_t *user_cfg)
{
    if (cfg == NULL || user_cfg == NULL) {
        ESP_LOGE(TAG, "Invalid configuration");
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t ret = ESP_OK;
    bool ssl_cfg_enabled = cfg->use_global_ca_store || cfg->cacert_buf || cfg->clientcert_buf || cfg->use_psk || cfg->alpn;
    bool is_ssl_scheme = false;
    if (cfg->scheme) {
        is_ssl_scheme = (strcasecmp(cfg->scheme, MQTT_OVER_WSS_SCHEME) == 0) || (strcasecmp(cfg->scheme, MQTT_OVER_SSL_SCHEME) == 0);
    } else {
        is_ssl_scheme = (user_cfg->broker.address.transport == MQTT_TRANSPORT_OVER_SSL) ||
                        (user_cfg->broker.address.transport == MQTT_TRANSPORT_OVER_WSS);
    }
    if (!is_ssl_scheme && ssl_cfg_enabled) {
        if (cfg->uri) {
            ESP_LOGW(TAG, "SSL related configs set, but the URI scheme specifies a non-SSL scheme, scheme = %s", cfg->scheme);
        } else {
            ESP_LOGW(TAG, "SSL related configs set, but the transport protocol is a non-SSL scheme, transport = %d", user_cfg->broker.address.transport);
        }
        ret = ESP_ERR_INVALID_ARG;
    }
    if (cfg->uri && user_cfg->broker.address.transport) {
        ESP_LOGW(TAG, "Transport config set, but overridden by scheme from URI: transport = %d, uri scheme = %s", user_cfg->broker.address.transport, cfg->scheme);
        ret = ESP_ERR_INVALID_ARG;
    }
    return ret;
}

/* Follows esp-mqtt's esp_mqtt_set_config(): unset fields keep their previous value or get the
 * default, set fields override. */
esp_err_t esp_mqtt_set_config(esp_mqtt_client_handle_t client, const esp_mqtt_client_config_t *config)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&client->lock);
    esp_err_t err = ESP_OK;
    if (!client->config) {
        client->config = calloc(1, sizeof(mqtt_config_storage_t));
        if (client->config == NULL) {
            pthread_mutex_unlock(&client->lock);
            return ESP_ERR_NO_MEM;
        }
        client->config->clean_session = true;
    }
    mqtt_config_storage_t *cfg = client->config;
    /* TLS data may have changed: write the files again at the next connection. */
    mqtt_remove_tls_files(cfg);

    int buffer_size = config->buffer.size;
    if (buffer_size <= 0) {
        buffer_size = MQTT_BUFFER_SIZE_BYTE;
    }
    char *in_buffer = malloc((size_t)buffer_size);
    if (in_buffer == NULL) {
        err = ESP_ERR_NO_MEM;
        goto _mqtt_set_config_failed;
    }
    free(client->in_buffer);
    client->in_buffer = in_buffer;
    client->in_buffer_length = buffer_size;
    cfg->buffer_size = buffer_size;

    cfg->message_retransmit_timeout = config->session.message_retransmit_timeout;
    if (config->session.message_retransmit_timeout <= 0) {
        cfg->message_retransmit_timeout = MQTT_DEFAULT_RETRANSMIT_TIMEOUT_MS;
    }
    if (config->broker.address.port) {
        cfg->port = (int)config->broker.address.port;
    }
    if (config->network.tcp_keep_alive_cfg.keep_alive_enable) {
        cfg->tcp_keep_alive_cfg = config->network.tcp_keep_alive_cfg;
    }

    err = ESP_ERR_NO_MEM;
    if (!esp_mqtt_set_if_config(config->broker.address.hostname, &cfg->host) ||
            !esp_mqtt_set_if_config(config->broker.address.path, &cfg->path) ||
            !esp_mqtt_set_if_config(config->credentials.username, &cfg->username) ||
            !esp_mqtt_set_if_config(config->credentials.authentication.password, &cfg->password)) {
        goto _mqtt_set_config_failed;
    }
    cfg->null_client_id = config->credentials.set_null_client_id;
    if (!config->credentials.set_null_client_id) {
        if (config->credentials.client_id) {
            if (!esp_mqtt_set_if_config(config->credentials.client_id, &cfg->client_id)) {
                goto _mqtt_set_config_failed;
            }
        } else if (cfg->client_id == NULL) {
            cfg->client_id = platform_create_id_string();
        }
        if (cfg->client_id == NULL) {
            goto _mqtt_set_config_failed;
        }
        ESP_LOGD(TAG, "MQTT client_id=%s", cfg->client_id);
    }
    if (!esp_mqtt_set_if_config(config->broker.address.uri, &cfg->uri) ||
            !esp_mqtt_set_if_config(config->session.last_will.topic, &cfg->will_topic)) {
        goto _mqtt_set_config_failed;
    }
    if (config->session.last_will.msg_len && config->session.last_will.msg) {
        free(cfg->will_message);
        cfg->will_message = malloc((size_t)config->session.last_will.msg_len);
        if (cfg->will_message == NULL) {
            goto _mqtt_set_config_failed;
        }
        memcpy(cfg->will_message, config->session.last_will.msg, (size_t)config->session.last_will.msg_len);
        cfg->will_length = config->session.last_will.msg_len;
    } else if (config->session.last_will.msg) {
        free(cfg->will_message);
        cfg->will_message = strdup(config->session.last_will.msg);
        if (cfg->will_message == NULL) {
            goto _mqtt_set_config_failed;
        }
        cfg->will_length = (int)strlen(config->session.last_will.msg);
    }
    if (config->session.last_will.qos) {
        cfg->will_qos = config->session.last_will.qos;
    }
    if (config->session.last_will.retain) {
        cfg->will_retain = config->session.last_will.retain;
    }
    if (config->session.disable_clean_session == cfg->clean_session) {
        cfg->clean_session = !config->session.disable_clean_session;
        if (!cfg->clean_session && config->credentials.set_null_client_id) {
            ESP_LOGE(TAG, "Clean Session flag must be true if client has a null id");
        }
    }
    if (config->session.keepalive) {
        cfg->keepalive = config->session.keepalive;
    }
    if (cfg->keepalive == 0) {
        cfg->keepalive = MQTT_KEEPALIVE_TICK;
    }
    if (config->session.disable_keepalive) {
        cfg->keepalive = 0;
    }
    if (config->session.protocol_ver) {
        cfg->protocol_ver = config->session.protocol_ver;
    }
    if (cfg->protocol_ver == MQTT_PROTOCOL_UNDEFINED) {
        cfg->protocol_ver = MQTT_PROTOCOL_V_3_1_1;
    } else if (cfg->protocol_ver == MQTT_PROTOCOL_V_5) {
        ESP_LOGE(TAG, "Please first enable MQTT_PROTOCOL_5 feature in menuconfig");
        err = ESP_FAIL;
        goto _mqtt_set_config_failed;
    }

    cfg->network_timeout_ms = config->network.timeout_ms;
    if (cfg->network_timeout_ms <= 0) {
        cfg->network_timeout_ms = MQTT_NETWORK_TIMEOUT_MS;
    }
    if (config->network.refresh_connection_after_ms) {
        cfg->refresh_connection_after_ms = config->network.refresh_connection_after_ms;
    }
    cfg->auto_reconnect = !config->network.disable_auto_reconnect;
    cfg->reconnect_timeout_ms = config->network.reconnect_timeout_ms ? config->network.reconnect_timeout_ms
                                : MQTT_RECON_DEFAULT_MS;
    if (config->network.transport) {
        ESP_LOGW(TAG, "A custom network.transport is not supported by the host port, it is ignored");
    }
    if (config->network.if_name) {
        ESP_LOGW(TAG, "network.if_name is not supported by the host port, it is ignored");
    }

    if (config->broker.verification.alpn_protos && config->broker.verification.alpn_protos[0]) {
        free(cfg->alpn);
        cfg->alpn = strdup(config->broker.verification.alpn_protos[0]);
        if (config->broker.verification.alpn_protos[1]) {
            ESP_LOGW(TAG, "libmosquitto offers one ALPN protocol: only \"%s\" is sent", cfg->alpn);
        }
    }

    // configure ssl related parameters
    cfg->use_global_ca_store = config->broker.verification.use_global_ca_store;
    cfg->cacert_buf = config->broker.verification.certificate;
    cfg->cacert_bytes = config->broker.verification.certificate_len;
    cfg->use_psk = config->broker.verification.psk_hint_key != NULL;
    cfg->use_crt_bundle = config->broker.verification.crt_bundle_attach != NULL;
    cfg->clientcert_buf = config->credentials.authentication.certificate;
    cfg->clientcert_bytes = config->credentials.authentication.certificate_len;
    cfg->clientkey_buf = config->credentials.authentication.key;
    cfg->clientkey_bytes = config->credentials.authentication.key_len;
    cfg->skip_cert_common_name_check = config->broker.verification.skip_cert_common_name_check;
    cfg->common_name = config->broker.verification.common_name;
    if (cfg->common_name && !cfg->skip_cert_common_name_check) {
        ESP_LOGW(TAG, "verification.common_name is not supported by the host port: the broker host name is checked");
    }
    if (config->credentials.authentication.use_secure_element || config->credentials.authentication.ds_data ||
            config->credentials.authentication.use_ecdsa_peripheral) {
        ESP_LOGE(TAG, "Secure element, DS and ECDSA peripherals are not available on the host port");
    }
    if (config->credentials.authentication.key_password && config->credentials.authentication.key_password_len) {
        free(cfg->clientkey_password);
        cfg->clientkey_password = strndup(config->credentials.authentication.key_password,
                                          (size_t)config->credentials.authentication.key_password_len);
        if (cfg->clientkey_password == NULL) {
            goto _mqtt_set_config_failed;
        }
    }

    if (config->broker.address.transport) {
        free(cfg->scheme);
        cfg->scheme = NULL;
        switch (config->broker.address.transport) {
        case MQTT_TRANSPORT_OVER_TCP:
            cfg->scheme = strdup(MQTT_OVER_TCP_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_SSL:
            cfg->scheme = strdup(MQTT_OVER_SSL_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_WS:
            cfg->scheme = strdup(MQTT_OVER_WS_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_WSS:
            cfg->scheme = strdup(MQTT_OVER_WSS_SCHEME);
            break;
        default:
            break;
        }
    }

    // Set uri at the end of config to override separately configured uri elements
    if (config->broker.address.uri) {
        if (esp_mqtt_client_set_uri(client, cfg->uri) != ESP_OK) {
            err = ESP_FAIL;
            goto _mqtt_set_config_failed;
        }
    }
    cfg->outbox_limit = config->outbox.limit;
    err = esp_mqtt_check_cfg_conflict(cfg, config);
    pthread_mutex_unlock(&client->lock);
    return err;

_mqtt_set_config_failed:
    esp_mqtt_destroy_config(client);
    pthread_mutex_unlock(&client->lock);
    return err;
}

/* ---------------------------------------------------------------- connection */

static bool mqtt_is_ssl(const mqtt_config_storage_t *cfg)
{
    return cfg->scheme && strcasecmp(cfg->scheme, MQTT_OVER_SSL_SCHEME) == 0;
}

/* The TLS part of esp_mqtt_set_ssl_transport_properties() for a new libmosquitto instance. */
static esp_err_t mqtt_setup_tls(esp_mqtt_client_handle_t client, struct mosquitto *mosq)
{
    mqtt_config_storage_t *cfg = client->config;
    const char *capath = NULL;

    if (cfg->use_crt_bundle) {
        capath = "/etc/ssl/certs";  /* the system store stands in for the ESP x509 bundle */
        mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    } else if (cfg->use_global_ca_store) {
        ESP_LOGE(TAG_MBEDTLS, "global_cacert is NULL");
        return ESP_FAIL;
    } else if (cfg->cacert_buf) {
        if (cfg->ca_file == NULL) {
            cfg->ca_file = mqtt_write_pem_file(cfg->cacert_buf, cfg->cacert_bytes, "ca", "CERTIFICATE");
            if (cfg->ca_file == NULL) {
                return ESP_FAIL;
            }
        }
    } else {
        ESP_LOGE(TAG_MBEDTLS, "No server verification option set in esp_tls_cfg_t structure. Check esp_tls API reference");
        ESP_LOGE(TAG_TLS, "create_ssl_handle failed");
        return ESP_FAIL;
    }
    if (cfg->clientcert_buf && cfg->clientkey_buf) {
        if (cfg->cert_file == NULL) {
            cfg->cert_file = mqtt_write_pem_file(cfg->clientcert_buf, cfg->clientcert_bytes, "cert", "CERTIFICATE");
        }
        if (cfg->key_file == NULL) {
            cfg->key_file = mqtt_write_pem_file(cfg->clientkey_buf, cfg->clientkey_bytes, "key", "PRIVATE KEY");
        }
        if (cfg->cert_file == NULL || cfg->key_file == NULL) {
            return ESP_FAIL;
        }
    }
    int rc = mosquitto_tls_set(mosq, cfg->ca_file, capath, cfg->cert_file, cfg->key_file,
                               cfg->clientkey_password ? on_key_password : NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_x509_crt_parse of CA cert returned -0x%04X", 0x2180);
        return ESP_FAIL;
    }
    mosquitto_tls_opts_set(mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
    if (cfg->skip_cert_common_name_check) {
        mosquitto_tls_insecure_set(mosq, true);
    }
    if (cfg->alpn) {
        mosquitto_string_option(mosq, MOSQ_OPT_TLS_ALPN, cfg->alpn);
    }
    return ESP_OK;
}

static void mqtt_log_transport_connect_failed(esp_mqtt_client_handle_t client, esp_err_t tls_err)
{
    if (mqtt_is_ssl(client->config)) {
        ESP_LOGE(TAG_TLS, "Failed to open new connection");
        ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection");
    } else {
        ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection: %d", tls_err);
    }
    ESP_LOGE(TAG, "Error transport connect");
}

/* esp_mqtt_abort_connection(): close the transport without DISCONNECT, post DISCONNECTED and
 * wait reconnect_timeout_ms. */
static void esp_mqtt_abort_connection(esp_mqtt_client_handle_t client)
{
    pthread_mutex_lock(&client->lock);
    struct mosquitto *mosq = client->mosq;
    client->mosq = NULL;
    client->connecting = false;
    client->wait_timeout_ms = client->config->reconnect_timeout_ms;
    client->reconnect_tick = platform_tick_get_ms();
    client->state = MQTT_STATE_WAIT_RECONNECT;
    pending_clear(client);
    pthread_mutex_unlock(&client->lock);
    if (mosq) {
        mosquitto_destroy(mosq);
    }
    ESP_LOGD(TAG, "Reconnect after %d ms", client->wait_timeout_ms);
    esp_mqtt_dispatch_simple(client, MQTT_EVENT_DISCONNECTED, 0);
}

/* A failed transport connect: esp-tls / tcp_transport lines, ERROR event, DISCONNECTED. */
static void mqtt_transport_connect_failed(esp_mqtt_client_handle_t client, bool timeout)
{
    bool ssl = mqtt_is_ssl(client->config);
    int sock_errno = client->sock_error ? client->sock_error : (client->tcp_connected ? 0 : client->link_errno);
    if (timeout && !client->tcp_connected) {
        ESP_LOGE(TAG_TLS, "[sock=%d] select() timeout", client->last_sock);
        mqtt_log_transport_connect_failed(client, HOST_ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT);
        esp_mqtt_client_dispatch_transport_error(client, HOST_ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT, 0, 0, 0);
    } else if (ssl && client->tcp_connected) {
        int code = client->verify_failed ? HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED : HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", code);
        if (client->verify_failed) {
            ESP_LOGI(TAG_MBEDTLS, "Failed to verify peer certificate!");
        }
        mqtt_log_transport_connect_failed(client, HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED);
        esp_mqtt_client_dispatch_transport_error(client, HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED, code,
                client->verify_failed ? HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED : 0, 0);
    } else {
        ESP_LOGE(TAG_TLS, "[sock=%d] delayed connect error: %s", client->last_sock,
                 strerror(sock_errno ? sock_errno : ECONNREFUSED));
        mqtt_log_transport_connect_failed(client, HOST_ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST);
        esp_mqtt_client_dispatch_transport_error(client, HOST_ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST, 0, 0, sock_errno);
    }
    esp_mqtt_abort_connection(client);
}

/* The connection broke after the transport was up (esp_mqtt_handle_transport_read_error()). */
static void mqtt_transport_read_failed(esp_mqtt_client_handle_t client, const char *caller)
{
    int err_no = client->link_errno;
    if (client->link_rc == MOSQ_ERR_CONN_LOST || err_no == 0 || err_no == EAGAIN) {
        ESP_LOGE(TAG, "%s: transport_read(): EOF", "esp_mqtt_handle_transport_read_error");
        err_no = ENOTCONN;
    }
    ESP_LOGE(TAG, "%s: transport_read() error: errno=%d", "esp_mqtt_handle_transport_read_error", err_no);
    esp_mqtt_client_dispatch_transport_error(client, 0, 0, 0, err_no);
    ESP_LOGE(TAG, "%s: mqtt_message_receive() returned %d", caller, -2);
}

static void mqtt_apply_tcp_keepalive(esp_mqtt_client_handle_t client)
{
    esp_transport_keep_alive_t *ka = &client->config->tcp_keep_alive_cfg;
    int fd = client->mosq ? mosquitto_socket(client->mosq) : -1;
    if (!ka->keep_alive_enable || fd < 0) {
        return;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    if (ka->keep_alive_idle > 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka->keep_alive_idle, sizeof(int));
    }
    if (ka->keep_alive_interval > 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka->keep_alive_interval, sizeof(int));
    }
    if (ka->keep_alive_count > 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &ka->keep_alive_count, sizeof(int));
    }
}

/* The task gives up on a configuration it cannot use, as esp_mqtt_task() sets run = false. */
static void mqtt_task_give_up(esp_mqtt_client_handle_t client)
{
    pthread_mutex_lock(&client->lock);
    client->run = false;
    pthread_mutex_unlock(&client->lock);
}

/* MQTT_STATE_INIT: a new libmosquitto instance, configured from the current config, starts a
 * non-blocking connect. Returns false when the attempt failed at once (already reported). */
static bool mqtt_start_connect(esp_mqtt_client_handle_t client)
{
    mqtt_config_storage_t *cfg = client->config;

    if (cfg->scheme == NULL) {
        ESP_LOGE(TAG, "No scheme found");
        mqtt_task_give_up(client);
        return false;
    }
    bool ssl = mqtt_is_ssl(cfg);
    if (strcasecmp(cfg->scheme, MQTT_OVER_WS_SCHEME) == 0 || strcasecmp(cfg->scheme, MQTT_OVER_WSS_SCHEME) == 0) {
        ESP_LOGE(TAG, "Please enable MQTT_ENABLE_WS to use %s (websocket transports are not available on the host port)", cfg->scheme);
        ESP_LOGE(TAG, "Failed to create transport list");
        mqtt_task_give_up(client);
        return false;
    }
    if (!ssl && strcasecmp(cfg->scheme, MQTT_OVER_TCP_SCHEME) != 0) {
        ESP_LOGE(TAG, "Not support this mqtt scheme %s", cfg->scheme);
        ESP_LOGE(TAG, "Failed to create transport list");
        mqtt_task_give_up(client);
        return false;
    }
    if (cfg->port == 0) {
        cfg->port = ssl ? MQTT_SSL_DEFAULT_PORT : MQTT_TCP_DEFAULT_PORT;
    }

    client->connack_rc = -1;
    client->link_lost = false;
    client->link_rc = 0;
    client->link_errno = 0;
    client->tcp_connected = false;
    client->sock_error = 0;
    client->last_sock = -1;
    client->tls_error_logged = false;
    client->verify_failed = false;
    client->abort_requested = false;

    struct mosquitto *mosq = mosquitto_new(cfg->null_client_id ? NULL : cfg->client_id, cfg->clean_session, client);
    if (mosq == NULL) {
        ESP_LOGE(TAG, "MQTT connect failed");
        esp_mqtt_abort_connection(client);
        return false;
    }
    mosquitto_threaded_set(mosq, true);
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         cfg->protocol_ver == MQTT_PROTOCOL_V_3_1 ? MQTT_PROTOCOL_V31 : MQTT_PROTOCOL_V311);
    mosquitto_connect_with_flags_callback_set(mosq, on_connect);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_unsubscribe_callback_set(mosq, on_unsubscribe);
    mosquitto_message_callback_set(mosq, on_message);
    mosquitto_log_callback_set(mosq, on_log);
    /* esp-mqtt does not limit messages in flight; libmosquitto's default is 20. */
    mosquitto_max_inflight_messages_set(mosq, 0);
    if (cfg->username) {
        mosquitto_username_pw_set(mosq, cfg->username, cfg->password);
    }
    if (cfg->will_topic) {
        if (mosquitto_will_set(mosq, cfg->will_topic, cfg->will_length, cfg->will_message, cfg->will_qos,
                               cfg->will_retain != 0) != MOSQ_ERR_SUCCESS) {
            ESP_LOGE(TAG, "Connect message cannot be created");
            mosquitto_destroy(mosq);
            ESP_LOGE(TAG, "MQTT connect failed");
            esp_mqtt_abort_connection(client);
            return false;
        }
    }
    if (ssl && mqtt_setup_tls(client, mosq) != ESP_OK) {
        mosquitto_destroy(mosq);
        mqtt_log_transport_connect_failed(client, HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED);
        esp_mqtt_client_dispatch_transport_error(client, HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED, 0, 0, 0);
        esp_mqtt_abort_connection(client);
        return false;
    }

    int keepalive = cfg->keepalive;
    if (keepalive > 0 && keepalive < 5) {
        keepalive = 5;  /* libmosquitto's minimum */
    }
    client->connect_started = platform_tick_get_ms();
    pthread_mutex_lock(&client->lock);
    client->mosq = mosq;
    client->connecting = true;
    pthread_mutex_unlock(&client->lock);

    errno = 0;
    int rc = mosquitto_connect_async(mosq, cfg->host ? cfg->host : "", cfg->port, keepalive);
    client->last_sock = mosquitto_socket(mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        int err_no = errno;
        if (rc == MOSQ_ERR_EAI || rc == MOSQ_ERR_LOOKUP) {
            ESP_LOGE(TAG_TLS, "couldn't get hostname for :%s: getaddrinfo() returns %d, addrinfo=%p",
                     cfg->host ? cfg->host : "", 202, (void *)NULL);
            mqtt_log_transport_connect_failed(client, HOST_ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME);
            esp_mqtt_client_dispatch_transport_error(client, HOST_ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME, 0, 0, 0);
            esp_mqtt_abort_connection(client);
        } else if (rc == MOSQ_ERR_TLS) {
            client->tcp_connected = true;
            mqtt_transport_connect_failed(client, false);
        } else {
            client->sock_error = err_no ? err_no : ECONNREFUSED;
            mqtt_transport_connect_failed(client, false);
        }
        return false;
    }
    return true;
}

/* Sends queued outbox items, as the CONNECTED state of esp_mqtt_task() does. */
static void mqtt_send_queued(esp_mqtt_client_handle_t client)
{
    pthread_mutex_lock(&client->lock);
    outbox_item_t *it = client->outbox;
    while (it && client->mosq && client->state == MQTT_STATE_CONNECTED) {
        outbox_item_t *next = it->next;
        if (it->pending == QUEUED) {
            int mid = 0;
            int rc = mosquitto_publish(client->mosq, &mid, it->topic, it->len, it->payload, it->qos, it->retain);
            if (rc != MOSQ_ERR_SUCCESS) {
                ESP_LOGE(TAG, "Error to resend data ");
                break;
            }
            if (it->qos == 0) {
                outbox_delete_item(client, it);
            } else {
                it->mosq_mid = mid;
                it->pending = TRANSMITTED;
                it->tick = platform_tick_get_ms();
            }
        }
        it = next;
    }
    pthread_mutex_unlock(&client->lock);
}

/* Sends DISCONNECT and gives it a moment to leave before the connection is dropped. */
static void send_disconnect_msg(esp_mqtt_client_handle_t client)
{
    if (client->mosq == NULL) {
        return;
    }
    if (mosquitto_disconnect(client->mosq) != MOSQ_ERR_SUCCESS) {
        ESP_LOGE(TAG, "Error sending disconnect message");
        return;
    }
    int64_t deadline = platform_tick_get_ms() + MQTT_DISCONNECT_FLUSH_MS;
    client->link_lost = false;
    while (!client->link_lost && platform_tick_get_ms() < deadline) {
        if (mosquitto_loop(client->mosq, MQTT_LOOP_SLICE_MS, 1) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
}

static void mqtt_step_connecting(esp_mqtt_client_handle_t client)
{
    int fd = mosquitto_socket(client->mosq);
    if (fd >= 0) {
        client->last_sock = fd;
        int err = 0;
        socklen_t len = sizeof(err);
        /* libmosquitto's TLS handshake spins on a failed non-blocking connect, so the socket
         * error is checked here, as esp-tls's select()/getsockopt() does. */
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
            client->sock_error = err;
            mqtt_transport_connect_failed(client, false);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (!client->tcp_connected && getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
            client->tcp_connected = true;
        }
    }
    int rc = mosquitto_loop(client->mosq, MQTT_LOOP_SLICE_MS, 1);
    if (client->state == MQTT_STATE_CONNECTED) {
        mqtt_apply_tcp_keepalive(client);
        return;
    }
    if (client->connack_rc > 0) {
        switch (client->connack_rc) {
        case MQTT_CONNECTION_REFUSE_PROTOCOL:
            ESP_LOGW(TAG, "Connection refused, bad protocol");
            break;
        case MQTT_CONNECTION_REFUSE_SERVER_UNAVAILABLE:
            ESP_LOGW(TAG, "Connection refused, server unavailable");
            break;
        case MQTT_CONNECTION_REFUSE_BAD_USERNAME:
            ESP_LOGW(TAG, "Connection refused, bad username or password");
            break;
        case MQTT_CONNECTION_REFUSE_NOT_AUTHORIZED:
            ESP_LOGW(TAG, "Connection refused, not authorized");
            break;
        default:
            ESP_LOGW(TAG, "Connection refused, Unknow reason");
            break;
        }
        /* propagate event with connection refused error */
        client->event.event_id = MQTT_EVENT_ERROR;
        client->event.msg_id = 0;
        client->error_codes.error_type = MQTT_ERROR_TYPE_CONNECTION_REFUSED;
        client->error_codes.connect_return_code = (esp_mqtt_connect_return_code_t)client->connack_rc;
        client->error_codes.esp_tls_stack_err = 0;
        client->error_codes.esp_tls_last_esp_err = 0;
        client->error_codes.esp_tls_cert_verify_flags = 0;
        esp_mqtt_dispatch_event(client);
        ESP_LOGE(TAG, "MQTT connect failed");
        esp_mqtt_abort_connection(client);
        return;
    }
    bool ssl = mqtt_is_ssl(client->config);
    if (client->link_lost || (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING)) {
        if (client->link_rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS || (ssl && client->tls_error_logged) ||
                !client->tcp_connected) {
            mqtt_transport_connect_failed(client, false);
        } else {
            /* The transport was up but the broker closed it before CONNACK. */
            mqtt_transport_read_failed(client, "esp_mqtt_connect");
            ESP_LOGE(TAG, "MQTT connect failed");
            esp_mqtt_abort_connection(client);
        }
        return;
    }
    if (platform_tick_get_ms() - client->connect_started >= client->config->network_timeout_ms) {
        if (!client->tcp_connected) {
            mqtt_transport_connect_failed(client, true);
        } else {
            ESP_LOGE(TAG, "%s: mqtt_message_receive() returned %d", "esp_mqtt_connect", 0);
            ESP_LOGE(TAG, "MQTT connect failed");
            esp_mqtt_abort_connection(client);
        }
    }
}

static void mqtt_step_connected(esp_mqtt_client_handle_t client)
{
    mqtt_send_queued(client);
    int rc = mosquitto_loop(client->mosq, MQTT_LOOP_SLICE_MS, 1);
    if (client->abort_requested) {
        esp_mqtt_abort_connection(client);
        return;
    }
    if (client->link_lost || rc != MOSQ_ERR_SUCCESS) {
        if (!client->link_lost) {
            client->link_rc = rc;
            client->link_errno = errno;
        }
        if (client->link_rc == MOSQ_ERR_KEEPALIVE) {
            ESP_LOGE(TAG, "No PING_RESP, disconnected");
        } else {
            mqtt_transport_read_failed(client, "mqtt_process_receive");
        }
        esp_mqtt_abort_connection(client);
        return;
    }
    if (client->config->refresh_connection_after_ms &&
            platform_tick_get_ms() - client->refresh_connection_tick > client->config->refresh_connection_after_ms) {
        ESP_LOGD(TAG, "Refreshing the connection...");
        esp_mqtt_abort_connection(client);
        pthread_mutex_lock(&client->lock);
        client->state = MQTT_STATE_INIT;
        pthread_mutex_unlock(&client->lock);
    }
}

static void mqtt_step_wait_reconnect(esp_mqtt_client_handle_t client)
{
    pthread_mutex_lock(&client->lock);
    int64_t now = platform_tick_get_ms();
    if (client->config->auto_reconnect && now - client->reconnect_tick >= client->wait_timeout_ms) {
        client->state = MQTT_STATE_INIT;
        client->reconnect_tick = now;
        ESP_LOGD(TAG, "Reconnecting...");
    } else if (client->run) {
        int64_t wait_ms = client->config->auto_reconnect ? client->wait_timeout_ms - (now - client->reconnect_tick) : 1000;
        if (wait_ms > 1000) {
            wait_ms = 1000;     /* keep expiring the outbox while waiting */
        }
        if (wait_ms < 1) {
            wait_ms = 1;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&client->wake, &client->lock, &until);
    }
    pthread_mutex_unlock(&client->lock);
}

static void *esp_mqtt_task(void *pv)
{
    esp_mqtt_client_handle_t client = pv;
    pthread_setname_np(pthread_self(), "mqtt_task");

    for (;;) {
        pthread_mutex_lock(&client->lock);
        bool run = client->run && client->config != NULL;
        pthread_mutex_unlock(&client->lock);
        if (!run) {
            break;
        }
        // delete long pending messages
        mqtt_delete_expired_messages(client);
        pthread_mutex_lock(&client->lock);
        mqtt_client_state_t state = client->state;
        bool connecting = client->connecting;
        pthread_mutex_unlock(&client->lock);

        switch (state) {
        case MQTT_STATE_DISCONNECTED:
            break;
        case MQTT_STATE_INIT:
            if (connecting) {
                mqtt_step_connecting(client);
                break;
            }
            client->event.event_id = MQTT_EVENT_BEFORE_CONNECT;
            client->event.msg_id = 0;
            esp_mqtt_dispatch_event(client);
            mqtt_start_connect(client);
            break;
        case MQTT_STATE_CONNECTED:
            mqtt_step_connected(client);
            break;
        case MQTT_STATE_WAIT_RECONNECT:
            mqtt_step_wait_reconnect(client);
            break;
        default:
            ESP_LOGE(TAG, "MQTT client error, client is in an unrecoverable state.");
            break;
        }
    }

    /* Stopping: a connected client says DISCONNECT first (esp_mqtt_client_stop()). */
    pthread_mutex_lock(&client->lock);
    bool connected = client->state == MQTT_STATE_CONNECTED;
    pthread_mutex_unlock(&client->lock);
    if (connected) {
        send_disconnect_msg(client);
    }
    pthread_mutex_lock(&client->lock);
    struct mosquitto *mosq = client->mosq;
    client->mosq = NULL;
    client->connecting = false;
    outbox_delete_all_items(client);
    pending_clear(client);
    client->state = MQTT_STATE_DISCONNECTED;
    pthread_mutex_unlock(&client->lock);
    if (mosq) {
        mosquitto_destroy(mosq);
    }
    return NULL;
}

/* ---------------------------------------------------------------- public API */

esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t *config)
{
    pthread_once(&s_mosq_once, mqtt_lib_init);
    if (s_mosq_init_result != MOSQ_ERR_SUCCESS) {
        ESP_LOGE(TAG, "mosquitto_lib_init failed: %s", mosquitto_strerror(s_mosq_init_result));
        return NULL;
    }
    if (config == NULL) {
        return NULL;
    }
    esp_mqtt_client_handle_t client = calloc(1, sizeof(struct esp_mqtt_client));
    if (client == NULL) {
        ESP_LOGE(TAG, "%s(%d): %s", __FUNCTION__, __LINE__, "Memory exhausted");
        return NULL;
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&client->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&client->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    client->event.error_handle = &client->error_codes;
    client->transports[0] = (struct esp_transport_item_t){client, MQTT_OVER_TCP_SCHEME};
    client->transports[1] = (struct esp_transport_item_t){client, MQTT_OVER_SSL_SCHEME};
    client->next_msg_id = (int)(platform_tick_get_ms() % 65535);

    if (esp_mqtt_set_config(client, config) != ESP_OK) {
        goto _mqtt_init_failed;
    }
    client->reconnect_tick = platform_tick_get_ms();
    client->refresh_connection_tick = platform_tick_get_ms();
    return client;
_mqtt_init_failed:
    esp_mqtt_client_destroy(client);
    return NULL;
}

esp_err_t esp_mqtt_client_destroy(esp_mqtt_client_handle_t client)
{
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (client->task_running) {
        esp_mqtt_client_stop(client);
    }
    esp_mqtt_destroy_config(client);
    outbox_delete_all_items(client);
    pending_clear(client);
    while (client->handlers) {
        handler_entry_t *h = client->handlers;
        client->handlers = h->next;
        free(h);
    }
    free(client->in_buffer);
    pthread_cond_destroy(&client->wake);
    pthread_mutex_destroy(&client->lock);
    free(client);
    return ESP_OK;
}

esp_err_t esp_mqtt_client_start(esp_mqtt_client_handle_t client)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&client->lock);
    if (client->task_running || (client->state != MQTT_STATE_INIT && client->state != MQTT_STATE_DISCONNECTED)) {
        ESP_LOGE(TAG, "Client has started");
        pthread_mutex_unlock(&client->lock);
        return ESP_FAIL;
    }
    esp_err_t err = ESP_OK;
    ESP_LOGD(TAG, "Core selection disabled");
    client->run = true;
    client->state = MQTT_STATE_INIT;
    client->connecting = false;
    if (pthread_create(&client->task, NULL, esp_mqtt_task, client) != 0) {
        ESP_LOGE(TAG, "Error create mqtt task");
        client->run = false;
        err = ESP_FAIL;
    } else {
        client->task_running = true;
    }
    pthread_mutex_unlock(&client->lock);
    return err;
}

esp_err_t esp_mqtt_client_stop(esp_mqtt_client_handle_t client)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&client->lock);
    if (client->task_running) {
        /* A running client cannot be stopped from the MQTT task/event handler */
        if (pthread_equal(pthread_self(), client->task)) {
            pthread_mutex_unlock(&client->lock);
            ESP_LOGE(TAG, "Client cannot be stopped from MQTT task");
            return ESP_FAIL;
        }
        client->run = false;
        pthread_cond_signal(&client->wake);
        pthread_mutex_unlock(&client->lock);
        pthread_join(client->task, NULL);
        pthread_mutex_lock(&client->lock);
        client->task_running = false;
        client->state = MQTT_STATE_DISCONNECTED;
        pthread_mutex_unlock(&client->lock);
        return ESP_OK;
    }
    ESP_LOGW(TAG, "Client asked to stop, but was not started");
    pthread_mutex_unlock(&client->lock);
    return ESP_FAIL;
}

int esp_mqtt_client_subscribe_multiple(esp_mqtt_client_handle_t client, const esp_mqtt_topic_t *topic_list, int size)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return -1;
    }
    if (topic_list == NULL || size <= 0) {
        ESP_LOGE(TAG, "Subscribe message cannot be created");
        return -1;
    }
    pthread_mutex_lock(&client->lock);
    if (client->config->outbox_limit > 0 && (uint64_t)outbox_get_size_locked(client) > client->config->outbox_limit) {
        pthread_mutex_unlock(&client->lock);
        return -2;
    }
    if (client->state != MQTT_STATE_CONNECTED || client->mosq == NULL) {
        pthread_mutex_unlock(&client->lock);
        ESP_LOGE(TAG, "Client has not connected");
        return -1;
    }
    int qos = topic_list[0].qos;
    bool same_qos = true;
    char **subs = calloc((size_t)size, sizeof(char *));
    if (subs == NULL) {
        pthread_mutex_unlock(&client->lock);
        ESP_LOGE(TAG, "Subscribe message cannot be created");
        return -1;
    }
    for (int i = 0; i < size; i++) {
        subs[i] = (char *)topic_list[i].filter;
        if (topic_list[i].qos != topic_list[0].qos) {
            same_qos = false;
        }
        if (topic_list[i].qos > qos) {
            qos = topic_list[i].qos;
        }
    }
    if (!same_qos) {
        ESP_LOGW(TAG, "Host port: one SUBSCRIBE carries one QoS, all %d topics use QoS %d", size, qos);
    }
    int mid = 0;
    int rc = mosquitto_subscribe_multiple(client->mosq, &mid, size, subs, qos, 0, NULL);
    free(subs);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_unlock(&client->lock);
        ESP_LOGE(TAG, "Error to send subscribe message, first topic: %s, qos: %d", topic_list[0].filter, topic_list[0].qos);
        return -1;
    }
    pending_req_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        pthread_mutex_unlock(&client->lock);
        return -1;
    }
    p->msg_id = new_msg_id(client);
    p->mosq_mid = mid;
    p->subscribe = true;
    p->next = client->pending;
    client->pending = p;
    int msg_id = p->msg_id;
    pthread_mutex_unlock(&client->lock);
    ESP_LOGD(TAG, "Sent subscribe, first topic=%s, id: %d", topic_list[0].filter, msg_id);
    return msg_id;
}

int esp_mqtt_client_subscribe_single(esp_mqtt_client_handle_t client, const char *topic, int qos)
{
    esp_mqtt_topic_t user_topic = {.filter = topic, .qos = qos};
    return esp_mqtt_client_subscribe_multiple(client, &user_topic, 1);
}

int esp_mqtt_client_unsubscribe(esp_mqtt_client_handle_t client, const char *topic)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return -1;
    }
    pthread_mutex_lock(&client->lock);
    if (client->state != MQTT_STATE_CONNECTED || client->mosq == NULL) {
        pthread_mutex_unlock(&client->lock);
        ESP_LOGE(TAG, "Client has not connected");
        return -1;
    }
    int mid = 0;
    if (topic == NULL || mosquitto_unsubscribe(client->mosq, &mid, topic) != MOSQ_ERR_SUCCESS) {
        pthread_mutex_unlock(&client->lock);
        ESP_LOGE(TAG, "Error to unsubscribe topic=%s", topic ? topic : "(null)");
        return -1;
    }
    pending_req_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        pthread_mutex_unlock(&client->lock);
        return -1;
    }
    p->msg_id = new_msg_id(client);
    p->mosq_mid = mid;
    p->subscribe = false;
    p->next = client->pending;
    client->pending = p;
    int msg_id = p->msg_id;
    pthread_mutex_unlock(&client->lock);
    ESP_LOGD(TAG, "Sent Unsubscribe topic=%s, id: %d, successful", topic, msg_id);
    return msg_id;
}

int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len, int qos, int retain)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return -1;
    }
    if (topic == NULL || qos < 0 || qos > 2) {
        ESP_LOGE(TAG, "Publish message cannot be created");
        return -1;
    }
    /* Acceptable publish messages:
        data == NULL, len == 0: publish null message
        data valid,   len == 0: publish all data, payload len is determined from string length
        data valid,   len >  0: publish data with defined length
     */
    if (len <= 0 && data != NULL) {
        len = (int)strlen(data);
    }
    if (data == NULL) {
        len = 0;
    }
    host_trace_mqtt_publish(topic, data, len);
    pthread_mutex_lock(&client->lock);
    if (client->config->outbox_limit > 0 && qos > 0) {
        if ((uint64_t)(len + outbox_get_size_locked(client)) > client->config->outbox_limit) {
            pthread_mutex_unlock(&client->lock);
            return -2;
        }
    }
    int ret;
    if (client->state != MQTT_STATE_CONNECTED || client->mosq == NULL) {
        /* Skip sending if not connected (rely on resending) */
        ESP_LOGD(TAG, "Publish: client is not connected");
        if (qos > 0) {
            int msg_id = new_msg_id(client);
            ret = outbox_enqueue(client, topic, data, len, qos, retain, msg_id, QUEUED) ? msg_id : -1;
        } else {
            ESP_LOGW(TAG, "Publish: Losing qos0 data when client not connected");
            ret = -1;
        }
        pthread_mutex_unlock(&client->lock);
        return ret;
    }
    int mid = 0;
    int rc = mosquitto_publish(client->mosq, &mid, topic, len, data, qos, retain != 0);
    if (rc != MOSQ_ERR_SUCCESS) {
        ESP_LOGE(TAG, "Writing failed: errno=%d", rc == MOSQ_ERR_ERRNO ? errno : 0);
        if (qos == 0) {
            ESP_LOGW(TAG, "Publish: Losing qos0 data when client not connected");
        } else if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) {
            /* esp-mqtt has already put the message in its outbox when the write fails: it
             * returns -1 but still sends the message after reconnecting. */
            outbox_enqueue(client, topic, data, len, qos, retain, new_msg_id(client), QUEUED);
        }
        pthread_mutex_unlock(&client->lock);
        return -1;
    }
    ret = 0;
    if (qos > 0) {
        ret = new_msg_id(client);
        outbox_item_t *it = outbox_enqueue(client, topic, data, len, qos, retain, ret, TRANSMITTED);
        if (it) {
            it->mosq_mid = mid;
        }
    }
    pthread_mutex_unlock(&client->lock);
    return ret;
}

int esp_mqtt_client_enqueue(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len, int qos, int retain, bool store)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return -1;
    }
    if (topic == NULL || qos < 0 || qos > 2) {
        ESP_LOGE(TAG, "Publish message cannot be created");
        return -1;
    }
    if (len <= 0 && data != NULL) {
        len = (int)strlen(data);
    }
    if (data == NULL) {
        len = 0;
    }
    host_trace_mqtt_publish(topic, data, len);
    pthread_mutex_lock(&client->lock);
    if (client->config->outbox_limit > 0) {
        if ((uint64_t)(len + outbox_get_size_locked(client)) > client->config->outbox_limit) {
            pthread_mutex_unlock(&client->lock);
            return -2;
        }
    }
    int ret = -1;
    if (qos > 0 || store) {
        int msg_id = qos > 0 ? new_msg_id(client) : 0;
        ret = outbox_enqueue(client, topic, data, len, qos, retain, msg_id, QUEUED) ? msg_id : -1;
    }
    pthread_mutex_unlock(&client->lock);
    if (ret == 0 && store == false) {
        // messages with qos=0 are not enqueued if not overridden by store_in_outobx -> indicate as error
        return -1;
    }
    return ret;
}

esp_err_t esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t event, esp_event_handler_t event_handler, void *event_handler_arg)
{
    if (client == NULL || event_handler == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    handler_entry_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return ESP_ERR_NO_MEM;
    }
    h->event_id = event;
    h->handler = event_handler;
    h->arg = event_handler_arg;
    pthread_mutex_lock(&client->lock);
    handler_entry_t **link = &client->handlers;
    while (*link) {
        link = &(*link)->next;
    }
    *link = h;
    pthread_mutex_unlock(&client->lock);
    return ESP_OK;
}

int esp_mqtt_client_get_outbox_size(esp_mqtt_client_handle_t client)
{
    if (client == NULL) {
        return 0;
    }
    pthread_mutex_lock(&client->lock);
    int size = outbox_get_size_locked(client);
    pthread_mutex_unlock(&client->lock);
    return size;
}

esp_transport_handle_t esp_mqtt_client_get_transport(esp_mqtt_client_handle_t client, char *transport_scheme)
{
    if (client == NULL || transport_scheme == NULL) {
        return NULL; /* NULL asks for network.transport, which the host port never has */
    }
    for (size_t i = 0; i < sizeof(client->transports) / sizeof(client->transports[0]); i++) {
        if (strcasecmp(client->transports[i].scheme, transport_scheme) == 0) {
            return &client->transports[i];
        }
    }
    return NULL;
}

int esp_transport_get_socket(esp_transport_handle_t t)
{
    if (t == NULL || t->client == NULL) {
        return -1;
    }
    esp_mqtt_client_handle_t client = t->client;
    pthread_mutex_lock(&client->lock);
    int fd = client->mosq != NULL && client->config != NULL && client->config->scheme != NULL &&
             strcasecmp(client->config->scheme, t->scheme) == 0 ? mosquitto_socket(client->mosq) : -1;
    pthread_mutex_unlock(&client->lock);
    return fd;
}
