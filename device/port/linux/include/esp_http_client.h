/*
 * Host port of ESP-IDF's esp_http_client.h (components/esp_http_client/include, v5.5.4),
 * implemented over libcurl in src/esp_http_client.c and the src/http_*.c files beside it.
 *
 * Types, enum values, error codes, config field names/types/order and function signatures are
 * those of v5.5.4. Config fields that only exist under a Kconfig option left at its default "n"
 * (ECDSA peripheral, secure element, DS peripheral, session tickets, custom transport, mbedTLS
 * dynamic buffers) are left out, as they would be in a default ESP-IDF build; alpn_protos is kept
 * because CONFIG_ESP_HTTP_CLIENT_ENABLE_HTTPS defaults to y. Like the real header it includes
 * "sdkconfig.h" (when the build provides one).
 *
 * Functions an OTA agent (esp_http_client directly or through esp_https_ota) does not call are
 * not declared, so a caller fails to build rather than getting a stand-in:
 * esp_http_client_cancel_request, get_username / set_username, get_password / set_password,
 * set_authtype, get_user_data / set_user_data, delete_all_headers, reset_redirect_counter,
 * set_auth_data, read_response, flush_response, get_url, get_socket, and get_chunk_length
 * (libcurl decodes chunked bodies itself and does not expose chunk sizes).
 */
#ifndef _ESP_HTTP_CLIENT_H
#define _ESP_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "freertos/FreeRTOS.h"
#if defined(__has_include)
#if __has_include("sdkconfig.h")
/* ESP-IDF's header includes it, so CONFIG_ macros reach its users the same way here. */
#include "sdkconfig.h"
#endif
#endif
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFAULT_HTTP_BUF_SIZE (512)

#include "esp_event.h"
ESP_EVENT_DECLARE_BASE(ESP_HTTP_CLIENT_EVENT);

typedef struct esp_http_client *esp_http_client_handle_t;
typedef struct esp_http_client_event *esp_http_client_event_handle_t;

/* Only used through a pointer (config.if_name), as in ESP-IDF where lwIP defines it. */
struct ifreq;

/**
 * @brief   HTTP Client events id
 */
typedef enum {
    HTTP_EVENT_ERROR = 0,       /*!< This event occurs when there are any errors during execution */
    HTTP_EVENT_ON_CONNECTED,    /*!< Once the HTTP has been connected to the server, no data exchange has been performed */
    HTTP_EVENT_HEADERS_SENT,    /*!< After sending all the headers to the server */
    HTTP_EVENT_HEADER_SENT = HTTP_EVENT_HEADERS_SENT, /*!< Kept for backward compatibility */
    HTTP_EVENT_ON_HEADER,       /*!< Occurs when receiving each header sent from the server */
    HTTP_EVENT_ON_DATA,         /*!< Occurs when receiving data from the server, possibly multiple portions of the packet */
    HTTP_EVENT_ON_FINISH,       /*!< Occurs when complete data is received */
    HTTP_EVENT_DISCONNECTED,    /*!< The connection has been disconnected */
    HTTP_EVENT_REDIRECT,        /*!< Intercepting HTTP redirects to handle them manually */
} esp_http_client_event_id_t;

/**
 * @brief      HTTP Client events data
 */
typedef struct esp_http_client_event {
    esp_http_client_event_id_t event_id;    /*!< event_id, to know the cause of the event */
    esp_http_client_handle_t client;        /*!< esp_http_client_handle_t context */
    void *data;                             /*!< data of the event */
    int data_len;                           /*!< data length of data */
    void *user_data;                        /*!< user_data context, from esp_http_client_config_t user_data */
    char *header_key;                       /*!< For HTTP_EVENT_ON_HEADER event_id, it's store current http header key */
    char *header_value;                     /*!< For HTTP_EVENT_ON_HEADER event_id, it's store current http header value */
} esp_http_client_event_t;

/**
 * @brief      Argument structure for HTTP_EVENT_ON_DATA event
 */
typedef struct esp_http_client_on_data {
    esp_http_client_handle_t client;    /*!< Client handle */
    int64_t data_process;               /*!< Total data processed */
} esp_http_client_on_data_t;

/**
 * @brief      Argument structure for HTTP_EVENT_REDIRECT event
 */
typedef struct esp_http_client_redirect_event_data {
    esp_http_client_handle_t client;    /*!< Client handle */
    int status_code;                    /*!< Status Code */
} esp_http_client_redirect_event_data_t;

/**
 * @brief      HTTP Client transport
 */
typedef enum {
    HTTP_TRANSPORT_UNKNOWN = 0x0,   /*!< Unknown */
    HTTP_TRANSPORT_OVER_TCP,        /*!< Transport over tcp */
    HTTP_TRANSPORT_OVER_SSL,        /*!< Transport over ssl */
} esp_http_client_transport_t;

/*
 * @brief TLS Protocol version
 */
typedef enum {
    ESP_HTTP_CLIENT_TLS_VER_ANY = 0,         /* No preference */
    ESP_HTTP_CLIENT_TLS_VER_TLS_1_2 = 0x1,   /* (D)TLS 1.2 */
    ESP_HTTP_CLIENT_TLS_VER_TLS_1_3 = 0x2,   /* (D)TLS 1.3 */
    ESP_HTTP_CLIENT_TLS_VER_MAX,             /* to indicate max */
} esp_http_client_proto_ver_t;

typedef esp_err_t (*http_event_handle_cb)(esp_http_client_event_t *evt);

/**
 * @brief ECDSA curve options for TLS connections
 */
typedef enum {
    ESP_HTTP_CLIENT_ECDSA_CURVE_SECP256R1 = 0,   /*!< Use SECP256R1 curve */
    ESP_HTTP_CLIENT_ECDSA_CURVE_MAX,             /*!< to indicate max */
} esp_http_client_ecdsa_curve_t;

/**
 * @brief HTTP method
 */
typedef enum {
    HTTP_METHOD_GET = 0,    /*!< HTTP GET Method */
    HTTP_METHOD_POST,       /*!< HTTP POST Method */
    HTTP_METHOD_PUT,        /*!< HTTP PUT Method */
    HTTP_METHOD_PATCH,      /*!< HTTP PATCH Method */
    HTTP_METHOD_DELETE,     /*!< HTTP DELETE Method */
    HTTP_METHOD_HEAD,       /*!< HTTP HEAD Method */
    HTTP_METHOD_NOTIFY,     /*!< HTTP NOTIFY Method */
    HTTP_METHOD_SUBSCRIBE,  /*!< HTTP SUBSCRIBE Method */
    HTTP_METHOD_UNSUBSCRIBE,/*!< HTTP UNSUBSCRIBE Method */
    HTTP_METHOD_OPTIONS,    /*!< HTTP OPTIONS Method */
    HTTP_METHOD_COPY,       /*!< HTTP COPY Method */
    HTTP_METHOD_MOVE,       /*!< HTTP MOVE Method */
    HTTP_METHOD_LOCK,       /*!< HTTP LOCK Method */
    HTTP_METHOD_UNLOCK,     /*!< HTTP UNLOCK Method */
    HTTP_METHOD_PROPFIND,   /*!< HTTP PROPFIND Method */
    HTTP_METHOD_PROPPATCH,  /*!< HTTP PROPPATCH Method */
    HTTP_METHOD_MKCOL,      /*!< HTTP MKCOL Method */
    HTTP_METHOD_REPORT,     /*!< HTTP REPORT Method */
    HTTP_METHOD_MAX,
} esp_http_client_method_t;

/**
 * @brief HTTP Authentication type
 */
typedef enum {
    HTTP_AUTH_TYPE_NONE = 0,    /*!< No authention */
    HTTP_AUTH_TYPE_BASIC,       /*!< HTTP Basic authentication */
    HTTP_AUTH_TYPE_DIGEST,      /*!< HTTP Digest authentication */
} esp_http_client_auth_type_t;

/*
 * @brief HTTP Address type
 */
typedef enum {
    HTTP_ADDR_TYPE_UNSPEC = AF_UNSPEC,      /**< Unspecified address family. */
    HTTP_ADDR_TYPE_INET = AF_INET,          /**< IPv4 address family. */
    HTTP_ADDR_TYPE_INET6 = AF_INET6,        /**< IPv6 address family. */
} esp_http_client_addr_type_t;

typedef enum {
    HTTP_TLS_DYN_BUF_RX_STATIC = 1,     /*!< Strategy to disable dynamic RX buffer allocations */
    HTTP_TLS_DYN_BUF_STRATEGY_MAX,      /*!< to indicate max */
} esp_http_client_tls_dyn_buf_strategy_t;

/**
 * @brief HTTP configuration
 */
typedef struct {
    const char                  *url;                /*!< HTTP URL, the information on the URL is most important, it overrides the other fields below, if any */
    const char                  *host;               /*!< Domain or IP as string */
    int                         port;                /*!< Port to connect, default depend on esp_http_client_transport_t (80 or 443) */
    const char                  *username;           /*!< Using for Http authentication */
    const char                  *password;           /*!< Using for Http authentication */
    esp_http_client_auth_type_t auth_type;           /*!< Http authentication type, see `esp_http_client_auth_type_t` */
    const char                  *path;               /*!< HTTP Path, if not set, default is `/` */
    const char                  *query;              /*!< HTTP query */
    union {
        const char              *cert_pem;           /*!< SSL server certification, PEM format as string, if the client requires to verify server */
        const char              *cert_der;           /*!< SSL server certification, DER format as binary, if the client requires to verify server */
    };
    size_t                      cert_len;            /*!< Length of the buffer pointed to by cert_pem or cert_der (0 for a NUL-terminated PEM) */
    union {
        const char              *client_cert_pem;    /*!< SSL client certification, PEM format as string */
        const char              *client_cert_der;    /*!< SSL client certification, DER format as binary */
    };
    size_t                      client_cert_len;     /*!< Length of the buffer pointed to by client_cert_pem or client_cert_der */
    const char                  *client_key_pem;     /*!< SSL client key, PEM format as string */
    size_t                      client_key_len;      /*!< Length of the buffer pointed to by client_key_pem. May be 0 for null-terminated pem */
    const char                  *client_key_password;      /*!< Client key decryption password string */
    size_t                      client_key_password_len;   /*!< String length of the password pointed to by client_key_password */
    esp_http_client_proto_ver_t tls_version;         /*!< TLS protocol version of the connection (default - no preference) */
    const char                  *user_agent;         /*!< The User Agent string to send with HTTP requests */
    esp_http_client_method_t    method;                   /*!< HTTP Method */
    int                         timeout_ms;               /*!< Network timeout in milliseconds */
    bool                        disable_auto_redirect;    /*!< Disable HTTP automatic redirects */
    int                         max_redirection_count;    /*!< Max number of redirections on receiving HTTP redirect status code, using default value if zero*/
    int                         max_authorization_retries;    /*!< Max connection retries on receiving HTTP unauthorized status code, using default value if zero. Disables authorization retry if -1*/
    http_event_handle_cb        event_handler;             /*!< HTTP Event Handle */
    esp_http_client_transport_t transport_type;           /*!< HTTP transport type, see `esp_http_client_transport_t` */
    int                         buffer_size;              /*!< HTTP receive buffer size */
    int                         buffer_size_tx;           /*!< HTTP transmit buffer size */
    void                        *user_data;               /*!< HTTP user_data context */
    bool                        is_async;                 /*!< Set asynchronous mode, only supported with HTTPS for now */
    bool                        use_global_ca_store;      /*!< Use a global ca_store for all the connections in which this bool is set. */
    bool                        skip_cert_common_name_check;    /*!< Skip any validation of server certificate CN field */
    const char                  *common_name;             /*!< If non-NULL, server certificate CN must match this name, else the hostname */
    esp_err_t (*crt_bundle_attach)(void *conf);      /*!< Function pointer to esp_crt_bundle_attach (host port: trust the system CA store) */
    bool                        keep_alive_enable;   /*!< Enable keep-alive timeout */
    int                         keep_alive_idle;     /*!< Keep-alive idle time. Default is 5 (second) */
    int                         keep_alive_interval; /*!< Keep-alive interval time. Default is 5 (second) */
    int                         keep_alive_count;    /*!< Keep-alive packet retry send count. Default is 3 counts */
    struct ifreq                *if_name;            /*!< The name of interface for data to go through. Use the default interface without setting */
    const char                  **alpn_protos;       /*!< Application protocols required for HTTP2 */
    esp_http_client_addr_type_t addr_type;  /*!< Address type used in http client configurations */
} esp_http_client_config_t;

/**
 * Enum for the HTTP status codes.
 */
typedef enum {
    /* 2xx - Success */
    HttpStatus_Ok                = 200,
    HttpStatus_PartialContent    = 206,

    /* 3xx - Redirection */
    HttpStatus_MultipleChoices   = 300,
    HttpStatus_MovedPermanently  = 301,
    HttpStatus_Found             = 302,
    HttpStatus_SeeOther          = 303,
    HttpStatus_NotModified       = 304,
    HttpStatus_TemporaryRedirect = 307,
    HttpStatus_PermanentRedirect = 308,

    /* 4xx - Client Error */
    HttpStatus_BadRequest        = 400,
    HttpStatus_Unauthorized      = 401,
    HttpStatus_Forbidden         = 403,
    HttpStatus_NotFound          = 404,
    HttpStatus_RangeNotSatisfiable = 416,

    /* 5xx - Server Error */
    HttpStatus_InternalError     = 500
} HttpStatus_Code;

#define ESP_ERR_HTTP_BASE               (0x7000)                    /*!< Starting number of HTTP error codes */
#define ESP_ERR_HTTP_MAX_REDIRECT       (ESP_ERR_HTTP_BASE + 1)     /*!< The error exceeds the number of HTTP redirects */
#define ESP_ERR_HTTP_CONNECT            (ESP_ERR_HTTP_BASE + 2)     /*!< Error open the HTTP connection */
#define ESP_ERR_HTTP_WRITE_DATA         (ESP_ERR_HTTP_BASE + 3)     /*!< Error write HTTP data */
#define ESP_ERR_HTTP_FETCH_HEADER       (ESP_ERR_HTTP_BASE + 4)     /*!< Error read HTTP header from server */
#define ESP_ERR_HTTP_INVALID_TRANSPORT  (ESP_ERR_HTTP_BASE + 5)     /*!< There are no transport support for the input scheme */
#define ESP_ERR_HTTP_CONNECTING         (ESP_ERR_HTTP_BASE + 6)     /*!< HTTP connection hasn't been established yet */
#define ESP_ERR_HTTP_EAGAIN             (ESP_ERR_HTTP_BASE + 7)     /*!< Mapping of errno EAGAIN to esp_err_t */
#define ESP_ERR_HTTP_CONNECTION_CLOSED  (ESP_ERR_HTTP_BASE + 8)     /*!< Read FIN from peer and the connection closed */
#define ESP_ERR_HTTP_NOT_MODIFIED       (ESP_ERR_HTTP_BASE + 9)     /*!< HTTP 304 Not Modified, no update available */
#define ESP_ERR_HTTP_RANGE_NOT_SATISFIABLE (ESP_ERR_HTTP_BASE + 10) /*!< HTTP 416 Range Not Satisfiable, requested range in header is incorrect */
#define ESP_ERR_HTTP_READ_TIMEOUT       (ESP_ERR_HTTP_BASE + 11)    /*!< HTTP data read timeout */
#define ESP_ERR_HTTP_INCOMPLETE_DATA    (ESP_ERR_HTTP_BASE + 12)    /*!< Incomplete data received, less than Content-Length or last chunk */

/**
 * @brief Start a HTTP session. Must be paired with esp_http_client_cleanup().
 * @return the handle, or NULL if any errors
 */
esp_http_client_handle_t esp_http_client_init(const esp_http_client_config_t *config);

/**
 * @brief Perform the whole request (open, write post data, fetch headers, follow redirects and
 *        401 authorization, read the body into HTTP_EVENT_ON_DATA events).
 * @return ESP_OK, ESP_FAIL, ESP_ERR_HTTP_EAGAIN, ESP_ERR_HTTP_READ_TIMEOUT,
 *         ESP_ERR_HTTP_INCOMPLETE_DATA, ESP_ERR_HTTP_CONNECTION_CLOSED, ESP_ERR_HTTP_MAX_REDIRECT,
 *         ESP_ERR_HTTP_CONNECT, ESP_ERR_HTTP_FETCH_HEADER ...
 */
esp_err_t esp_http_client_perform(esp_http_client_handle_t client);

/**
 * @brief Prepare HTTP client for a new request (resets the response state, adds Basic auth).
 */
esp_err_t esp_http_client_prepare(esp_http_client_handle_t client);

/**
 * @brief Send the HTTP request line and headers (the connection is made if needed).
 * @return ESP_OK, ESP_FAIL, ESP_ERR_HTTP_WRITE_DATA
 */
esp_err_t esp_http_client_request_send(esp_http_client_handle_t client, int write_len);

/**
 * @brief Set URL for client; the options in the URL replace the old ones.
 * @return ESP_OK, ESP_ERR_INVALID_ARG, ESP_ERR_NO_MEM
 */
esp_err_t esp_http_client_set_url(esp_http_client_handle_t client, const char *url);

/**
 * @brief Set post data (not copied), before esp_http_client_perform().
 */
esp_err_t esp_http_client_set_post_field(esp_http_client_handle_t client, const char *data, int len);

/**
 * @brief Get current post field information; returns the size of the post data.
 */
int esp_http_client_get_post_field(esp_http_client_handle_t client, char **data);

/**
 * @brief Set a request header (value NULL deletes it), after init and before open/perform.
 */
esp_err_t esp_http_client_set_header(esp_http_client_handle_t client, const char *key, const char *value);

/**
 * @brief Get a request header; *value is NULL if the header is not set.
 */
esp_err_t esp_http_client_get_header(esp_http_client_handle_t client, const char *key, char **value);

/**
 * @brief Get HTTP client session errno (the socket errno of the last transport error).
 * @return -1 if invalid argument, else errno
 */
int esp_http_client_get_errno(esp_http_client_handle_t client);

/**
 * @brief Last TLS error (ESP_ERR_ESP_TLS_* / ESP_ERR_MBEDTLS_* code), cleared on return.
 * @return ESP_FAIL if invalid parameters, ESP_OK if no error occurred, else the error code
 */
esp_err_t esp_http_client_get_and_clear_last_tls_error(esp_http_client_handle_t client, int *esp_tls_error_code, int *esp_tls_flags);

esp_err_t esp_http_client_set_method(esp_http_client_handle_t client, esp_http_client_method_t method);
esp_err_t esp_http_client_set_timeout_ms(esp_http_client_handle_t client, int timeout_ms);
esp_err_t esp_http_client_delete_header(esp_http_client_handle_t client, const char *key);

/**
 * @brief Open the connection, write all header strings and return.
 * @param write_len  Content length the caller will write with esp_http_client_write()
 * @return ESP_OK, ESP_FAIL, ESP_ERR_HTTP_CONNECT, ESP_ERR_HTTP_WRITE_DATA, ESP_ERR_HTTP_INVALID_TRANSPORT
 */
esp_err_t esp_http_client_open(esp_http_client_handle_t client, int write_len);

/**
 * @brief Write request body data after esp_http_client_open().
 * @return -1 if any errors, else the length of data written (0 on a write timeout)
 */
int esp_http_client_write(esp_http_client_handle_t client, const char *buffer, int len);

/**
 * @brief Read and process all response headers (after esp_http_client_open()).
 * @return
 *     - (0) if stream doesn't contain content-length header, or chunked encoding
 *     - (-1: ESP_FAIL) if any errors
 *     - (-ESP_ERR_HTTP_EAGAIN = -0x7007) if call is timed-out before any data was ready
 *     - Download data length defined by content-length header
 */
int64_t esp_http_client_fetch_headers(esp_http_client_handle_t client);

bool esp_http_client_is_chunked_response(esp_http_client_handle_t client);

/**
 * @brief Read data from http stream
 * @return
 *     - (-1) if any errors
 *     - Length of data was read (0 once the whole body has been read)
 * @note (-ESP_ERR_HTTP_EAGAIN = -0x7007) is returned when call is timed-out before any data was ready
 */
int esp_http_client_read(esp_http_client_handle_t client, char *buffer, int len);

int esp_http_client_get_status_code(esp_http_client_handle_t client);

/**
 * @return (-1) Chunked transfer / no Content-Length, else the Content-Length value in bytes
 */
int64_t esp_http_client_get_content_length(esp_http_client_handle_t client);

esp_err_t esp_http_client_close(esp_http_client_handle_t client);
esp_err_t esp_http_client_clear_response_buffer(esp_http_client_handle_t client);
esp_err_t esp_http_client_cleanup(esp_http_client_handle_t client);
esp_http_client_transport_t esp_http_client_get_transport_type(esp_http_client_handle_t client);

/**
 * @brief Set the current URL to the Location of the last 30x response.
 * @return ESP_OK, ESP_ERR_INVALID_ARG (no Location), or an esp_http_client_set_url() error
 */
esp_err_t esp_http_client_set_redirection(esp_http_client_handle_t client);

esp_err_t esp_http_client_add_auth(esp_http_client_handle_t client);
bool esp_http_client_is_complete_data_received(esp_http_client_handle_t client);
bool esp_http_client_is_persistent_connection(esp_http_client_handle_t client);

#ifdef __cplusplus
}
#endif

#endif
