/*
 * Internals shared by the host port's esp_http_client files. Private to the port: firmware never
 * includes it. The client is split by concern:
 *
 *   esp_http_client.c   the public API: lifecycle, URL, the request / response flow, events
 *   http_config.c       esp_http_client_config_t into the client, with ESP-IDF's defaults
 *   http_transport.c    the libcurl pump: easy and multi handles, callbacks, TLS options,
 *                       sending the request, waiting for body bytes
 *   http_buffers.c      the bounded receive ring, the request header list, strings, base64 / PEM
 *   http_errors.c       esp-tls / tcp_transport error codes and the log lines the chip prints
 *   (host_client_common.c, shared with the MQTT client: config strings, esp-tls setup lines)
 *
 * Known differences from the chip are listed at the top of esp_http_client.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#include "esp_err.h"
#include "esp_http_client.h"
#include "host_client_common.h"

#define HTTP_CLIENT_TAG "HTTP_CLIENT"

/* esp_transport_read() results (enum esp_tcp_transport_err_t) plus one for a clean end of body. */
#define RD_TIMEOUT  0
#define RD_FIN      (-1)
#define RD_ERROR    (-2)
#define RD_DONE     (-3)

/* libcurl hands the write callback at most CURL_MAX_WRITE_SIZE bytes at a time, so a ring of two
 * such chunks always accepts a chunk once it has been drained: memory stays bounded. */
#define RX_RING_SIZE (2 * CURL_MAX_WRITE_SIZE)

#define DEFAULT_HTTP_PATH "/"
#define DEFAULT_HTTP_PORT (80)
#define DEFAULT_HTTPS_PORT (443)

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

static inline int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline bool http_is_https(const esp_http_client_t *client)
{
    return client->scheme && strcasecmp(client->scheme, "https") == 0;
}

/* ---- esp_http_client.c: events */
esp_err_t http_dispatch_event(esp_http_client_t *client, esp_http_client_event_id_t event_id, void *data, int len);
void http_dispatch_event_to_event_loop(int32_t event_id, const void *event_data, size_t event_data_size);
void http_dispatch_error(esp_http_client_t *client);

/* ---- http_config.c */
/* The config's fields (TLS options by pointer, as esp_transport_ssl keeps them) and defaults. */
esp_err_t http_apply_config(esp_http_client_t *client, const esp_http_client_config_t *config);
void http_clear_connection_info(esp_http_client_t *client);
char *http_host_header(const char *host, int port);

/* ---- http_transport.c: the libcurl pump */
/* curl_global_init() once per process (and SIGPIPE ignored); its result. */
CURLcode http_transport_global_init(void);
char *http_build_url(const esp_http_client_t *client, const char *host);
/* One step of libcurl: run what is ready and, only if that changed nothing, wait up to wait_ms. */
void http_drive(esp_http_client_t *client, int wait_ms);
void http_abort_transfer(esp_http_client_t *client);
/* Really closes the connection, the cached keep-alive one included. */
void http_close_connections(esp_http_client_t *client);
/* esp_transport_connect() + esp_http_client_request_send(): the request line and headers are sent. */
esp_err_t http_send_request(esp_http_client_t *client, int write_len);
/* esp_transport_read() of body bytes: a count, RD_TIMEOUT, RD_FIN, RD_ERROR or RD_DONE. */
int http_body_read(esp_http_client_t *client, char *buffer, int len);

/* ---- http_buffers.c */
size_t http_ring_free(const esp_http_client_t *client);
void http_ring_put(esp_http_client_t *client, const char *data, size_t len);
size_t http_ring_take(esp_http_client_t *client, char *out, size_t len);
void http_ring_clear(esp_http_client_t *client);
http_header_item_t *http_header_find(esp_http_client_handle_t client, const char *key);
esp_err_t http_header_delete(esp_http_client_handle_t client, const char *key);
esp_err_t http_header_set(esp_http_client_handle_t client, const char *key, const char *value);
void http_header_clean(esp_http_client_handle_t client);
esp_err_t http_assign_string(char **dst, const char *src, int len);
esp_err_t http_append_string(char **dst, const char *src, size_t len);
char *http_base64_encode(const unsigned char *in, size_t len);
bool http_is_pem(const char *data, size_t len);
char *http_cert_to_pem(const char *data, size_t len);

/* ---- http_errors.c: what esp-tls and tcp_transport report on the chip */
/* (the TLS-context setup lines: host_report_tls_setup_error(), host_client_common.h) */
/* The TLS configuration could not be used: esp_transport_connect() fails on the chip. */
void http_report_tls_connect_refused(void);
void http_report_connect_failure(esp_http_client_t *client, CURLcode res, long os_errno);
void http_report_read_error(esp_http_client_t *client);
/* esp_http_client_read() after esp_transport_read() returned rlen <= 0 with ridx bytes already
 * read: logs what the chip logs, sets errno and returns what the chip's read() returns. */
int http_read_result_after_failure(esp_http_client_t *client, int rlen, int ridx);
