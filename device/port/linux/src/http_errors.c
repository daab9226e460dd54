/*
 * Host port of esp_http_client (see esp_http_client.c): the errors. libcurl reports a failure as a
 * CURLcode and an errno; the chip's esp-tls and tcp_transport report it with their own codes
 * (esp_tls_last_error_t, the socket errno) and log lines under their own tags. This file turns the
 * first into the second, so a test matches the same text and codes on both boards.
 */
#include <errno.h>
#include <string.h>

#include "esp_tls_errors.h"
#include "esp_log.h"
#include "http_client_priv.h"

static const char *TAG = HTTP_CLIENT_TAG;
/* Tags of the ESP-IDF components whose error lines the real device prints for this client. */
static const char *TAG_TRANSPORT = "transport_base";
static const char *TAG_TLS = "esp-tls";
static const char *TAG_MBEDTLS = "esp-tls-mbedtls";

/* Error codes from tcp_transport (esp_transport.h), v5.5.4; esp-tls's are in esp_tls_errors.h. */
#define HOST_ESP_ERR_TCP_TRANSPORT_CONNECTION_FAILED    (0xe000 + 3)

/* mbedTLS codes and certificate flags the real handshake reports (mbedtls/ssl.h, x509.h). */
#define HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED        0x2700
#define HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE        0x7780
#define HOST_MBEDTLS_ERR_SSL_CONN_EOF                   0x7280
#define HOST_MBEDTLS_X509_BADCERT_EXPIRED               0x01
#define HOST_MBEDTLS_X509_BADCERT_CN_MISMATCH           0x04
#define HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED           0x08
#define HOST_MBEDTLS_X509_BADCERT_FUTURE                0x0200

void http_report_tls_connect_refused(void)
{
    /* TLS configuration problems surface from esp_transport_connect() on the device. */
    ESP_LOGE(TAG_TLS, "Failed to open new connection");
    ESP_LOGE(TAG_TRANSPORT, "Failed to open a new connection");
    ESP_LOGE(TAG, "Connection failed, sock < 0");
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
void http_report_connect_failure(esp_http_client_t *client, CURLcode res, long os_errno)
{
    const bool https = http_is_https(client);
    client->tls_error.last_error = ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST;
    client->tls_error.esp_tls_error_code = 0;
    client->tls_error.esp_tls_flags = 0;
    bool tls_stage = false;

    switch (res) {
    case CURLE_COULDNT_RESOLVE_HOST:
        ESP_LOGE(TAG_TLS, "couldn't get hostname for :%s: getaddrinfo() returns %d, addrinfo=%p",
                 client->host, 202, (void *)NULL);
        client->tls_error.last_error = ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME;
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
        client->tls_error.last_error = ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT;
        break;
    }
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
        ESP_LOGI(TAG_MBEDTLS, "Failed to verify peer certificate!");
        client->tls_error.last_error = ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED;
        client->tls_error.esp_tls_error_code = HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
        client->tls_error.esp_tls_flags = http_cert_flags_from_curl(client);
        tls_stage = true;
        break;
    case CURLE_COULDNT_CONNECT:
        /* EHOSTUNREACH comes only from the network gate (every server is local): lwIP's connect() fails at
           once while the netif is down, so esp-tls reports it from its connect() call, not after select(). */
        if (os_errno == EHOSTUNREACH) {
            ESP_LOGE(TAG_TLS, "[sock=%d] connect() error: %s", client->last_sock, strerror((int)os_errno));
        } else {
            ESP_LOGE(TAG_TLS, "[sock=%d] delayed connect error: %s", client->last_sock, strerror((int)os_errno));
        }
        client->sock_errno = (int)os_errno;
        break;
    default: {
        curl_off_t connect_time = 0;
        curl_easy_getinfo(client->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
        if (https && connect_time > 0) {
            int code = os_errno == 0 && strstr(client->curl_error, "EOF") ? HOST_MBEDTLS_ERR_SSL_CONN_EOF
                       : HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
            ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", code);
            client->tls_error.last_error = ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED;
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

/* The log lines tcp_transport prints for a failed read, and the errno it leaves behind. */
void http_report_read_error(esp_http_client_t *client)
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
        client->tls_error.last_error = ESP_ERR_MBEDTLS_SSL_READ_FAILED;
    } else {
        ESP_LOGE(TAG_TRANSPORT, "tcp_read error, errno=%s", strerror(err));
    }
}

/* What esp_http_client_read() does once esp_transport_read() returned rlen <= 0. */
int http_read_result_after_failure(esp_http_client_t *client, int rlen, int ridx)
{
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
