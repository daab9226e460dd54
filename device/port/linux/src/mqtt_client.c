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
 *    CA from a file, so the PEM is written to a private temporary file in $TMPDIR, deleted when
 *    the client is destroyed (the virtual board empties each boot's TMPDIR, for the apps that end
 *    without destroying it). crt_bundle_attach means "trust the system CA store".
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
 * The code is split by concern (src/mqtt_client_priv.h lists the files): this file is the
 * public API and the event dispatch; mqtt_config.c, mqtt_transport.c (the task over
 * libmosquitto), mqtt_outbox.c and mqtt_errors.c (esp-tls / tcp_transport error codes and log
 * lines) hold the rest.
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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <mosquitto.h>

#include "esp_err.h"
#include "esp_log.h"
#include "host_board.h"
#include "mqtt_client.h"
#include "mqtt_client_priv.h"

ESP_EVENT_DEFINE_BASE(MQTT_EVENTS);

static const char *TAG = MQTT_CLIENT_TAG;

static pthread_once_t s_mosq_once = PTHREAD_ONCE_INIT;
static int s_mosq_init_result = MOSQ_ERR_UNKNOWN;

static void mqtt_lib_init(void)
{
    s_mosq_init_result = mosquitto_lib_init();
}

/* ---------------------------------------------------------------- events */

void esp_mqtt_dispatch_event(esp_mqtt_client_handle_t client)
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

void esp_mqtt_dispatch_simple(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t id, int msg_id)
{
    client->event.event_id = id;
    client->event.msg_id = msg_id;
    esp_mqtt_dispatch_event(client);
}

/* ---------------------------------------------------------------- public API */

/* The check every API call starts with, and esp-mqtt's line when it fails. */
static bool client_initialized(esp_mqtt_client_handle_t client)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return false;
    }
    return true;
}

/* How esp_mqtt_client_publish() and esp_mqtt_client_enqueue() both start: the argument checks,
 * the payload length, the trace record and the outbox limit (`limited`: publish applies it to
 * QoS > 0 only, enqueue to every message). 0 with client->lock held, or the call's result
 * (-1 bad arguments, -2 outbox full) with it released.
 *
 * Acceptable publish messages:
 *   data == NULL, len == 0: publish null message
 *   data valid,   len == 0: publish all data, payload len is determined from string length
 *   data valid,   len >  0: publish data with defined length
 */
static int publish_begin(esp_mqtt_client_handle_t client, const char *topic, const char *data, int *len,
                         int qos, bool limited)
{
    if (!client_initialized(client)) {
        return -1;
    }
    if (topic == NULL || qos < 0 || qos > 2) {
        ESP_LOGE(TAG, "Publish message cannot be created");
        return -1;
    }
    if (*len <= 0 && data != NULL) {
        *len = (int)strlen(data);
    }
    if (data == NULL) {
        *len = 0;
    }
    host_trace_mqtt_publish(topic, data, *len);
    pthread_mutex_lock(&client->lock);
    if (client->config->outbox_limit > 0 && limited) {
        if ((uint64_t)(*len + outbox_get_size_locked(client)) > client->config->outbox_limit) {
            pthread_mutex_unlock(&client->lock);
            return -2;
        }
    }
    return 0;
}

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
    if (!client_initialized(client)) {
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
    if (!client_initialized(client)) {
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
    if (!client_initialized(client)) {
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
    int msg_id = pending_add(client, mid, true);
    pthread_mutex_unlock(&client->lock);
    if (msg_id < 0) {
        return -1;
    }
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
    if (!client_initialized(client)) {
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
    int msg_id = pending_add(client, mid, false);
    pthread_mutex_unlock(&client->lock);
    if (msg_id < 0) {
        return -1;
    }
    ESP_LOGD(TAG, "Sent Unsubscribe topic=%s, id: %d, successful", topic, msg_id);
    return msg_id;
}

int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len, int qos, int retain)
{
    int err = publish_begin(client, topic, data, &len, qos, qos > 0);
    if (err != 0) {
        return err;
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
    int err = publish_begin(client, topic, data, &len, qos, true);
    if (err != 0) {
        return err;
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
