/*
 * Host port of esp-mqtt (see mqtt_client.c): the transport. The "mqtt_task" thread runs
 * esp_mqtt_task()'s state machine (INIT, CONNECTED, WAIT_RECONNECT) over libmosquitto: a fresh
 * libmosquitto instance per connection attempt, its network loop driven from this task only, its
 * callbacks turned into esp-mqtt's events, the outbox sent after CONNECTED, the TLS material
 * written where libmosquitto can load it, and reconnects every network.reconnect_timeout_ms.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "esp_log.h"
#include "mqtt_client_priv.h"
#include "host_time.h"

static const char *TAG = MQTT_CLIENT_TAG;

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
 * or PEM/DER with its length), as a PEM file readable only by this process, in $TMPDIR. It is removed
 * with the client (mqtt_remove_tls_files), which an app ended by esp_restart() or a power cut never
 * destroys: the virtual board gives each boot an empty TMPDIR of its own (harness/virtual/board.py). */
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

void mqtt_remove_tls_files(mqtt_config_storage_t *cfg)
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

/* ---------------------------------------------------------------- connection */

/* The TLS part of esp_mqtt_set_ssl_transport_properties() for a new libmosquitto instance. */
static esp_err_t mqtt_setup_tls(esp_mqtt_client_handle_t client, struct mosquitto *mosq)
{
    mqtt_config_storage_t *cfg = client->config;
    const char *capath = NULL;

    if (cfg->use_crt_bundle) {
        capath = "/etc/ssl/certs";  /* the system store stands in for the ESP x509 bundle */
        mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    } else if (cfg->use_global_ca_store) {
        host_report_tls_setup_error(HOST_TLS_NO_GLOBAL_CA);
        return ESP_FAIL;
    } else if (cfg->cacert_buf) {
        if (cfg->ca_file == NULL) {
            cfg->ca_file = mqtt_write_pem_file(cfg->cacert_buf, cfg->cacert_bytes, "ca", "CERTIFICATE");
            if (cfg->ca_file == NULL) {
                return ESP_FAIL;
            }
        }
    } else {
        host_report_tls_setup_error(HOST_TLS_NO_VERIFICATION);
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
        host_report_tls_setup_error(HOST_TLS_CA_UNPARSABLE);
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

/* esp_mqtt_abort_connection(): close the transport without DISCONNECT, post DISCONNECTED and
 * wait reconnect_timeout_ms. */
void esp_mqtt_abort_connection(esp_mqtt_client_handle_t client)
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
        mqtt_report_tls_config_failed(client);
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
            mqtt_report_resolve_failed(client);
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

/* ---------------------------------------------------------------- the task */

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
        mqtt_report_connection_refused(client);
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
        struct timespec until = host_deadline_ms(CLOCK_MONOTONIC, wait_ms);
        pthread_cond_timedwait(&client->wake, &client->lock, &until);
    }
    pthread_mutex_unlock(&client->lock);
}

void *esp_mqtt_task(void *pv)
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
