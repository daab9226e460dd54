/*
 * Internals shared by the host port's esp-mqtt files. Private to the port: firmware never includes
 * it. The client is split by concern:
 *
 *   mqtt_client.c      the public API: init / start / stop / destroy, publish, enqueue,
 *                      subscribe, unsubscribe, event handlers, transports; event dispatch
 *   mqtt_config.c      esp_mqtt_client_config_t and the URI into the client, with esp-mqtt's defaults
 *   mqtt_transport.c   the mqtt_task and its state machine over libmosquitto: connecting,
 *                      callbacks, TLS material, reconnect timing
 *   mqtt_outbox.c      the outbox of unacknowledged publishes, message ids, pending (UN)SUBSCRIBEs
 *   mqtt_errors.c      esp-tls / tcp_transport error codes, ERROR events and the chip's log lines
 *   (host_client_common.c, shared with the HTTP client: config strings, esp-tls setup lines)
 *
 * Known differences from the chip are listed at the top of mqtt_client.c.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <time.h>
#include <mosquitto.h>

#include "esp_err.h"
#include "mqtt_client.h"
#include "host_client_common.h"

#define MQTT_CLIENT_TAG "mqtt_client"

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

static inline int64_t platform_tick_get_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline bool mqtt_is_ssl(const mqtt_config_storage_t *cfg)
{
    return cfg->scheme && strcasecmp(cfg->scheme, MQTT_OVER_SSL_SCHEME) == 0;
}

/* ---- mqtt_client.c: events. Handlers run without the client lock. */
void esp_mqtt_dispatch_event(esp_mqtt_client_handle_t client);
void esp_mqtt_dispatch_simple(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t id, int msg_id);

/* ---- mqtt_config.c */
void esp_mqtt_destroy_config(esp_mqtt_client_handle_t client);

/* ---- mqtt_transport.c */
/* The "mqtt_task" thread: runs until client->run is false, then disconnects and empties the outbox. */
void *esp_mqtt_task(void *pv);
/* esp_mqtt_abort_connection(): drop the connection without DISCONNECT, post DISCONNECTED, wait. */
void esp_mqtt_abort_connection(esp_mqtt_client_handle_t client);
void mqtt_remove_tls_files(mqtt_config_storage_t *cfg);

/* ---- mqtt_outbox.c; the *_locked ones and the others alike expect client->lock held unless noted */
int outbox_get_size_locked(esp_mqtt_client_handle_t client);
int new_msg_id(esp_mqtt_client_handle_t client);
outbox_item_t *outbox_enqueue(esp_mqtt_client_handle_t client, const char *topic, const char *data,
                              int len, int qos, int retain, int msg_id, pending_state_t pending);
void outbox_delete_item(esp_mqtt_client_handle_t client, outbox_item_t *item);
void outbox_delete_all_items(esp_mqtt_client_handle_t client);
/* Takes the lock itself. */
void mqtt_delete_expired_messages(esp_mqtt_client_handle_t client);
void pending_clear(esp_mqtt_client_handle_t client);
/* Records a sent SUBSCRIBE / UNSUBSCRIBE under a new message id; returns it, or -1. */
int pending_add(esp_mqtt_client_handle_t client, int mosq_mid, bool subscribe);
/* The message id of the request libmosquitto numbered mid, removed from the list; -1 if none.
 * Takes the lock itself. */
int take_pending(esp_mqtt_client_handle_t client, int mid, bool subscribe);

/* ---- mqtt_errors.c: what esp-tls, tcp_transport and esp-mqtt report on the chip */
void esp_mqtt_client_dispatch_transport_error(esp_mqtt_client_handle_t client, esp_err_t tls_err,
                                              int stack_err, int verify_flags, int sock_errno);
/* (the TLS-context setup lines: host_report_tls_setup_error(), host_client_common.h) */
/* The TLS configuration could not be used: lines, ERROR event (the caller aborts the connection). */
void mqtt_report_tls_config_failed(esp_mqtt_client_handle_t client);
/* The broker's host name did not resolve: lines, ERROR event (the caller aborts the connection). */
void mqtt_report_resolve_failed(esp_mqtt_client_handle_t client);
/* A CONNACK with a refusal code: warning, ERROR event, "MQTT connect failed" (the caller aborts). */
void mqtt_report_connection_refused(esp_mqtt_client_handle_t client);
/* A failed transport connect: esp-tls / tcp_transport lines, ERROR event, then the connection is
 * aborted (DISCONNECTED). */
void mqtt_transport_connect_failed(esp_mqtt_client_handle_t client, bool timeout);
/* The connection broke after the transport was up (esp_mqtt_handle_transport_read_error()). */
void mqtt_transport_read_failed(esp_mqtt_client_handle_t client, const char *caller);
