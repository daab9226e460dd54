/*
 * Host port of esp_http_client (see esp_http_client.c): the configuration. What
 * esp_http_client_init() takes from esp_http_client_config_t (ESP-IDF's _set_config() and the
 * transport options it hands esp_transport_ssl), with ESP-IDF's defaults, and the Host header.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "http_client_priv.h"

static const char *TAG = HTTP_CLIENT_TAG;

static const int DEFAULT_MAX_REDIRECT = 10;
static const int DEFAULT_MAX_AUTH_RETRIES = 10;
static const int DEFAULT_TIMEOUT_MS = 5000;
static const int DEFAULT_KEEP_ALIVE_IDLE = 5;
static const int DEFAULT_KEEP_ALIVE_INTERVAL = 5;
static const int DEFAULT_KEEP_ALIVE_COUNT = 3;

void http_clear_connection_info(esp_http_client_t *client)
{
    free(client->path);
    free(client->host);
    free(client->query);
    free(client->username);
    host_free_secret(client->password);
    free(client->scheme);
    client->path = client->host = client->query = client->username = client->password = client->scheme = NULL;
    client->port = 0;
}

static esp_err_t http_set_config(esp_http_client_handle_t client, const esp_http_client_config_t *config)
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
    if (!host_set_string_if_given(&client->host, config->host) ||
            !host_set_string_if_given(&client->query, config->query) ||
            !host_set_string_if_given(&client->username, config->username) ||
            !host_set_string_if_given(&client->password, config->password) ||
            http_assign_string(&client->scheme, config->transport_type == HTTP_TRANSPORT_OVER_SSL ? "https" : "http", -1) != ESP_OK) {
        ESP_LOGE(TAG, "Memory exhausted");
        http_clear_connection_info(client);
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

esp_err_t http_apply_config(esp_http_client_t *client, const esp_http_client_config_t *config)
{
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
    return http_set_config(client, config);
}

/* The Host header: the port only when it is not the scheme's default. */
char *http_host_header(const char *host, int port)
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
