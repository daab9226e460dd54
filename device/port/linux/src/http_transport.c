/*
 * Host port of esp_http_client (see esp_http_client.c): the transport. One libcurl easy handle
 * per client, driven by a private multi handle only from inside API calls, so the transfer is
 * pull-based like the real client reading its socket: when the caller stops reading, the bounded
 * receive ring fills, the transfer is paused and TCP flow control stalls the server. This file
 * sets the handle up from the client (URL, method, headers, TLS options), plays http_parser's part
 * for the response headers, sends the request and waits for body bytes, as esp_transport_connect(),
 * esp_transport_write() and esp_transport_read() do on the chip.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esp_log.h"
#include "http_client_priv.h"

static const char *TAG = HTTP_CLIENT_TAG;

/* Guard added to the connect timeout while waiting for libcurl to send the request. */
#define REQUEST_SEND_GUARD_MS 1000

static const char *HTTP_METHOD_MAPPING[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "OPTIONS", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPFIND", "PROPPATCH", "MKCOL", "REPORT",
};

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

CURLcode http_transport_global_init(void)
{
    pthread_once(&s_curl_once, http_curl_global_init);
    return s_curl_init_result;
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
    if (len > http_ring_free(client)) {
        /* Caller has not read yet: stop receiving, libcurl keeps this chunk and stops reading the
         * socket, so the server is throttled by TCP like a device that is not reading. */
        client->recv_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    http_ring_put(client, ptr, len);
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
    if (client->recv_paused && http_ring_free(client) >= CURL_MAX_WRITE_SIZE) {
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
void http_drive(esp_http_client_t *client, int wait_ms)
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

void http_abort_transfer(esp_http_client_t *client)
{
    if (client->in_multi) {
        /* Removing an unfinished transfer makes libcurl close its connection. */
        curl_multi_remove_handle(client->multi, client->easy);
        client->in_multi = false;
    }
}

/* Really closes the connection: the cached keep-alive connection lives in the multi handle. */
void http_close_connections(esp_http_client_t *client)
{
    http_abort_transfer(client);
    if (client->multi_used) {
        curl_multi_cleanup(client->multi);
        client->multi = curl_multi_init();
        client->multi_used = false;
    }
    http_ring_clear(client);
    client->recv_paused = false;
    client->send_paused = false;
}
/* ---------------------------------------------------------------- connect / request */

char *http_build_url(const esp_http_client_t *client, const char *host)
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
        host_report_tls_setup_error(HOST_TLS_NO_GLOBAL_CA);
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
            host_report_tls_setup_error(HOST_TLS_CA_UNPARSABLE);
            return ESP_FAIL;
        }
    } else {
        host_report_tls_setup_error(HOST_TLS_NO_VERIFICATION);
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

/* Starts the libcurl transfer for the current request and waits until the request line and
 * headers are sent: the work of esp_transport_connect() + esp_http_client_request_send(). */
esp_err_t http_send_request(esp_http_client_t *client, int write_len)
{
    if (write_len < 0) {
        ESP_LOGE(TAG, "Chunked request bodies (write_len < 0) are not supported by the host port");
        return ESP_FAIL;
    }
    http_abort_transfer(client);

    http_ring_clear(client);
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
            http_report_tls_connect_refused();
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
int http_body_read(esp_http_client_t *client, char *buffer, int len)
{
    int64_t deadline = http_now_ms() + client->timeout_ms;
    for (;;) {
        if (client->ring_count > 0) {
            int n = (int)http_ring_take(client, buffer, (size_t)len);
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
