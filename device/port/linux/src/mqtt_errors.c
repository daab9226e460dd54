/*
 * Host port of esp-mqtt (see mqtt_client.c): the errors. libmosquitto reports a failed
 * connection as a return code and an errno; the chip reports it through esp-tls and
 * tcp_transport, with their codes in the MQTT_EVENT_ERROR's error_handle and their log lines
 * under their own tags, followed by esp-mqtt's own. This file turns the first into the second,
 * so a test matches the same text and codes on both boards.
 */
#include <errno.h>
#include <string.h>

#include "esp_tls_errors.h"
#include "esp_log.h"
#include "mqtt_client_priv.h"

static const char *TAG = MQTT_CLIENT_TAG;
/* Tags of the ESP-IDF components whose error lines the device prints for this client. */
static const char *TAG_TRANSPORT = "transport_base";
static const char *TAG_TLS = "esp-tls";
static const char *TAG_MBEDTLS = "esp-tls-mbedtls";

/* mbedTLS values reported by esp-tls on the device (its error codes: esp_tls_errors.h). */
#define HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED        0x2700
#define HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE        0x7780
#define HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED           0x08

/* The MQTT_EVENT_ERROR with its error_handle filled in (esp_transport_sock_errno is the caller's). */
static void dispatch_error(esp_mqtt_client_handle_t client, esp_mqtt_error_type_t type,
                           esp_mqtt_connect_return_code_t connect_rc, esp_err_t tls_err, int stack_err,
                           int verify_flags)
{
    client->event.event_id = MQTT_EVENT_ERROR;
    client->event.msg_id = 0;
    client->error_codes.error_type = type;
    client->error_codes.connect_return_code = connect_rc;
    client->error_codes.esp_tls_last_esp_err = tls_err;
    client->error_codes.esp_tls_stack_err = stack_err;
    client->error_codes.esp_tls_cert_verify_flags = verify_flags;
    esp_mqtt_dispatch_event(client);
}

void esp_mqtt_client_dispatch_transport_error(esp_mqtt_client_handle_t client, esp_err_t tls_err,
                                              int stack_err, int verify_flags, int sock_errno)
{
    client->error_codes.esp_transport_sock_errno = sock_errno;
    dispatch_error(client, MQTT_ERROR_TYPE_TCP_TRANSPORT, 0, tls_err, stack_err, verify_flags);
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

void mqtt_report_tls_config_failed(esp_mqtt_client_handle_t client)
{
    mqtt_log_transport_connect_failed(client, ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED);
    esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED, 0, 0, 0);
}

void mqtt_report_resolve_failed(esp_mqtt_client_handle_t client)
{
    const char *host = client->config->host ? client->config->host : "";
    ESP_LOGE(TAG_TLS, "couldn't get hostname for :%s: getaddrinfo() returns %d, addrinfo=%p", host, 202, (void *)NULL);
    mqtt_log_transport_connect_failed(client, ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME);
    esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME, 0, 0, 0);
}

/* The CONNACK refused the connection: esp_mqtt_connect()'s lines and the ERROR event. */
/* The reason in esp_mqtt_connect()'s "Connection refused, ..." line (esp-mqtt's spelling). */
static const char *connection_refused_reason(int connack_rc)
{
    switch (connack_rc) {
    case MQTT_CONNECTION_REFUSE_PROTOCOL:
        return "bad protocol";
    case MQTT_CONNECTION_REFUSE_SERVER_UNAVAILABLE:
        return "server unavailable";
    case MQTT_CONNECTION_REFUSE_BAD_USERNAME:
        return "bad username or password";
    case MQTT_CONNECTION_REFUSE_NOT_AUTHORIZED:
        return "not authorized";
    default:
        return "Unknow reason";
    }
}

void mqtt_report_connection_refused(esp_mqtt_client_handle_t client)
{
    ESP_LOGW(TAG, "Connection refused, %s", connection_refused_reason(client->connack_rc));
    /* propagate event with connection refused error */
    dispatch_error(client, MQTT_ERROR_TYPE_CONNECTION_REFUSED,
                   (esp_mqtt_connect_return_code_t)client->connack_rc, 0, 0, 0);
    ESP_LOGE(TAG, "MQTT connect failed");
}

/* A failed transport connect: esp-tls / tcp_transport lines, ERROR event, DISCONNECTED. */
void mqtt_transport_connect_failed(esp_mqtt_client_handle_t client, bool timeout)
{
    bool ssl = mqtt_is_ssl(client->config);
    int sock_errno = client->sock_error ? client->sock_error : (client->tcp_connected ? 0 : client->link_errno);
    if (timeout && !client->tcp_connected) {
        ESP_LOGE(TAG_TLS, "[sock=%d] select() timeout", client->last_sock);
        mqtt_log_transport_connect_failed(client, ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT);
        esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT, 0, 0, 0);
    } else if (ssl && client->tcp_connected) {
        int code = client->verify_failed ? HOST_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED : HOST_MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_ssl_handshake returned -0x%04X", code);
        if (client->verify_failed) {
            ESP_LOGI(TAG_MBEDTLS, "Failed to verify peer certificate!");
        }
        mqtt_log_transport_connect_failed(client, ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED);
        esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED, code,
                client->verify_failed ? HOST_MBEDTLS_X509_BADCERT_NOT_TRUSTED : 0, 0);
    } else if (sock_errno == EHOSTUNREACH) {
        /* Only the network gate gives it (every server is local): lwIP's connect() fails at once while the
           netif is down, so esp-tls reports it from its connect() call, not after select(). */
        ESP_LOGE(TAG_TLS, "[sock=%d] connect() error: %s", client->last_sock, strerror(sock_errno));
        mqtt_log_transport_connect_failed(client, ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST);
        esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST, 0, 0, sock_errno);
    } else {
        ESP_LOGE(TAG_TLS, "[sock=%d] delayed connect error: %s", client->last_sock,
                 strerror(sock_errno ? sock_errno : ECONNREFUSED));
        mqtt_log_transport_connect_failed(client, ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST);
        esp_mqtt_client_dispatch_transport_error(client, ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST, 0, 0, sock_errno);
    }
    esp_mqtt_abort_connection(client);
}

/* The connection broke after the transport was up (esp_mqtt_handle_transport_read_error()). */
void mqtt_transport_read_failed(esp_mqtt_client_handle_t client, const char *caller)
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
