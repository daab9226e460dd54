/*
 * Host port of ESP-IDF's esp_http_client (components/esp_http_client/esp_http_client.c, v5.5.4)
 * over libcurl's multi interface.
 *
 * libcurl speaks HTTP and TLS; this file only reproduces the esp_http_client API and its
 * observable behaviour: return values, states, events, log lines and timeouts.
 *
 * How it maps onto libcurl:
 *  - One easy handle per client, driven by a private multi handle only from inside API calls
 *    (open, write, fetch_headers, read, ...). Nothing runs in the background, so the transfer is
 *    pull-based like the real client reading its socket: when the caller stops reading, the
 *    bounded receive buffer fills, the transfer is paused and TCP flow control stalls the server.
 *  - timeout_ms (0 -> 5000) bounds each wait for network data, as ESP-IDF's esp_transport_read()
 *    does; it is not an overall deadline. A stall makes read() return -ESP_ERR_HTTP_EAGAIN and
 *    fetch_headers() return -ESP_ERR_HTTP_EAGAIN, and the caller decides what to do. It is also the
 *    connect (TCP + TLS) timeout.
 *  - libcurl never follows redirects. Like ESP-IDF, esp_http_client_perform() follows them itself
 *    (up to max_redirection_count, default 10) unless disable_auto_redirect; with open /
 *    fetch_headers the caller sees the 30x and calls esp_http_client_set_redirection().
 *  - HTTPS: cert_pem (PEM, or DER with cert_len) is the only trusted CA; crt_bundle_attach means
 *    "trust the system CA store", standing in for the ESP x509 bundle. Like esp-tls, an https URL
 *    with no verification option fails to connect. A certificate that does not verify fails in
 *    esp_http_client_open() with ESP_ERR_HTTP_CONNECT, logging esp-tls's lines.
 *  - esp-tls / tcp_transport log lines that the real device prints on connect and read errors are
 *    reproduced with their real tags, so tests can match the same text on both boards.
 *
 * Known differences from the device:
 *  - HTTP Basic/Digest auth: only preemptive Basic (auth_type = HTTP_AUTH_TYPE_BASIC) is sent.
 *    esp_http_client_add_auth() behaves as with the default Kconfig (Basic and Digest support
 *    disabled): it logs and returns ESP_ERR_NOT_SUPPORTED.
 *  - write_len < 0 (caller-framed chunked request body) is refused with ESP_FAIL.
 *  - is_async, use_global_ca_store, alpn_protos, if_name and addr_type are accepted; is_async is
 *    ignored (calls block as in the default mode), use_global_ca_store fails like an unset store.
 *  - libcurl may transparently replace a keep-alive connection the server closed; the real client
 *    would fail that request instead.
 *
 * Not implemented (apps of this kind, an OTA agent over esp_http_client or esp_https_ota, do not
 * call them; they are not declared in include/esp_http_client.h, so a caller fails to build):
 * esp_http_client_cancel_request, esp_http_client_get_username / set_username,
 * esp_http_client_get_password / set_password, esp_http_client_set_authtype,
 * esp_http_client_get_user_data / set_user_data, esp_http_client_delete_all_headers,
 * esp_http_client_reset_redirect_counter, esp_http_client_set_auth_data,
 * esp_http_client_read_response, esp_http_client_flush_response, esp_http_client_get_url,
 * esp_http_client_get_socket, esp_http_client_get_chunk_length (libcurl does not expose chunk
 * sizes). The config fields behind them (username, password, auth_type, user_data) still work.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#include "esp_err.h"
#include "esp_log.h"
#include "esp_event.h"
#include "esp_http_client.h"

ESP_EVENT_DEFINE_BASE(ESP_HTTP_CLIENT_EVENT);

static const char *TAG = "HTTP_CLIENT";
/* Tags of the ESP-IDF components whose error lines the real device prints for this client. */
static const char *TAG_TRANSPORT = "transport_base";
static const char *TAG_TLS = "esp-tls";
static const char *TAG_MBEDTLS = "esp-tls-mbedtls";

/* CONFIG_ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT default (components/esp_http_client/Kconfig). */
#define ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT pdMS_TO_TICKS(2000)

/* Error codes from esp-tls (esp_tls_errors.h) and tcp_transport (esp_transport.h), v5.5.4. */
#define HOST_ESP_ERR_ESP_TLS_BASE                       0x8000
#define HOST_ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME    (HOST_ESP_ERR_ESP_TLS_BASE + 0x01)
#define HOST_ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST     (HOST_ESP_ERR_ESP_TLS_BASE + 0x04)
#define HOST_ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT         (HOST_ESP_ERR_ESP_TLS_BASE + 0x06)
#define HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED       (HOST_ESP_ERR_ESP_TLS_BASE + 0x1A)
#define HOST_ESP_ERR_MBEDTLS_SSL_READ_FAILED            (HOST_ESP_ERR_ESP_TLS_BASE + 0x1D)
#define HOST_ESP_ERR_TCP_TRANSPORT_CONNECTION_FAILED    (0xe000 + 3)

/* mbedTLS codes and certificate flags the real handshake reports (mbedtls/ssl.h, x509.h). */
#define HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED        0x2700
#define HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE        0x7780
#define HOST_MBEDTLS_ERR_SSL_CONN_EOF                   0x7280
#define HOST_MBEDTLS_X509_BADCERT_EXPIRED               0x01
#define HOST_MBEDTLS_X509_BADCERT_CN_MISMATCH           0x04
#define HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED           0x08
#define HOST_MBEDTLS_X509_BADCERT_FUTURE                0x0200

/* esp_transport_read() results (enum esp_tcp_transport_err_t) plus one for a clean end of body. */
#define RD_TIMEOUT  0
#define RD_FIN      (-1)
#define RD_ERROR    (-2)
#define RD_DONE     (-3)

/* libcurl hands the write callback at most CURL_MAX_WRITE_SIZE bytes at a time, so a ring of two
 * such chunks always accepts a chunk once it has been drained: memory stays bounded. */
#define RX_RING_SIZE (2 * CURL_MAX_WRITE_SIZE)

/* Guard added to the connect timeout while waiting for libcurl to send the request. */
#define REQUEST_SEND_GUARD_MS 1000

static const char *DEFAULT_HTTP_USER_AGENT = "ESP32 HTTP Client/1.0";
static const char *DEFAULT_HTTP_PATH = "/";
static const int DEFAULT_MAX_REDIRECT = 10;
static const int DEFAULT_MAX_AUTH_RETRIES = 10;
static const int DEFAULT_TIMEOUT_MS = 5000;
static const int DEFAULT_KEEP_ALIVE_IDLE = 5;
static const int DEFAULT_KEEP_ALIVE_INTERVAL = 5;
static const int DEFAULT_KEEP_ALIVE_COUNT = 3;
#define DEFAULT_HTTP_PORT (80)
#define DEFAULT_HTTPS_PORT (443)

static const char *HTTP_METHOD_MAPPING[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "OPTIONS", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPFIND", "PROPPATCH", "MKCOL", "REPORT",
};

typedef enum {
    HTTP_STATE_UNINIT = 0,
    HTTP_STATE_INIT,
    HTTP_STATE_CONNECTED,
    HTTP_STATE_REQ_COMPLETE_HEADER,
    HTTP_STATE_REQ_COMPLETE_DATA,
    HTTP_STATE_RES_COMPLETE_HEADER,
    HTTP_STATE_RES_ON_DATA_START,
    HTTP_STATE_RES_COMPLETE_DATA,
    HTTP_STATE_CLOSE
} esp_http_state_t;

/* Same layout as esp-tls's esp_tls_last_error_t: ESP-IDF passes this as the data of
 * HTTP_EVENT_ERROR / HTTP_EVENT_DISCONNECTED, and handlers cast it to esp_tls_error_handle_t. */
typedef struct {
    esp_err_t last_error;
    int esp_tls_error_code;
    int esp_tls_flags;
} host_tls_last_error_t;

typedef struct http_header_item {
    char *key;
    char *value;
    struct http_header_item *next;
} http_header_item_t;

struct esp_http_client {
    /* connection_info_t */
    char *scheme;
    char *host;
    int port;
    char *username;
    char *password;
    char *path;
    char *query;
    esp_http_client_method_t method;
    esp_http_client_auth_type_t auth_type;

    /* configuration */
    int timeout_ms;
    int buffer_size_rx;
    int buffer_size_tx;
    int max_redirection_count;
    int max_authorization_retries;
    bool disable_auto_redirect;
    http_event_handle_cb event_handler;
    void *user_data;
    const char *cert;               /* not copied, as in ESP-IDF: must outlive the client */
    size_t cert_len;
    const char *client_cert;
    size_t client_cert_len;
    const char *client_key;
    size_t client_key_len;
    char *client_key_password;
    esp_http_client_proto_ver_t tls_version;
    bool use_global_ca_store;
    bool use_crt_bundle;
    bool skip_cert_common_name_check;
    const char *common_name;
    bool keep_alive_enable;
    int keep_alive_idle;
    int keep_alive_interval;
    int keep_alive_count;
    char *if_name;
    esp_http_client_addr_type_t addr_type;

    /* request */
    http_header_item_t *headers;
    char *post_data;
    int post_len;
    int redirect_counter;
    int process_again;
    char *location;
    char *auth_header;

    /* response */
    int status_code;
    int64_t content_length;
    int64_t data_process;
    bool is_chunked;
    bool is_chunk_complete;
    bool keep_alive;

    /* response header block being parsed (copied to the fields above when it ends) */
    int pend_status;
    int64_t pend_content_length;
    bool pend_chunked;
    bool pend_keep_alive;
    bool headers_done;

    /* libcurl transfer */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *req_headers;
    char *curl_url;
    char *connect_to;
    struct curl_slist *connect_to_list;
    char curl_error[CURL_ERROR_SIZE];
    bool in_multi;
    bool multi_used;                /* the multi may hold a cached connection */
    bool prereq_seen;               /* connection (TCP + TLS) is up, request about to go out */
    bool request_sent;              /* request line and headers are on the wire */
    bool transfer_done;
    CURLcode result;
    long os_errno;
    bool recv_paused;
    bool send_paused;
    unsigned rx_progress;           /* bumped whenever bytes arrive, to restart timeouts */
    int last_sock;

    /* bounded receive buffer (ring) between libcurl and esp_http_client_read() */
    char *ring;
    size_t ring_cap;
    size_t ring_head;
    size_t ring_count;

    /* request body being written by esp_http_client_write() */
    const char *tx_ptr;
    size_t tx_len;
    int64_t tx_expected;
    int64_t tx_sent;

    /* errors, as tcp_transport / esp-tls keep them */
    int sock_errno;
    host_tls_last_error_t tls_error;

    esp_http_state_t state;
    esp_http_client_event_t event;
};

typedef struct esp_http_client esp_http_client_t;

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_result = CURLE_FAILED_INIT;

static void http_curl_global_init(void)
{
    s_curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
    /* The chip has no SIGPIPE: a write to a connection the server reset must fail with an
     * error, not end the process. With CURLOPT_NOSIGNAL libcurl leaves SIGPIPE alone, and TLS
     * writes can raise it (libmosquitto's mosquitto_new() ignores it the same way). */
    signal(SIGPIPE, SIG_IGN);
}

static int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 without line breaks; used for Basic auth and for turning a DER certificate into PEM,
 * which is the only form libcurl accepts for an in-memory CA. */
static char *http_base64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= in[i + 2];
        }
        out[o++] = s_b64[(v >> 18) & 0x3f];
        out[o++] = s_b64[(v >> 12) & 0x3f];
        out[o++] = (i + 1 < len) ? s_b64[(v >> 6) & 0x3f] : '=';
        out[o++] = (i + 2 < len) ? s_b64[v & 0x3f] : '=';
    }
    out[o] = '\0';
    return out;
}

static bool http_is_pem(const char *data, size_t len)
{
    return memmem(data, len, "-----BEGIN ", 11) != NULL;
}

/* PEM text for a certificate given as ESP-IDF accepts it: NUL-terminated PEM when len is 0,
 * otherwise PEM or DER of that length (mbedtls_x509_crt_parse() accepts both). */
static char *http_cert_to_pem(const char *data, size_t len)
{
    if (len == 0) {
        return strdup(data);
    }
    if (http_is_pem(data, len)) {
        return strndup(data, len);
    }
    char *b64 = http_base64_encode((const unsigned char *)data, len);
    if (b64 == NULL) {
        return NULL;
    }
    size_t b64_len = strlen(b64);
    char *pem = malloc(b64_len + b64_len / 64 + 64);
    if (pem == NULL) {
        free(b64);
        return NULL;
    }
    size_t o = (size_t)sprintf(pem, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < b64_len; i += 64) {
        size_t n = b64_len - i < 64 ? b64_len - i : 64;
        memcpy(pem + o, b64 + i, n);
        o += n;
        pem[o++] = '\n';
    }
    sprintf(pem + o, "-----END CERTIFICATE-----\n");
    free(b64);
    return pem;
}

/* ---------------------------------------------------------------- request headers (http_header.c) */

static http_header_item_t *http_header_find(esp_http_client_handle_t client, const char *key)
{
    for (http_header_item_t *item = client->headers; item; item = item->next) {
        if (strcasecmp(item->key, key) == 0) {
            return item;
        }
    }
    return NULL;
}

static esp_err_t http_header_delete(esp_http_client_handle_t client, const char *key)
{
    http_header_item_t **link = &client->headers;
    while (*link) {
        http_header_item_t *item = *link;
        if (strcasecmp(item->key, key) == 0) {
            *link = item->next;
            free(item->key);
            free(item->value);
            free(item);
            return ESP_OK;
        }
        link = &item->next;
    }
    return ESP_FAIL;
}

static esp_err_t http_header_set(esp_http_client_handle_t client, const char *key, const char *value)
{
    if (value == NULL) {
        return http_header_delete(client, key);
    }
    http_header_item_t *item = http_header_find(client, key);
    if (item) {
        char *copy = strdup(value);
        if (copy == NULL) {
            return ESP_ERR_NO_MEM;
        }
        free(item->value);
        item->value = copy;
        return ESP_OK;
    }
    item = calloc(1, sizeof(*item));
    if (item == NULL) {
        return ESP_ERR_NO_MEM;
    }
    item->key = strdup(key);
    item->value = strdup(value);
    if (item->key == NULL || item->value == NULL) {
        free(item->key);
        free(item->value);
        free(item);
        return ESP_ERR_NO_MEM;
    }
    /* Appended, so headers go out in the order they were first set, as in ESP-IDF. */
    http_header_item_t **link = &client->headers;
    while (*link) {
        link = &(*link)->next;
    }
    *link = item;
    return ESP_OK;
}

static void http_header_clean(esp_http_client_handle_t client)
{
    while (client->headers) {
        http_header_item_t *item = client->headers;
        client->headers = item->next;
        free(item->key);
        free(item->value);
        free(item);
    }
}

static esp_err_t http_assign_string(char **dst, const char *src, int len)
{
    char *copy = len < 0 ? strdup(src) : strndup(src, (size_t)len);
    if (copy == NULL) {
        return ESP_ERR_NO_MEM;
    }
    free(*dst);
    *dst = copy;
    return ESP_OK;
}

static esp_err_t http_append_string(char **dst, const char *src, size_t len)
{
    size_t old = *dst ? strlen(*dst) : 0;
    char *grown = realloc(*dst, old + len + 1);
    if (grown == NULL) {
        return ESP_ERR_NO_MEM;
    }
    memcpy(grown + old, src, len);
    grown[old + len] = '\0';
    *dst = grown;
    return ESP_OK;
}

/* ---------------------------------------------------------------- events */

static esp_err_t http_dispatch_event(esp_http_client_t *client, esp_http_client_event_id_t event_id, void *data, int len)
{
    esp_http_client_event_t *event = &client->event;

    if (client->event_handler) {
        event->event_id = event_id;
        event->user_data = client->user_data;
        event->data = data;
        event->data_len = len;
        return client->event_handler(event);
    }
    return ESP_OK;
}

static void http_dispatch_event_to_event_loop(int32_t event_id, const void *event_data, size_t event_data_size)
{
    esp_err_t err = esp_event_post(ESP_HTTP_CLIENT_EVENT, event_id, event_data, event_data_size, ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "Failed to post http_client event: %" PRId32 ", error: %s", event_id, esp_err_to_name(err));
    }
}

static void http_dispatch_error(esp_http_client_t *client)
{
    http_dispatch_event(client, HTTP_EVENT_ERROR, &client->tls_error, 0);
    http_dispatch_event_to_event_loop(HTTP_EVENT_ERROR, &client, sizeof(esp_http_client_handle_t));
}

/* ---------------------------------------------------------------- receive ring */

static size_t ring_free(const esp_http_client_t *client)
{
    return client->ring_cap - client->ring_count;
}

static void ring_put(esp_http_client_t *client, const char *data, size_t len)
{
    size_t tail = (client->ring_head + client->ring_count) % client->ring_cap;
    size_t first = client->ring_cap - tail < len ? client->ring_cap - tail : len;
    memcpy(client->ring + tail, data, first);
    memcpy(client->ring, data + first, len - first);
    client->ring_count += len;
}

static size_t ring_take(esp_http_client_t *client, char *out, size_t len)
{
    size_t n = client->ring_count < len ? client->ring_count : len;
    size_t first = client->ring_cap - client->ring_head < n ? client->ring_cap - client->ring_head : n;
    memcpy(out, client->ring + client->ring_head, first);
    memcpy(out + first, client->ring, n - first);
    client->ring_head = (client->ring_head + n) % client->ring_cap;
    client->ring_count -= n;
    if (client->ring_count == 0) {
        client->ring_head = 0;
    }
    return n;
}

/* ---------------------------------------------------------------- libcurl callbacks */

static size_t http_curl_write_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
    esp_http_client_t *client = userp;
    size_t len = size * nmemb;
    if (len > client->ring_cap && client->ring_count == 0) {
        /* Not expected (libcurl caps chunks at CURL_MAX_WRITE_SIZE), but never drop data. */
        char *grown = realloc(client->ring, len);
        if (grown == NULL) {
            return 0;
        }
        client->ring = grown;
        client->ring_cap = len;
        client->ring_head = 0;
    }
    if (len > ring_free(client)) {
        /* Caller has not read yet: stop receiving, libcurl keeps this chunk and stops reading the
         * socket, so the server is throttled by TCP like a device that is not reading. */
        client->recv_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    ring_put(client, ptr, len);
    client->rx_progress++;
    return len;
}

static size_t http_curl_read_cb(char *buffer, size_t size, size_t nitems, void *userp)
{
    esp_http_client_t *client = userp;
    size_t max = size * nitems;
    if (client->tx_len == 0) {
        if (client->tx_sent >= client->tx_expected) {
            return 0;
        }
        client->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    size_t n = client->tx_len < max ? client->tx_len : max;
    memcpy(buffer, client->tx_ptr, n);
    client->tx_ptr += n;
    client->tx_len -= n;
    client->tx_sent += (int64_t)n;
    return n;
}

static bool http_token_in(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    for (const char *p = value; *p; p++) {
        if (strncasecmp(p, token, tlen) == 0 && (p == value || p[-1] == ' ' || p[-1] == ',')
                && (p[tlen] == '\0' || p[tlen] == ' ' || p[tlen] == ',')) {
            return true;
        }
    }
    return false;
}

/* Plays the part of http_parser's header callbacks (http_on_header_field/value,
 * http_on_headers_complete) for one header line from libcurl. */
static size_t http_curl_header_cb(char *buffer, size_t size, size_t nitems, void *userp)
{
    esp_http_client_t *client = userp;
    size_t n = size * nitems;
    size_t len = n;
    client->rx_progress++;
    while (len > 0 && (buffer[len - 1] == '\r' || buffer[len - 1] == '\n')) {
        len--;
    }
    if (client->headers_done) {
        return n;   /* chunked trailers: ESP-IDF does not report them either */
    }
    if (len >= 5 && strncmp(buffer, "HTTP/", 5) == 0) {
        int major = 1, minor = 1, status = 0;
        char line[64];
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) - 1 ? len : sizeof(line) - 1), buffer);
        if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) < 3) {
            sscanf(line, "HTTP/%d %d", &major, &status);
            minor = 0;
        }
        client->pend_status = status;
        client->pend_content_length = -1;   /* http_parser's ULLONG_MAX seen as int64_t */
        client->pend_chunked = false;
        client->pend_keep_alive = (major > 1) || (major == 1 && minor >= 1);
        return n;
    }
    if (len == 0) {
        if (client->pend_status >= 100 && client->pend_status < 200) {
            return n;   /* interim response, the real one follows */
        }
        client->status_code = client->pend_status;
        client->content_length = client->pend_content_length;
        client->is_chunked = client->pend_chunked;
        client->keep_alive = client->pend_keep_alive;
        client->data_process = 0;
        client->headers_done = true;
        return n;
    }
    const char *colon = memchr(buffer, ':', len);
    if (colon == NULL) {
        return n;
    }
    char *key = strndup(buffer, (size_t)(colon - buffer));
    const char *v = colon + 1;
    while (v < buffer + len && (*v == ' ' || *v == '\t')) {
        v++;
    }
    size_t vlen = (size_t)(buffer + len - v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
        vlen--;
    }
    char *value = strndup(v, vlen);
    if (key == NULL || value == NULL) {
        free(key);
        free(value);
        return 0;   /* out of memory: abort the transfer */
    }
    if (strcasecmp(key, "Location") == 0) {
        http_append_string(&client->location, value, vlen);
    } else if (strcasecmp(key, "Transfer-Encoding") == 0 && strcmp(value, "chunked") == 0) {
        client->pend_chunked = true;
    } else if (strcasecmp(key, "WWW-Authenticate") == 0) {
        http_append_string(&client->auth_header, value, vlen);
    } else if (strcasecmp(key, "Content-Length") == 0) {
        client->pend_content_length = strtoll(value, NULL, 10);
    } else if (strcasecmp(key, "Connection") == 0) {
        if (http_token_in(value, "close")) {
            client->pend_keep_alive = false;
        } else if (http_token_in(value, "keep-alive")) {
            client->pend_keep_alive = true;
        }
    }
    ESP_LOGD(TAG, "HEADER=%s:%s", key, value);
    client->event.header_key = key;
    client->event.header_value = value;
    http_dispatch_event(client, HTTP_EVENT_ON_HEADER, NULL, 0);
    http_dispatch_event_to_event_loop(HTTP_EVENT_ON_HEADER, &client, sizeof(esp_http_client_handle_t));
    client->event.header_key = NULL;
    client->event.header_value = NULL;
    free(key);
    free(value);
    return n;
}

static int http_curl_prereq_cb(void *userp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    esp_http_client_t *client = userp;
    client->prereq_seen = true;
    return CURL_PREREQFUNC_OK;
}

/* Only used to learn when the request headers have been written (CURLINFO_HEADER_OUT). */
static int http_curl_debug_cb(CURL *handle, curl_infotype type, char *data, size_t size, void *userp)
{
    (void)handle;
    (void)data;
    (void)size;
    esp_http_client_t *client = userp;
    if (type == CURLINFO_HEADER_OUT) {
        client->request_sent = true;
    }
    return 0;
}

static int http_curl_sockopt_cb(void *userp, curl_socket_t curlfd, curlsocktype purpose)
{
    esp_http_client_t *client = userp;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        client->last_sock = (int)curlfd;
    }
    return CURL_SOCKOPT_OK;
}

/* ---------------------------------------------------------------- driving libcurl */

static void http_check_done(esp_http_client_t *client)
{
    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(client->multi, &queued)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == client->easy) {
            client->transfer_done = true;
            client->result = msg->data.result;
            long os_errno = 0;
            curl_easy_getinfo(client->easy, CURLINFO_OS_ERRNO, &os_errno);
            client->os_errno = os_errno;
            if (client->result != CURLE_OK) {
                ESP_LOGD(TAG, "libcurl: %s (%d) %s", curl_easy_strerror(client->result), (int)client->result, client->curl_error);
            }
            /* A finished transfer hands its connection back to the multi's cache, so a
             * keep-alive connection is reused by the next request, as on the device. */
            curl_multi_remove_handle(client->multi, client->easy);
            client->in_multi = false;
        }
    }
}

static void http_unpause(esp_http_client_t *client)
{
    if (!client->in_multi) {
        return;
    }
    if (client->recv_paused && ring_free(client) >= CURL_MAX_WRITE_SIZE) {
        client->recv_paused = false;
        curl_easy_pause(client->easy, client->send_paused ? CURLPAUSE_SEND : CURLPAUSE_CONT);
    }
    if (client->send_paused && client->tx_len > 0) {
        client->send_paused = false;
        curl_easy_pause(client->easy, client->recv_paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
    }
}

/* One step of libcurl: run what is ready and, only if that changed nothing, wait up to wait_ms
 * for socket activity. */
static void http_drive(esp_http_client_t *client, int wait_ms)
{
    int running = 0;
    unsigned before = client->rx_progress;
    bool was_sent = client->request_sent;
    size_t tx_before = client->tx_len;
    http_unpause(client);
    if (client->in_multi) {
        curl_multi_perform(client->multi, &running);
        http_check_done(client);
    }
    /* A paused receive is not watched by libcurl, so polling then would just sleep. */
    bool changed = client->rx_progress != before || client->request_sent != was_sent || client->tx_len != tx_before;
    if (wait_ms > 0 && client->in_multi && !changed && !client->recv_paused) {
        curl_multi_poll(client->multi, NULL, 0, wait_ms, NULL);
        curl_multi_perform(client->multi, &running);
        http_check_done(client);
    }
}

static void http_abort_transfer(esp_http_client_t *client)
{
    if (client->in_multi) {
        /* Removing an unfinished transfer makes libcurl close its connection. */
        curl_multi_remove_handle(client->multi, client->easy);
        client->in_multi = false;
    }
}

/* Really closes the connection: the cached keep-alive connection lives in the multi handle. */
static void http_close_connections(esp_http_client_t *client)
{
    http_abort_transfer(client);
    if (client->multi_used) {
        curl_multi_cleanup(client->multi);
        client->multi = curl_multi_init();
        client->multi_used = false;
    }
    client->ring_head = 0;
    client->ring_count = 0;
    client->recv_paused = false;
    client->send_paused = false;
}

/* ---------------------------------------------------------------- connect / request */

static bool http_is_https(const esp_http_client_t *client)
{
    return client->scheme && strcasecmp(client->scheme, "https") == 0;
}

static char *http_build_url(const esp_http_client_t *client, const char *host)
{
    char *url = NULL;
    bool ipv6 = strchr(host, ':') != NULL && host[0] != '[';
    int ret = asprintf(&url, ipv6 ? "%s://[%s]:%d%s%s%s" : "%s://%s:%d%s%s%s",
                       client->scheme, host, client->port, client->path ? client->path : DEFAULT_HTTP_PATH,
                       client->query ? "?" : "", client->query ? client->query : "");
    return ret < 0 ? NULL : url;
}

static esp_err_t http_setup_tls(esp_http_client_t *client)
{
    CURL *easy = client->easy;
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, client->skip_cert_common_name_check ? 0L : 2L);
    /* mbedTLS does not resume sessions unless session tickets are configured. */
    curl_easy_setopt(easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    /* esp-tls sends no ALPN unless alpn_protos is set (and libcurl can only offer HTTP ones). */
    curl_easy_setopt(easy, CURLOPT_SSL_ENABLE_ALPN, 0L);

    if (client->use_crt_bundle) {
        /* The host stands in the system CA store for the ESP x509 certificate bundle. */
    } else if (client->use_global_ca_store) {
        ESP_LOGE(TAG_MBEDTLS, "global_cacert is NULL");
        return ESP_FAIL;
    } else if (client->cert) {
        char *pem = http_cert_to_pem(client->cert, client->cert_len);
        if (pem == NULL) {
            return ESP_ERR_NO_MEM;
        }
        struct curl_blob blob = {.data = pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
        /* cert_pem is the only trust anchor: drop libcurl's default bundle and directory. */
        curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
        CURLcode rc = curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
        free(pem);
        if (rc != CURLE_OK) {
            ESP_LOGE(TAG_MBEDTLS, "mbedtls_x509_crt_parse of CA cert returned -0x%04X", 0x2180);
            return ESP_FAIL;
        }
    } else {
        ESP_LOGE(TAG_MBEDTLS, "No server verification option set in esp_tls_cfg_t structure. Check esp_tls API reference");
        ESP_LOGE(TAG_TLS, "create_ssl_handle failed");
        return ESP_FAIL;
    }

    if (client->client_cert && client->client_key) {
        bool cert_pem = client->client_cert_len == 0 || http_is_pem(client->client_cert, client->client_cert_len);
        struct curl_blob cert = {.data = (void *)client->client_cert,
                   .len = client->client_cert_len ? client->client_cert_len : strlen(client->client_cert),
                   .flags = CURL_BLOB_COPY};
        bool key_pem = client->client_key_len == 0 || http_is_pem(client->client_key, client->client_key_len);
        struct curl_blob key = {.data = (void *)client->client_key,
                   .len = client->client_key_len ? client->client_key_len : strlen(client->client_key),
                   .flags = CURL_BLOB_COPY};
        curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, cert_pem ? "PEM" : "DER");
        curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, key_pem ? "PEM" : "DER");
        curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
        if (client->client_key_password) {
            curl_easy_setopt(easy, CURLOPT_KEYPASSWD, client->client_key_password);
        }
    }

    switch (client->tls_version) {
    case ESP_HTTP_CLIENT_TLS_VER_TLS_1_2:
        curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
        break;
    case ESP_HTTP_CLIENT_TLS_VER_TLS_1_3:
        curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3));
        break;
    default:
        curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        break;
    }
    return ESP_OK;
}

static esp_err_t http_setup_easy(esp_http_client_t *client, int write_len)
{
    CURL *easy = client->easy;
    const char *url_host = client->host;

    free(client->connect_to);
    client->connect_to = NULL;
    curl_slist_free_all(client->connect_to_list);
    client->connect_to_list = NULL;
    if (http_is_https(client) && client->common_name && !client->skip_cert_common_name_check) {
        /* esp-tls uses common_name as the TLS host name (SNI and certificate check) while
         * connecting to host: the URL carries the name, CONNECT_TO the real address. */
        bool ipv6 = strchr(client->host, ':') != NULL;
        if (asprintf(&client->connect_to, ipv6 ? "%s:%d:[%s]:%d" : "%s:%d:%s:%d", client->common_name,
                     client->port, client->host, client->port) < 0) {
            client->connect_to = NULL;
            return ESP_ERR_NO_MEM;
        }
        client->connect_to_list = curl_slist_append(NULL, client->connect_to);
        url_host = client->common_name;
    }

    free(client->curl_url);
    client->curl_url = http_build_url(client, url_host);
    if (client->curl_url == NULL) {
        return ESP_ERR_NO_MEM;
    }

    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, client->curl_url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");                 /* never pick up *_proxy variables */
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)client->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)CURL_MAX_WRITE_SIZE);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, client->curl_error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_curl_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, client);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_curl_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, client);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, http_curl_read_cb);
    curl_easy_setopt(easy, CURLOPT_READDATA, client);
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, http_curl_prereq_cb);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, client);
    curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, http_curl_sockopt_cb);
    curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, client);
    /* The debug callback is only called in verbose mode; it prints nothing itself. */
    curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, http_curl_debug_cb);
    curl_easy_setopt(easy, CURLOPT_DEBUGDATA, client);
    curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    if (client->connect_to_list) {
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, client->connect_to_list);
    }

    if (client->keep_alive_enable) {
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, (long)client->keep_alive_idle);
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, (long)client->keep_alive_interval);
    }
    if (client->addr_type == HTTP_ADDR_TYPE_INET) {
        curl_easy_setopt(easy, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
    } else if (client->addr_type == HTTP_ADDR_TYPE_INET6) {
        curl_easy_setopt(easy, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V6);
    }
    if (client->if_name) {
        curl_easy_setopt(easy, CURLOPT_INTERFACE, client->if_name);
    }

    /* Method and body, as http_client_prepare_first_line() frames them. */
    const bool length_required = (client->method != HTTP_METHOD_GET && client->method != HTTP_METHOD_HEAD &&
                                  client->method != HTTP_METHOD_DELETE);
    if (client->method == HTTP_METHOD_HEAD) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (write_len != 0 || length_required) {
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)write_len);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, HTTP_METHOD_MAPPING[client->method]);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        if (client->method != HTTP_METHOD_GET) {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, HTTP_METHOD_MAPPING[client->method]);
        }
    }

    /* Request headers: exactly the client's list, in order. libcurl's own defaults that ESP-IDF
     * does not send are switched off ("Name:" with no value removes a libcurl header). */
    curl_slist_free_all(client->req_headers);
    client->req_headers = NULL;
    for (http_header_item_t *item = client->headers; item; item = item->next) {
        if (strcasecmp(item->key, "Content-Length") == 0) {
            continue;   /* ESP-IDF replaces it with the write_len framing */
        }
        char *line = NULL;
        if (asprintf(&line, "%s: %s", item->key, item->value) < 0) {
            return ESP_ERR_NO_MEM;
        }
        struct curl_slist *grown = curl_slist_append(client->req_headers, line);
        free(line);
        if (grown == NULL) {
            return ESP_ERR_NO_MEM;
        }
        client->req_headers = grown;
    }
    static const char *const suppressed[] = {"Accept", "Expect", "Content-Type", "User-Agent"};
    for (size_t i = 0; i < sizeof(suppressed) / sizeof(suppressed[0]); i++) {
        if (http_header_find(client, suppressed[i]) == NULL) {
            char line[32];
            snprintf(line, sizeof(line), "%s:", suppressed[i]);
            client->req_headers = curl_slist_append(client->req_headers, line);
        }
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, client->req_headers);

    if (http_is_https(client)) {
        return http_setup_tls(client);
    }
    return ESP_OK;
}

static int http_cert_flags_from_curl(const esp_http_client_t *client)
{
    const char *msg = client->curl_error;
    if (strstr(msg, "subject name") || strstr(msg, "does not match") || strstr(msg, "hostname")) {
        return HOST_MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    if (strstr(msg, "expired")) {
        return HOST_MBEDTLS_X509_BADCERT_EXPIRED;
    }
    if (strstr(msg, "not yet valid")) {
        return HOST_MBEDTLS_X509_BADCERT_FUTURE;
    }
    return HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED;
}

/* The lines esp-tls and tcp_transport print when esp_transport_connect() fails, then
 * esp_http_client_connect()'s own. */
static void http_report_connect_failure(esp_http_client_t *client, CURLcode res, long os_errno)
{
    const bool https = http_is_https(client);
    client->tls_error.last_error = HOST_ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST;
    client->tls_error.esp_tls_error_code = 0;
    client->tls_error.esp_tls_flags = 0;
    bool tls_stage = false;

    switch (res) {
    case CURLE_COULDNT_RESOLVE_HOST:
        ESP_LOGE(TAG_TLS, "couldn't get hostname for :%s: getaddrinfo() returns %d, addrinfo=%p",
                 client->host, 202, (void *)NULL);
        client->tls_error.last_error = HOST_ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME;
        break;
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connect_time = 0;
        curl_easy_getinfo(client->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
        if (https && connect_time > 0) {
            ESP_LOGW(TAG_TLS, "Failed to open new connection in specified timeout");
            tls_stage = true;
        } else {
            ESP_LOGE(TAG_TLS, "[sock=%d] select() timeout", client->last_sock);
        }
        client->tls_error.last_error = HOST_ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT;
        break;
    }
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
        ESP_LOGI(TAG_MBEDTLS, "Failed to verify peer certificate!");
        client->tls_error.last_error = HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED;
        client->tls_error.esp_tls_error_code = HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
        client->tls_error.esp_tls_flags = http_cert_flags_from_curl(client);
        tls_stage = true;
        break;
    case CURLE_COULDNT_CONNECT:
        ESP_LOGE(TAG_TLS, "[sock=%d] delayed connect error: %s", client->last_sock, strerror((int)os_errno));
        client->sock_errno = (int)os_errno;
        break;
    default: {
        curl_off_t connect_time = 0;
        curl_easy_getinfo(client->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
        if (https && connect_time > 0) {
            int code = os_errno == 0 && strstr(client->curl_error, "EOF") ? HOST_MBEDTLS_ERR_SSL_CONN_EOF
                       : HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
            ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", code);
            client->tls_error.last_error = HOST_ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED;
            client->tls_error.esp_tls_error_code = code;
            tls_stage = true;
        } else {
            ESP_LOGE(TAG_TLS, "[sock=%d] connect() error: %s", client->last_sock, strerror(os_errno ? (int)os_errno : EIO));
            client->sock_errno = (int)os_errno;
        }
        break;
    }
    }
    if (https || tls_stage) {
        ESP_LOGE(TAG_TLS, "Failed to open new connection");
        ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection");
    } else {
        ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection: %d", client->tls_error.last_error);
    }
    ESP_LOGE(TAG, "Connection failed, sock < 0");
}

/* Starts the libcurl transfer for the current request and waits until the request line and
 * headers are sent: the work of esp_transport_connect() + esp_http_client_request_send(). */
static esp_err_t http_send_request(esp_http_client_t *client, int write_len)
{
    if (write_len < 0) {
        ESP_LOGE(TAG, "Chunked request bodies (write_len < 0) are not supported by the host port");
        return ESP_FAIL;
    }
    http_abort_transfer(client);

    client->ring_head = 0;
    client->ring_count = 0;
    client->recv_paused = false;
    client->send_paused = false;
    client->headers_done = false;
    client->transfer_done = false;
    client->result = CURLE_OK;
    client->os_errno = 0;
    client->prereq_seen = false;
    client->request_sent = false;
    client->pend_status = 0;
    client->pend_content_length = -1;
    client->pend_chunked = false;
    client->pend_keep_alive = true;
    client->is_chunked = false;
    client->is_chunk_complete = false;
    client->content_length = 0;
    client->data_process = 0;
    client->tx_ptr = NULL;
    client->tx_len = 0;
    client->tx_expected = write_len;
    client->tx_sent = 0;
    client->curl_error[0] = '\0';
    client->last_sock = -1;

    esp_err_t err = http_setup_easy(client, write_len);
    if (err != ESP_OK) {
        if (http_is_https(client) && client->state < HTTP_STATE_CONNECTED) {
            /* TLS configuration problems surface from esp_transport_connect() on the device. */
            ESP_LOGE(TAG_TLS, "Failed to open new connection");
            ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection");
            ESP_LOGE(TAG, "Connection failed, sock < 0");
            return ESP_ERR_HTTP_CONNECT;
        }
        return err;
    }
    if (curl_multi_add_handle(client->multi, client->easy) != CURLM_OK) {
        ESP_LOGE(TAG, "Error initialize transport");
        return ESP_FAIL;
    }
    client->in_multi = true;
    client->multi_used = true;

    const int64_t deadline = http_now_ms() + client->timeout_ms + REQUEST_SEND_GUARD_MS;
    while (!client->request_sent && !client->transfer_done && http_now_ms() < deadline) {
        http_drive(client, 50);
        if (client->prereq_seen && client->state < HTTP_STATE_CONNECTED) {
            client->state = HTTP_STATE_CONNECTED;
            http_dispatch_event(client, HTTP_EVENT_ON_CONNECTED, NULL, 0);
            http_dispatch_event_to_event_loop(HTTP_EVENT_ON_CONNECTED, &client, sizeof(esp_http_client_handle_t));
        }
    }
    if (!client->request_sent) {
        CURLcode res = client->transfer_done ? client->result : CURLE_OPERATION_TIMEDOUT;
        long os_errno = client->os_errno;
        http_abort_transfer(client);
        if (!client->prereq_seen) {
            http_report_connect_failure(client, res, os_errno);
            return ESP_ERR_HTTP_CONNECT;
        }
        ESP_LOGE(TAG, "Error write request");
        esp_http_client_close(client);
        return ESP_ERR_HTTP_WRITE_DATA;
    }
    client->state = HTTP_STATE_REQ_COMPLETE_HEADER;
    http_dispatch_event(client, HTTP_EVENT_HEADERS_SENT, NULL, 0);
    http_dispatch_event_to_event_loop(HTTP_EVENT_HEADERS_SENT, &client, sizeof(esp_http_client_handle_t));
    return ESP_OK;
}

/* ---------------------------------------------------------------- response body */

/* Waits like esp_transport_read(client->timeout_ms) for body bytes and hands them over the way
 * http_on_body() does (data_process, HTTP_EVENT_ON_DATA). Returns the byte count, RD_TIMEOUT,
 * RD_FIN (closed before the end of the body), RD_ERROR (socket / TLS error) or RD_DONE. */
static int http_body_read(esp_http_client_t *client, char *buffer, int len)
{
    int64_t deadline = http_now_ms() + client->timeout_ms;
    for (;;) {
        if (client->ring_count > 0) {
            int n = (int)ring_take(client, buffer, (size_t)len);
            client->data_process += n;
            http_dispatch_event(client, HTTP_EVENT_ON_DATA, buffer, n);
            esp_http_client_on_data_t evt_data = {.client = client, .data_process = client->data_process};
            http_dispatch_event_to_event_loop(HTTP_EVENT_ON_DATA, &evt_data, sizeof(evt_data));
            return n;
        }
        if (client->transfer_done) {
            if (client->result == CURLE_OK) {
                client->is_chunk_complete = true;
                return RD_DONE;
            }
            bool fin = client->result == CURLE_PARTIAL_FILE || client->result == CURLE_GOT_NOTHING ||
                       ((client->result == CURLE_RECV_ERROR || client->result == CURLE_SSL_CONNECT_ERROR) &&
                        client->os_errno == 0);
            return fin ? RD_FIN : RD_ERROR;
        }
        if (!client->in_multi) {
            return RD_ERROR;
        }
        unsigned before = client->rx_progress;
        int64_t remaining = deadline - http_now_ms();
        if (remaining <= 0) {
            return RD_TIMEOUT;
        }
        http_drive(client, remaining > 1000 ? 1000 : (int)remaining);
        if (client->rx_progress != before) {
            deadline = http_now_ms() + client->timeout_ms;
        }
    }
}

/* The log lines tcp_transport prints for a failed read, and the errno it leaves behind. */
static void http_report_read_error(esp_http_client_t *client)
{
    int err = (int)client->os_errno;
    if (err == EPIPE) {
        /* After a reset OpenSSL's last syscall can be a failed write (alert); the device's
         * failed recv() reports the reset itself. */
        err = ECONNRESET;
    }
    client->sock_errno = err;
    if (http_is_https(client)) {
        ESP_LOGE(TAG_MBEDTLS, "read error :-0x%04X", 0x50);
        ESP_LOGE(TAG_TRANSPORT, "esp_tls_conn_read error, errno=%s", strerror(err));
        client->tls_error.last_error = HOST_ESP_ERR_MBEDTLS_SSL_READ_FAILED;
    } else {
        ESP_LOGE(TAG_TRANSPORT, "tcp_read error, errno=%s", strerror(err));
    }
}

/* ---------------------------------------------------------------- public API */

esp_err_t esp_http_client_set_header(esp_http_client_handle_t client, const char *key, const char *value)
{
    if (client == NULL || key == NULL) {
        return ESP_FAIL;
    }
    return http_header_set(client, key, value);
}

esp_err_t esp_http_client_get_header(esp_http_client_handle_t client, const char *key, char **value)
{
    if (client == NULL || key == NULL || value == NULL) {
        return ESP_FAIL;
    }
    http_header_item_t *item = http_header_find(client, key);
    *value = item ? item->value : NULL;
    return ESP_OK;
}

esp_err_t esp_http_client_delete_header(esp_http_client_handle_t client, const char *key)
{
    if (client == NULL || key == NULL) {
        return ESP_FAIL;
    }
    return http_header_delete(client, key);
}

static esp_err_t _clear_connection_info(esp_http_client_handle_t client)
{
    free(client->path);
    free(client->host);
    free(client->query);
    free(client->username);
    if (client->password) {
        memset(client->password, 0, strlen(client->password));
        free(client->password);
    }
    free(client->scheme);
    client->path = client->host = client->query = client->username = client->password = client->scheme = NULL;
    client->port = 0;
    return ESP_OK;
}

static esp_err_t _set_config(esp_http_client_handle_t client, const esp_http_client_config_t *config)
{
    client->method = config->method;
    client->port = config->port;
    client->auth_type = config->auth_type;
    client->event_handler = config->event_handler;
    client->timeout_ms = config->timeout_ms;
    client->max_redirection_count = config->max_redirection_count;
    client->max_authorization_retries = config->max_authorization_retries;
    client->user_data = config->user_data;
    client->buffer_size_rx = config->buffer_size;
    client->buffer_size_tx = config->buffer_size_tx;
    client->disable_auto_redirect = config->disable_auto_redirect;

    if (config->buffer_size == 0) {
        client->buffer_size_rx = DEFAULT_HTTP_BUF_SIZE;
    }
    if (config->buffer_size_tx == 0) {
        client->buffer_size_tx = DEFAULT_HTTP_BUF_SIZE;
    }
    if (client->max_redirection_count == 0) {
        client->max_redirection_count = DEFAULT_MAX_REDIRECT;
    }
    if (client->max_authorization_retries == 0) {
        client->max_authorization_retries = DEFAULT_MAX_AUTH_RETRIES;
    } else if (client->max_authorization_retries == -1) {
        client->max_authorization_retries = 0;
    }

    client->path = strdup(config->path ? config->path : DEFAULT_HTTP_PATH);
    if (client->path == NULL) {
        ESP_LOGE(TAG, "Memory exhausted");
        return ESP_ERR_NO_MEM;
    }
    if ((config->host && http_assign_string(&client->host, config->host, -1) != ESP_OK) ||
            (config->query && http_assign_string(&client->query, config->query, -1) != ESP_OK) ||
            (config->username && http_assign_string(&client->username, config->username, -1) != ESP_OK) ||
            (config->password && http_assign_string(&client->password, config->password, -1) != ESP_OK) ||
            http_assign_string(&client->scheme, config->transport_type == HTTP_TRANSPORT_OVER_SSL ? "https" : "http", -1) != ESP_OK) {
        ESP_LOGE(TAG, "Memory exhausted");
        _clear_connection_info(client);
        return ESP_ERR_NO_MEM;
    }
    if (client->port == 0) {
        client->port = config->transport_type == HTTP_TRANSPORT_OVER_SSL ? DEFAULT_HTTPS_PORT : DEFAULT_HTTP_PORT;
    }
    if (client->timeout_ms == 0) {
        client->timeout_ms = DEFAULT_TIMEOUT_MS;
    }
    return ESP_OK;
}

static char *_get_host_header(char *host, int port)
{
    char *host_name = NULL;
    bool is_ipv6 = (host[0] != '[' && strchr(host, ':') != NULL);
    int err;
    if (port != DEFAULT_HTTP_PORT && port != DEFAULT_HTTPS_PORT) {
        err = asprintf(&host_name, is_ipv6 ? "[%s]:%d" : "%s:%d", host, port);
    } else {
        err = asprintf(&host_name, is_ipv6 ? "[%s]" : "%s", host);
    }
    return err == -1 ? NULL : host_name;
}

esp_http_client_handle_t esp_http_client_init(const esp_http_client_config_t *config)
{
    pthread_once(&s_curl_once, http_curl_global_init);
    if (s_curl_init_result != CURLE_OK) {
        ESP_LOGE(TAG, "Error initialize transport");
        return NULL;
    }
    if (config == NULL) {
        return NULL;
    }

    esp_http_client_handle_t client = calloc(1, sizeof(esp_http_client_t));
    if (client == NULL) {
        ESP_LOGE(TAG, "Error allocate memory");
        return NULL;
    }
    client->multi = curl_multi_init();
    client->easy = curl_easy_init();
    client->ring_cap = RX_RING_SIZE;
    client->ring = malloc(client->ring_cap);
    if (client->multi == NULL || client->easy == NULL || client->ring == NULL) {
        ESP_LOGE(TAG, "Error initialize transport");
        goto error;
    }
    client->last_sock = -1;

    /* TLS settings, kept as esp_transport_ssl keeps them: by pointer, used at connect time. */
    client->use_crt_bundle = config->crt_bundle_attach != NULL;
    client->use_global_ca_store = config->use_global_ca_store;
    client->cert = config->cert_pem;
    client->cert_len = config->cert_len;
    client->client_cert = config->client_cert_pem;
    client->client_cert_len = config->client_cert_len;
    client->client_key = config->client_key_pem;
    client->client_key_len = config->client_key_len;
    if (config->client_key_password && config->client_key_password_len > 0) {
        client->client_key_password = strndup(config->client_key_password, config->client_key_password_len);
    }
    client->tls_version = config->tls_version;
    client->skip_cert_common_name_check = config->skip_cert_common_name_check;
    client->common_name = config->common_name;
    client->addr_type = config->addr_type;
    if (config->keep_alive_enable) {
        client->keep_alive_enable = true;
        client->keep_alive_idle = config->keep_alive_idle == 0 ? DEFAULT_KEEP_ALIVE_IDLE : config->keep_alive_idle;
        client->keep_alive_interval = config->keep_alive_interval == 0 ? DEFAULT_KEEP_ALIVE_INTERVAL : config->keep_alive_interval;
        client->keep_alive_count = config->keep_alive_count == 0 ? DEFAULT_KEEP_ALIVE_COUNT : config->keep_alive_count;
    }
    if (config->if_name) {
        /* struct ifreq starts with ifr_name[IFNAMSIZ] (16 bytes); "if!" makes libcurl bind to it. */
        char name[17] = {0};
        memcpy(name, (const char *)config->if_name, 16);
        if (asprintf(&client->if_name, "if!%s", name) < 0) {
            client->if_name = NULL;
        }
    }
    if (config->alpn_protos) {
        ESP_LOGW(TAG, "alpn_protos is not supported by the host port, no ALPN is sent");
    }

    if (_set_config(client, config) != ESP_OK) {
        ESP_LOGE(TAG, "Error set configurations");
        goto error;
    }

    const char *user_agent = config->user_agent == NULL ? DEFAULT_HTTP_USER_AGENT : config->user_agent;

    if (config->host != NULL && config->path != NULL) {
        if (client->host == NULL) {
            ESP_LOGE(TAG, "invalid host");
            goto error;
        }
    } else if (config->url != NULL) {
        if (esp_http_client_set_url(client, config->url) != ESP_OK) {
            ESP_LOGE(TAG, "Failed to set URL");
            goto error;
        }
        if (client->host == NULL) {
            ESP_LOGE(TAG, "invalid host");
            goto error;
        }
    } else {
        ESP_LOGE(TAG, "config should have either URL or host & path");
        goto error;
    }
    char *host_name = _get_host_header(client->host, client->port);
    if (host_name == NULL) {
        ESP_LOGE(TAG, "Failed to allocate memory for host header");
        goto error;
    }
    bool ok = esp_http_client_set_header(client, "User-Agent", user_agent) == ESP_OK &&
              esp_http_client_set_header(client, "Host", host_name) == ESP_OK;
    free(host_name);
    if (!ok) {
        ESP_LOGE(TAG, "Error while setting default configurations");
        goto error;
    }

    client->event.client = client;
    client->status_code = -1;
    client->keep_alive = true;
    client->state = HTTP_STATE_INIT;
    return client;

error:
    esp_http_client_cleanup(client);
    return NULL;
}

esp_err_t esp_http_client_cleanup(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return ESP_FAIL;
    }
    if (client->state != HTTP_STATE_UNINIT) {
        esp_http_client_close(client);
    }
    if (client->multi) {
        http_abort_transfer(client);
        curl_multi_cleanup(client->multi);
    }
    if (client->easy) {
        curl_easy_cleanup(client->easy);
    }
    curl_slist_free_all(client->req_headers);
    curl_slist_free_all(client->connect_to_list);
    free(client->connect_to);
    free(client->curl_url);
    http_header_clean(client);
    _clear_connection_info(client);
    if (client->client_key_password) {
        memset(client->client_key_password, 0, strlen(client->client_key_password));
        free(client->client_key_password);
    }
    free(client->if_name);
    free(client->location);
    free(client->auth_header);
    free(client->ring);
    free(client);
    return ESP_OK;
}

esp_err_t esp_http_client_set_redirection(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (client->location == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    ESP_LOGD(TAG, "Redirect to %s", client->location);
    esp_err_t err = esp_http_client_set_url(client, client->location);
    if (err == ESP_OK) {
        client->redirect_counter++;
        client->process_again = 1;  // used only in the blocking mode (when esp_http_client_perform() is called)
    }
    return err;
}

static esp_err_t esp_http_check_response(esp_http_client_handle_t client)
{
    if (client->status_code >= HttpStatus_Ok && client->status_code < HttpStatus_MultipleChoices) {
        client->redirect_counter = 0;
        return ESP_OK;
    }
    if (client->redirect_counter >= client->max_redirection_count) {
        ESP_LOGE(TAG, "Error, reach max_redirection_count count=%d", client->redirect_counter);
        return ESP_ERR_HTTP_MAX_REDIRECT;
    }
    switch (client->status_code) {
    case HttpStatus_MovedPermanently:
    case HttpStatus_Found:
    case HttpStatus_SeeOther:
    case HttpStatus_TemporaryRedirect:
    case HttpStatus_PermanentRedirect: {
        if (client->disable_auto_redirect) {
            http_dispatch_event(client, HTTP_EVENT_REDIRECT, NULL, 0);
        } else {
            if (esp_http_client_set_redirection(client) != ESP_OK) {
                return ESP_FAIL;
            }
        }
        esp_http_client_redirect_event_data_t evt_data = {
            .status_code = client->status_code,
            .client = client,
        };
        http_dispatch_event_to_event_loop(HTTP_EVENT_REDIRECT, &evt_data, sizeof(esp_http_client_redirect_event_data_t));
        break;
    }
    case HttpStatus_Unauthorized:
        return esp_http_client_add_auth(client);
    }
    return ESP_OK;
}

/* Splits a URL into scheme, host, port, user info, path and query. A URL that starts with '/'
 * is resolved against the current one, which is what keeping the old fields does in ESP-IDF. */
esp_err_t esp_http_client_set_url(esp_http_client_handle_t client, const char *url)
{
    esp_err_t ret = ESP_OK;
    if (client == NULL || url == NULL) {
        ESP_LOGE(TAG, "client or url must not NULL");
        return ESP_ERR_INVALID_ARG;
    }
    pthread_once(&s_curl_once, http_curl_global_init);

    CURLU *u = curl_url();
    if (u == NULL) {
        return ESP_ERR_NO_MEM;
    }
    bool parsed = false;
    if (url[0] == '/' && url[1] != '/' && client->host && client->scheme) {
        char *base = http_build_url(client, client->host);
        parsed = base && curl_url_set(u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
                 curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
        free(base);
    } else if (strstr(url, "://") != NULL) {
        parsed = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
    }
    if (!parsed) {
        ESP_LOGE(TAG, "Error parse url %s", url);
        curl_url_cleanup(u);
        return ESP_ERR_INVALID_ARG;
    }

    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL, *path = NULL, *query = NULL;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);

    char *old_host = client->host ? strdup(client->host) : NULL;
    int old_port = client->port;

    if (host && host[0]) {
        /* http_parser gives IPv6 literals without brackets. */
        size_t hlen = strlen(host);
        if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
            ret = http_assign_string(&client->host, host + 1, (int)hlen - 2);
        } else {
            ret = http_assign_string(&client->host, host, -1);
        }
        if (ret != ESP_OK) {
            goto done;
        }
    }
    // Close the connection if host was changed
    if (old_host && client->host && strcasecmp(old_host, client->host) != 0) {
        ESP_LOGD(TAG, "New host assign = %s", client->host);
        /* As in ESP-IDF, the new Host header carries no port. */
        if (esp_http_client_set_header(client, "Host", client->host) != ESP_OK) {
            ret = ESP_ERR_NO_MEM;
            goto done;
        }
        esp_http_client_close(client);
    }

    if (scheme) {
        if ((ret = http_assign_string(&client->scheme, scheme, -1)) != ESP_OK) {
            goto done;
        }
        if (strcasecmp(client->scheme, "http") == 0) {
            client->port = DEFAULT_HTTP_PORT;
        } else if (strcasecmp(client->scheme, "https") == 0) {
            client->port = DEFAULT_HTTPS_PORT;
        }
    }
    if (port) {
        client->port = (int)strtol(port, NULL, 10);
    }
    if (old_port != client->port) {
        esp_http_client_close(client);
    }

    if (user) {
        if ((ret = http_assign_string(&client->username, user, -1)) != ESP_OK) {
            goto done;
        }
        if (pass && (ret = http_assign_string(&client->password, pass, -1)) != ESP_OK) {
            goto done;
        }
    }

    //Reset path and query if there are no information
    if ((ret = http_assign_string(&client->path, path && path[0] ? path : "/", -1)) != ESP_OK) {
        goto done;
    }
    if (query && query[0]) {
        ret = http_assign_string(&client->query, query, -1);
    } else {
        free(client->query);
        client->query = NULL;
    }

done:
    free(old_host);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return ret;
}

int esp_http_client_get_errno(esp_http_client_handle_t client)
{
    if (!client) {
        ESP_LOGE(TAG, "Invalid client handle");
        return -1;
    }
    return client->sock_errno;
}

esp_err_t esp_http_client_get_and_clear_last_tls_error(esp_http_client_handle_t client, int *esp_tls_error_code, int *esp_tls_flags)
{
    if (!client) {
        ESP_LOGE(TAG, "Invalid client handle");
        return ESP_FAIL;
    }
    esp_err_t last = client->tls_error.last_error;
    if (esp_tls_error_code) {
        *esp_tls_error_code = client->tls_error.esp_tls_error_code;
    }
    if (esp_tls_flags) {
        *esp_tls_flags = client->tls_error.esp_tls_flags;
    }
    memset(&client->tls_error, 0, sizeof(client->tls_error));
    return last;
}

esp_err_t esp_http_client_set_method(esp_http_client_handle_t client, esp_http_client_method_t method)
{
    client->method = method;
    return ESP_OK;
}

esp_err_t esp_http_client_set_timeout_ms(esp_http_client_handle_t client, int timeout_ms)
{
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    client->timeout_ms = timeout_ms;
    return ESP_OK;
}

bool esp_http_client_is_complete_data_received(esp_http_client_handle_t client)
{
    if (client->is_chunked) {
        if (!client->is_chunk_complete) {
            ESP_LOGD(TAG, "Chunks were not completely read");
            return false;
        }
    } else {
        if (client->data_process != client->content_length) {
            ESP_LOGD(TAG, "Data processed %" PRId64 " != Data specified in content length %" PRId64,
                     client->data_process, client->content_length);
            return false;
        }
    }
    return true;
}

int esp_http_client_read(esp_http_client_handle_t client, char *buffer, int len)
{
    int rlen = ESP_FAIL, ridx = 0;
    int need_read = len;
    bool is_data_remain = true;

    if (client->method == HTTP_METHOD_HEAD) {
        return 0;
    }
    while (need_read > 0 && is_data_remain) {
        if (client->is_chunked) {
            is_data_remain = !client->is_chunk_complete;
        } else {
            is_data_remain = client->data_process < client->content_length;
        }
        ESP_LOGD(TAG, "is_data_remain=%d, is_chunked=%d, content_length=%" PRId64, is_data_remain, client->is_chunked, client->content_length);
        if (!is_data_remain) {
            break;
        }
        if (client->state < HTTP_STATE_RES_ON_DATA_START) {
            rlen = RD_FIN;  /* no response to read from (closed, or headers not fetched) */
        } else {
            rlen = http_body_read(client, buffer + ridx, need_read);
        }
        if (rlen == RD_DONE) {
            if (client->is_chunked) {
                continue;   /* is_chunk_complete is now set */
            }
            rlen = RD_FIN;  /* libcurl finished short of Content-Length */
        }
        ESP_LOGD(TAG, "need_read=%d, rlen=%d, ridx=%d", need_read, rlen, ridx);

        if (rlen <= 0) {
            int err_no = 0;
            esp_log_level_t sev = ESP_LOG_WARN;
            if (rlen == RD_FIN && client->is_chunked) {
                sev = ESP_LOG_DEBUG;
            }
            if (rlen == RD_ERROR) {
                http_report_read_error(client);
                err_no = client->sock_errno;
            }
            if (err_no != 0) {
                if (sev == ESP_LOG_WARN) {
                    ESP_LOGW(TAG, "esp_transport_read returned:%d and errno:%d ", rlen, err_no);
                } else {
                    ESP_LOGD(TAG, "esp_transport_read returned:%d and errno:%d ", rlen, err_no);
                }
            }

            if (rlen == RD_TIMEOUT) {
                ESP_LOGD(TAG, "Connection timed out before data was ready!");
                errno = 0;
                /* Returning the number of bytes read upto the point where connection timed out */
                if (ridx) {
                    return ridx;
                }
                return -ESP_ERR_HTTP_EAGAIN;
            }

            if (rlen != RD_FIN) {
                esp_err_t err = HOST_ESP_ERR_TCP_TRANSPORT_CONNECTION_FAILED;
                ESP_LOGE(TAG, "transport_read: error - %d | %s", err, esp_err_to_name(err));
            }

            if (rlen < 0 && ridx == 0 && !esp_http_client_is_complete_data_received(client)) {
                http_dispatch_error(client);
                errno = err_no;
                return ESP_FAIL;
            }
            errno = err_no;
            return ridx;
        }
        ridx += rlen;
        need_read -= rlen;
    }
    errno = 0;
    return ridx;
}

static esp_err_t esp_http_client_connect(esp_http_client_handle_t client)
{
    esp_err_t err;

    if (client->state == HTTP_STATE_UNINIT) {
        ESP_LOGE(TAG, "Client has not been initialized");
        return ESP_ERR_INVALID_STATE;
    }
    if ((err = esp_http_client_prepare(client)) != ESP_OK) {
        ESP_LOGE(TAG, "Failed to initialize request data");
        esp_http_client_close(client);
        return err;
    }
    if (client->state < HTTP_STATE_CONNECTED) {
        ESP_LOGD(TAG, "Begin connect to: %s://%s:%d", client->scheme, client->host, client->port);
        if (client->scheme == NULL ||
                (strcasecmp(client->scheme, "http") != 0 && strcasecmp(client->scheme, "https") != 0)) {
            ESP_LOGE(TAG, "No transport found");
            return ESP_ERR_HTTP_INVALID_TRANSPORT;
        }
    }
    return ESP_OK;
}

static int esp_http_client_get_data(esp_http_client_handle_t client, char *buffer, int len)
{
    if (client->state < HTTP_STATE_RES_ON_DATA_START) {
        return ESP_FAIL;
    }
    if (client->method == HTTP_METHOD_HEAD) {
        return 0;
    }
    int rlen = http_body_read(client, buffer, len);
    return rlen == RD_DONE ? 0 : rlen;
}

esp_err_t esp_http_client_perform(esp_http_client_handle_t client)
{
    esp_err_t err = ESP_FAIL;
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    char *buf = malloc((size_t)client->buffer_size_rx);
    if (buf == NULL) {
        return ESP_ERR_NO_MEM;
    }
    do {
        if (client->process_again) {
            esp_http_client_prepare(client);
        }
        /* Blocking mode: every round starts from INIT or CONNECTED (kept-alive connection). */
        if ((err = esp_http_client_connect(client)) != ESP_OK) {
            http_dispatch_error(client);
            goto out;
        }
        if ((err = http_send_request(client, client->post_len)) != ESP_OK) {
            http_dispatch_error(client);
            goto out;
        }
        if (client->post_data && client->post_len > 0) {
            int wret = esp_http_client_write(client, client->post_data, client->post_len);
            if (wret != client->post_len) {
                err = wret < 0 ? wret : ESP_ERR_HTTP_WRITE_DATA;
                http_dispatch_error(client);
                goto out;
            }
        }
        client->state = HTTP_STATE_REQ_COMPLETE_DATA;

        int64_t ret = esp_http_client_fetch_headers(client);
        if (ret < 0) {
            if (ret == -ESP_ERR_HTTP_EAGAIN) {
                err = ESP_ERR_HTTP_EAGAIN;
                goto out;
            }
            if (client->sock_errno == ENOTCONN) {
                ESP_LOGW(TAG, "Close connection due to FIN received");
                esp_http_client_close(client);
                http_dispatch_error(client);
                err = ESP_ERR_HTTP_CONNECTION_CLOSED;
                goto out;
            }
            http_dispatch_error(client);
            err = ESP_ERR_HTTP_FETCH_HEADER;
            goto out;
        }

        if ((err = esp_http_check_response(client)) != ESP_OK) {
            ESP_LOGE(TAG, "Error response");
            http_dispatch_error(client);
            goto out;
        }
        while (client->is_chunked && !client->is_chunk_complete) {
            int r = esp_http_client_get_data(client, buf, client->buffer_size_rx);
            if (r <= 0) {
                if (client->method != HTTP_METHOD_HEAD && !client->is_chunk_complete) {
                    ESP_LOGE(TAG, "Incomplete chunked data received %d", r);
                    /* ESP-IDF compares the transport result with ESP_ERR_TCP_TRANSPORT_* codes it
                     * never has, so every failure here is INCOMPLETE_DATA on the device too. */
                    err = ESP_ERR_HTTP_INCOMPLETE_DATA;
                }
                ESP_LOGD(TAG, "Read finish or server requests close");
                break;
            }
        }
        while (client->data_process < client->content_length) {
            int r = esp_http_client_get_data(client, buf, client->buffer_size_rx);
            if (r <= 0) {
                if (client->method != HTTP_METHOD_HEAD && client->data_process < client->content_length) {
                    ESP_LOGE(TAG, "Incomlete data received, ret=%d, %" PRId64 "/%" PRId64 " bytes", r,
                             client->data_process, client->content_length);
                    err = ESP_ERR_HTTP_INCOMPLETE_DATA;
                }
                ESP_LOGD(TAG, "Read finish or server requests close");
                break;
            }
        }

        if (err != ESP_OK) {
            http_dispatch_error(client);
        } else {
            http_dispatch_event(client, HTTP_EVENT_ON_FINISH, NULL, 0);
            http_dispatch_event_to_event_loop(HTTP_EVENT_ON_FINISH, &client, sizeof(esp_http_client_handle_t));
        }

        client->ring_head = 0;
        client->ring_count = 0;
        if (!client->keep_alive) {
            ESP_LOGD(TAG, "Close connection");
            esp_http_client_close(client);
        } else if (client->state > HTTP_STATE_CONNECTED) {
            client->state = HTTP_STATE_CONNECTED;
        }
    } while (client->process_again && err == ESP_OK);
out:
    free(buf);
    return err;
}

int64_t esp_http_client_fetch_headers(esp_http_client_handle_t client)
{
    if (client->state < HTTP_STATE_REQ_COMPLETE_HEADER) {
        return ESP_FAIL;
    }
    if (client->state < HTTP_STATE_RES_ON_DATA_START) {
        client->state = HTTP_STATE_REQ_COMPLETE_DATA;
        if (!client->headers_done) {
            client->status_code = -1;
        }
        int64_t deadline = http_now_ms() + client->timeout_ms;
        while (!client->headers_done) {
            if (client->transfer_done || !client->in_multi) {
                client->sock_errno = (int)client->os_errno;
                return ESP_FAIL;
            }
            int64_t remaining = deadline - http_now_ms();
            if (remaining <= 0) {
                ESP_LOGW(TAG, "Connection timed out before data was ready!");
                return -ESP_ERR_HTTP_EAGAIN;
            }
            unsigned before = client->rx_progress;
            http_drive(client, remaining > 1000 ? 1000 : (int)remaining);
            if (client->rx_progress != before) {
                deadline = http_now_ms() + client->timeout_ms;
            }
        }
        client->state = HTTP_STATE_RES_ON_DATA_START;
    }
    ESP_LOGD(TAG, "content_length = %" PRId64, client->content_length);
    if (client->content_length <= 0) {
        client->is_chunked = true;
        return 0;
    }
    return client->content_length;
}

esp_err_t esp_http_client_prepare(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return ESP_FAIL;
    }
    esp_err_t ret = ESP_OK;
    client->process_again = 0;
    client->data_process = 0;
    /* Location and WWW-Authenticate belong to one response: cleared before each request. */
    free(client->location);
    client->location = NULL;
    free(client->auth_header);
    client->auth_header = NULL;
    if (client->username && client->auth_type == HTTP_AUTH_TYPE_BASIC) {
        char *user_info = NULL;
        if (asprintf(&user_info, "%s:%s", client->username, client->password ? client->password : "") < 0) {
            return ESP_FAIL;
        }
        char *digest = http_base64_encode((const unsigned char *)user_info, strlen(user_info));
        memset(user_info, 0, strlen(user_info));
        free(user_info);
        char *auth_response = NULL;
        if (digest == NULL || asprintf(&auth_response, "Basic %s", digest) < 0) {
            free(digest);
            return ESP_FAIL;
        }
        free(digest);
        ESP_LOGD(TAG, "auth_response=%s", auth_response);
        if (esp_http_client_set_header(client, "Authorization", auth_response) != ESP_OK) {
            ESP_LOGE(TAG, "Failed to set Authorization header");
            ret = ESP_FAIL;
        }
        free(auth_response);
    }
    return ret;
}

esp_err_t esp_http_client_request_send(esp_http_client_handle_t client, int write_len)
{
    if (client == NULL) {
        return ESP_FAIL;
    }
    return http_send_request(client, write_len);
}

esp_err_t esp_http_client_open(esp_http_client_handle_t client, int write_len)
{
    client->post_len = write_len;
    esp_err_t err;
    if ((err = esp_http_client_connect(client)) != ESP_OK) {
        http_dispatch_error(client);
        return err;
    }
    if ((err = http_send_request(client, write_len)) != ESP_OK) {
        http_dispatch_error(client);
        return err;
    }
    return ESP_OK;
}

int esp_http_client_write(esp_http_client_handle_t client, const char *buffer, int len)
{
    if (client->state < HTTP_STATE_REQ_COMPLETE_HEADER) {
        return ESP_FAIL;
    }
    if (len <= 0) {
        return 0;
    }
    if (!client->in_multi) {
        return ESP_FAIL;    /* the server has already closed or answered */
    }
    client->tx_ptr = buffer;
    client->tx_len = (size_t)len;
    int64_t deadline = http_now_ms() + client->timeout_ms;
    size_t last_left = client->tx_len;
    while (client->tx_len > 0 && !client->transfer_done && client->in_multi) {
        int64_t remaining = deadline - http_now_ms();
        if (remaining <= 0) {
            break;
        }
        http_drive(client, remaining > 100 ? 100 : (int)remaining);
        if (client->tx_len != last_left) {
            last_left = client->tx_len;
            deadline = http_now_ms() + client->timeout_ms;
        }
    }
    int written = len - (int)client->tx_len;
    client->tx_ptr = NULL;
    client->tx_len = 0;
    if (written == 0 && client->transfer_done && client->result != CURLE_OK) {
        return ESP_FAIL;
    }
    return written;
}

esp_err_t esp_http_client_close(esp_http_client_handle_t client)
{
    if (client->state > HTTP_STATE_INIT) {
        http_dispatch_event(client, HTTP_EVENT_DISCONNECTED, &client->tls_error, 0);
        http_dispatch_event_to_event_loop(HTTP_EVENT_DISCONNECTED, &client, sizeof(esp_http_client_handle_t));
        client->state = HTTP_STATE_INIT;
    }
    http_close_connections(client);
    return ESP_OK;
}

esp_err_t esp_http_client_clear_response_buffer(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    client->ring_head = 0;
    client->ring_count = 0;
    return ESP_OK;
}

esp_err_t esp_http_client_set_post_field(esp_http_client_handle_t client, const char *data, int len)
{
    esp_err_t err = ESP_OK;
    client->post_data = (char *)data;
    client->post_len = len;
    ESP_LOGD(TAG, "set post file length = %d", len);
    if (client->post_data) {
        char *value = NULL;
        if ((err = esp_http_client_get_header(client, "Content-Type", &value)) != ESP_OK) {
            return err;
        }
        if (value == NULL) {
            err = esp_http_client_set_header(client, "Content-Type", "application/x-www-form-urlencoded");
        }
    } else {
        client->post_len = 0;
        err = esp_http_client_set_header(client, "Content-Type", NULL);
        if (err == ESP_FAIL) {
            err = ESP_OK;   /* deleting an absent header is not an error worth reporting */
        }
    }
    return err;
}

int esp_http_client_get_post_field(esp_http_client_handle_t client, char **data)
{
    if (client->post_data) {
        *data = client->post_data;
        return client->post_len;
    }
    return 0;
}

int esp_http_client_get_status_code(esp_http_client_handle_t client)
{
    return client->status_code;
}

int64_t esp_http_client_get_content_length(esp_http_client_handle_t client)
{
    return client->content_length;
}

bool esp_http_client_is_chunked_response(esp_http_client_handle_t client)
{
    return client->is_chunked;
}

esp_http_client_transport_t esp_http_client_get_transport_type(esp_http_client_handle_t client)
{
    if (client->scheme == NULL) {
        return HTTP_TRANSPORT_UNKNOWN;
    }
    if (!strcasecmp(client->scheme, "https")) {
        return HTTP_TRANSPORT_OVER_SSL;
    } else if (!strcasecmp(client->scheme, "http")) {
        return HTTP_TRANSPORT_OVER_TCP;
    }
    return HTTP_TRANSPORT_UNKNOWN;
}

/* As built with the default Kconfig: ESP_HTTP_CLIENT_ENABLE_BASIC_AUTH and
 * ESP_HTTP_CLIENT_ENABLE_DIGEST_AUTH are both "n", so no challenge can be answered. */
esp_err_t esp_http_client_add_auth(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (client->state != HTTP_STATE_RES_ON_DATA_START) {
        return ESP_OK;  // No action needed, return OK
    }
    if (client->redirect_counter >= client->max_authorization_retries) {
        ESP_LOGE(TAG, "Error, reached max_authorization_retries count=%d", client->redirect_counter);
        return ESP_FAIL;
    }
    char *auth_header = client->auth_header;
    if (auth_header) {
        while (*auth_header == ' ') {
            auth_header++;
        }
        ESP_LOGD(TAG, "UNAUTHORIZED: %s", auth_header);
        client->redirect_counter++;
        client->auth_type = HTTP_AUTH_TYPE_NONE;
        ESP_LOGE(TAG, "This authentication method is not supported: %s", auth_header);
        return ESP_ERR_NOT_SUPPORTED;
    }
    client->auth_type = HTTP_AUTH_TYPE_NONE;
    ESP_LOGW(TAG, "This request requires authentication, but does not provide header information for that");
    return ESP_ERR_NOT_SUPPORTED;
}

bool esp_http_client_is_persistent_connection(esp_http_client_handle_t client)
{
    if (client == NULL) {
        return false;
    }
    return client->keep_alive;
}
