/*
 * port_check's network commands: the host port's esp_http_client and esp-mqtt driven directly,
 * as an app calls them, against real local servers (tests_unit/test_host_port_clients.py).
 * Results are printed as key=value lines; MQTT events are printed from the MQTT task as they come.
 *
 *   http_perform <url> <timeout_ms>
 *       esp_http_client_perform(), which follows redirects itself. Prints every HTTP_EVENT_* the
 *       handler gets (http_event=NAME), then perform=<err> status= content_length= body_bytes=
 *       body_sha256= (the body is what HTTP_EVENT_ON_DATA handed over).
 *   http_stream <url> <timeout_ms> <range_from|-1> <max_eagain>
 *       esp_https_ota's way: a Range header when range_from >= 0, open and fetch_headers, a 30x
 *       read out and followed with esp_http_client_set_redirection(), then esp_http_client_read()
 *       of 4 KB at a time until the body is complete, a read fails, or max_eagain reads returned
 *       -ESP_ERR_HTTP_EAGAIN. Prints hop=<status> per redirect, status= content_length= chunked=,
 *       read_eagain=<bytes so far> waited_ms=<that read's time> per EAGAIN, then read_end=<last
 *       result> body_bytes= body_sha256= complete=<is_complete_data_received>.
 *   mqtt_start <uri> <buffer_size> <reconnect_timeout_ms> <topic|->
 *       esp_mqtt_client_init / register_event(ESP_EVENT_ANY_ID) / start; on every CONNECTED the
 *       handler subscribes to topic (QoS 1) unless it is "-". Events: mqtt_event=NAME ...
 *   mqtt_pub <topic> <qos> <text>   esp_mqtt_client_publish(); prints mqtt_pub=<its result>
 *   mqtt_outbox                     prints mqtt_outbox=<esp_mqtt_client_get_outbox_size()>
 *   mqtt_stop                       esp_mqtt_client_stop() and destroy(); prints mqtt_stopped
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "esp_err.h"
#include "esp_event.h"
#include "esp_http_client.h"
#include "mbedtls/sha256.h"
#include "mqtt_client.h"
#include "net_check.h"

#define READ_CHUNK 4096

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ensure_event_loop(void)
{
    static bool created;
    if (!created) {
        esp_event_loop_create_default(); /* the client posts every event to it, as on the chip */
        created = true;
    }
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    mbedtls_sha256_context sha;
    int64_t bytes;
    bool hash_events;   /* perform: the body is what HTTP_EVENT_ON_DATA hands over */
} body_t;

static void body_start(body_t *body, bool hash_events)
{
    mbedtls_sha256_init(&body->sha);
    mbedtls_sha256_starts(&body->sha, 0);
    body->bytes = 0;
    body->hash_events = hash_events;
}

static void body_add(body_t *body, const void *data, int len)
{
    mbedtls_sha256_update(&body->sha, data, (size_t)len);
    body->bytes += len;
}

static void body_print(body_t *body)
{
    unsigned char digest[32];
    mbedtls_sha256_finish(&body->sha, digest);
    mbedtls_sha256_free(&body->sha);
    char hex[65];
    for (int i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", digest[i]);
    }
    printf("body_bytes=%" PRId64 " body_sha256=%s\n", body->bytes, hex);
}

static const char *http_event_name(esp_http_client_event_id_t id)
{
    switch (id) {
    case HTTP_EVENT_ERROR: return "ERROR";
    case HTTP_EVENT_ON_CONNECTED: return "ON_CONNECTED";
    case HTTP_EVENT_HEADERS_SENT: return "HEADERS_SENT";
    case HTTP_EVENT_ON_HEADER: return "ON_HEADER";
    case HTTP_EVENT_ON_DATA: return "ON_DATA";
    case HTTP_EVENT_ON_FINISH: return "ON_FINISH";
    case HTTP_EVENT_DISCONNECTED: return "DISCONNECTED";
    case HTTP_EVENT_REDIRECT: return "REDIRECT";
    }
    return "?";
}

static esp_err_t http_handler(esp_http_client_event_t *evt)
{
    body_t *body = evt->user_data;
    if (evt->event_id == HTTP_EVENT_ON_DATA) {
        if (body->hash_events) {
            body_add(body, evt->data, evt->data_len);
        }
        return ESP_OK;  /* one line per chunk would drown the rest */
    }
    if (evt->event_id == HTTP_EVENT_ON_HEADER) {
        printf("http_event=ON_HEADER %s: %s\n", evt->header_key, evt->header_value);
    } else {
        printf("http_event=%s\n", http_event_name(evt->event_id));
    }
    return ESP_OK;
}

/* A client over `body` (started here); NULL after printing "<what>=init_failed". */
static esp_http_client_handle_t http_new(const char *url, int timeout_ms, body_t *body, bool hash_events,
                                         const char *what)
{
    ensure_event_loop();
    body_start(body, hash_events);
    const esp_http_client_config_t config = {
        .url = url,
        .timeout_ms = timeout_ms,
        .event_handler = http_handler,
        .user_data = body,
    };
    esp_http_client_handle_t http = esp_http_client_init(&config);
    if (http == NULL) {
        printf("%s=init_failed\n", what);
    }
    return http;
}

static void http_perform(const char *url, int timeout_ms)
{
    body_t body;
    esp_http_client_handle_t http = http_new(url, timeout_ms, &body, true, "perform");
    if (http == NULL) {
        return;
    }
    esp_err_t err = esp_http_client_perform(http);
    printf("perform=%s status=%d content_length=%" PRId64 "\n", esp_err_to_name(err),
           esp_http_client_get_status_code(http), esp_http_client_get_content_length(http));
    body_print(&body);
    esp_http_client_cleanup(http);
}

static void http_stream(const char *url, int timeout_ms, long range_from, int max_eagain)
{
    static char buf[READ_CHUNK];
    body_t body;
    esp_http_client_handle_t http = http_new(url, timeout_ms, &body, false, "stream");
    if (http == NULL) {
        return;
    }
    if (range_from >= 0) {
        char range[40];
        snprintf(range, sizeof(range), "bytes=%ld-", range_from);
        esp_http_client_set_header(http, "Range", range);
    }
    int64_t length = -1;
    for (int hops = 0; hops <= 10; hops++) {
        esp_err_t err = esp_http_client_open(http, 0);
        if (err != ESP_OK) {
            printf("open=%s\n", esp_err_to_name(err));
            goto out;
        }
        length = esp_http_client_fetch_headers(http);
        int status = esp_http_client_get_status_code(http);
        if (status < 300 || status >= 400) {
            break;
        }
        printf("hop=%d\n", status);
        while (esp_http_client_read(http, buf, sizeof(buf)) > 0) {
            /* a redirect's body is read out, as esp_https_ota does */
        }
        if (esp_http_client_set_redirection(http) != ESP_OK) {
            printf("set_redirection=failed\n");
            goto out;
        }
    }
    printf("status=%d fetch_headers=%" PRId64 " content_length=%" PRId64 " chunked=%d\n",
           esp_http_client_get_status_code(http), length, esp_http_client_get_content_length(http),
           (int)esp_http_client_is_chunked_response(http));
    int eagain = 0;
    int n;
    for (;;) {
        int64_t started = now_ms();
        n = esp_http_client_read(http, buf, sizeof(buf));
        if (n > 0) {
            body_add(&body, buf, n);
            continue;
        }
        if (n == -ESP_ERR_HTTP_EAGAIN) {
            printf("read_eagain=%" PRId64 " waited_ms=%" PRId64 "\n", body.bytes, now_ms() - started);
            if (++eagain < max_eagain) {
                continue;
            }
        }
        break;
    }
    printf("read_end=%d complete=%d\n", n, (int)esp_http_client_is_complete_data_received(http));
out:
    body_print(&body);
    esp_http_client_close(http);
    esp_http_client_cleanup(http);
}

/* ---------------------------------------------------------------- MQTT */

static esp_mqtt_client_handle_t s_mqtt;
static char s_sub_topic[256];

static const char *mqtt_event_name(int32_t id)
{
    switch (id) {
    case MQTT_EVENT_ERROR: return "ERROR";
    case MQTT_EVENT_CONNECTED: return "CONNECTED";
    case MQTT_EVENT_DISCONNECTED: return "DISCONNECTED";
    case MQTT_EVENT_SUBSCRIBED: return "SUBSCRIBED";
    case MQTT_EVENT_UNSUBSCRIBED: return "UNSUBSCRIBED";
    case MQTT_EVENT_PUBLISHED: return "PUBLISHED";
    case MQTT_EVENT_DATA: return "DATA";
    case MQTT_EVENT_BEFORE_CONNECT: return "BEFORE_CONNECT";
    case MQTT_EVENT_DELETED: return "DELETED";
    }
    return "?";
}

static void print_data_event(const esp_mqtt_event_t *e)
{
    /* One printf per event: lines from the MQTT task never interleave with the main task's. */
    size_t cap = 2 * (size_t)(e->data_len > 0 ? e->data_len : 0) + (size_t)e->topic_len + 256;
    char *line = malloc(cap);
    if (line == NULL) {
        return;
    }
    int o = snprintf(line, cap, "mqtt_event=DATA msg_id=%d qos=%d retain=%d topic_len=%d offset=%d len=%d total=%d "
                     "topic=%.*s data=", e->msg_id, e->qos, (int)e->retain, e->topic_len, e->current_data_offset,
                     e->data_len, e->total_data_len, e->topic ? e->topic_len : 0, e->topic ? e->topic : "");
    for (int i = 0; i < e->data_len; i++) {
        o += snprintf(line + o, cap - (size_t)o, "%02x", (unsigned char)e->data[i]);
    }
    printf("%s\n", line);
    free(line);
}

static void mqtt_handler(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    esp_mqtt_event_handle_t e = data;
    switch (id) {
    case MQTT_EVENT_DATA:
        print_data_event(e);
        return;
    case MQTT_EVENT_ERROR:
        printf("mqtt_event=ERROR type=%d tls_err=0x%x sock_errno=%d\n", (int)e->error_handle->error_type,
               (unsigned)e->error_handle->esp_tls_last_esp_err, e->error_handle->esp_transport_sock_errno);
        return;
    case MQTT_EVENT_CONNECTED:
        printf("mqtt_event=CONNECTED session_present=%d\n", e->session_present);
        if (s_sub_topic[0] != '\0') {
            printf("mqtt_sub=%d\n", esp_mqtt_client_subscribe(e->client, s_sub_topic, 1));
        }
        return;
    default:
        printf("mqtt_event=%s msg_id=%d\n", mqtt_event_name(id), e->msg_id);
        return;
    }
}

static void mqtt_start(const char *uri, int buffer_size, int reconnect_ms, const char *topic)
{
    if (s_mqtt != NULL) {
        printf("mqtt_start=already_started\n");
        return;
    }
    snprintf(s_sub_topic, sizeof(s_sub_topic), "%s", strcmp(topic, "-") == 0 ? "" : topic);
    const esp_mqtt_client_config_t config = {
        .broker.address.uri = uri,
        .credentials.client_id = "port_check",
        .buffer.size = buffer_size,
        .network.reconnect_timeout_ms = reconnect_ms,
    };
    s_mqtt = esp_mqtt_client_init(&config);
    if (s_mqtt == NULL) {
        printf("mqtt_start=init_failed\n");
        return;
    }
    esp_mqtt_client_register_event(s_mqtt, ESP_EVENT_ANY_ID, mqtt_handler, NULL);
    printf("mqtt_start=%s\n", esp_err_to_name(esp_mqtt_client_start(s_mqtt)));
}

bool net_check_command(const char *line)
{
    char a[256], b[256];
    int x = 0, y = 0, z = 0;
    long l = 0;
    if (sscanf(line, "http_perform %255s %d", a, &x) == 2) {
        http_perform(a, x);
    } else if (sscanf(line, "http_stream %255s %d %ld %d", a, &x, &l, &y) == 4) {
        http_stream(a, x, l, y);
    } else if (sscanf(line, "mqtt_start %255s %d %d %255s", a, &x, &y, b) == 4) {
        mqtt_start(a, x, y, b);
    } else if (sscanf(line, "mqtt_pub %255s %d %255s", a, &z, b) == 3) {
        printf("mqtt_pub=%d\n", esp_mqtt_client_publish(s_mqtt, a, b, 0, z, 0));
    } else if (strncmp(line, "mqtt_outbox", 11) == 0) {
        printf("mqtt_outbox=%d\n", esp_mqtt_client_get_outbox_size(s_mqtt));
    } else if (strncmp(line, "mqtt_stop", 9) == 0) {
        esp_mqtt_client_stop(s_mqtt);
        esp_mqtt_client_destroy(s_mqtt);
        s_mqtt = NULL;
        printf("mqtt_stopped\n");
    } else {
        return false;
    }
    return true;
}
