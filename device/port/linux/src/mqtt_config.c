/*
 * Host port of esp-mqtt (see mqtt_client.c): the configuration. esp_mqtt_set_config() and
 * esp_mqtt_client_set_uri() as esp-mqtt has them (lib/mqtt_client.c): unset fields keep their
 * value or get esp-mqtt's default, the URI overrides the separate address fields, and TLS data is
 * kept by pointer, as esp-mqtt keeps it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "esp_log.h"
#include "esp_mac.h"
#include "mqtt_client_priv.h"

static const char *TAG = MQTT_CLIENT_TAG;

static char *create_string(const char *ptr, int len)
{
    if (len <= 0) {
        return NULL;
    }
    char *ret = calloc(1, (size_t)len + 1);
    if (ret) {
        memcpy(ret, ptr, (size_t)len);
    }
    return ret;
}

/* ESP32_%02x%02X%02X from the last three bytes of the Wi-Fi station MAC, as
 * platform_create_id_string() builds it, so each virtual board has its own id. */
static char *platform_create_id_string(void)
{
    uint8_t mac[6] = {0};
    char *id_string = calloc(1, 32);
    if (id_string == NULL) {
        return NULL;
    }
    if (esp_read_mac(mac, ESP_MAC_WIFI_STA) != ESP_OK) {
        ESP_LOGW(TAG, "Soc doesn't provide MAC, client could be disconnected in case of device with same name in the broker.");
        sprintf(id_string, "esp_mqtt_client_id");
        return id_string;
    }
    sprintf(id_string, "ESP32_%02x%02X%02X", mac[3], mac[4], mac[5]);
    return id_string;
}

void esp_mqtt_destroy_config(esp_mqtt_client_handle_t client)
{
    mqtt_config_storage_t *cfg = client->config;
    if (cfg == NULL) {
        return;
    }
    mqtt_remove_tls_files(cfg);
    free(cfg->scheme);
    free(cfg->host);
    free(cfg->path);
    free(cfg->uri);
    free(cfg->username);
    host_free_secret(cfg->password);
    free(cfg->client_id);
    free(cfg->will_topic);
    free(cfg->will_message);
    free(cfg->alpn);
    host_free_secret(cfg->clientkey_password);
    free(cfg);
    client->config = NULL;
}

esp_err_t esp_mqtt_client_set_uri(esp_mqtt_client_handle_t client, const char *uri)
{
    if (client == NULL || uri == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    /* scheme://[user[:password]@]host[:port][/path][?query] */
    const char *sep = strstr(uri, "://");
    const char *host_start = sep ? sep + 3 : NULL;
    const char *authority_end = host_start ? host_start + strcspn(host_start, "/?#") : NULL;
    if (sep == NULL || sep == uri || host_start == authority_end) {
        ESP_LOGE(TAG, "Error parse uri = %s", uri);
        return ESP_FAIL;
    }
    const char *at = memchr(host_start, '@', (size_t)(authority_end - host_start));
    const char *userinfo = at ? host_start : NULL;
    const char *host = at ? at + 1 : host_start;
    const char *host_end;
    const char *port = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(authority_end - host));
        if (close == NULL) {
            ESP_LOGE(TAG, "Error parse uri = %s", uri);
            return ESP_FAIL;
        }
        host_end = close;
        host++;
        if (close + 1 < authority_end && close[1] == ':') {
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(authority_end - host));
        host_end = colon ? colon : authority_end;
        port = colon ? colon + 1 : NULL;
    }
    if (host_end == host) {
        ESP_LOGE(TAG, "Error parse uri = %s", uri);
        return ESP_FAIL;
    }

    pthread_mutex_lock(&client->lock);
    mqtt_config_storage_t *cfg = client->config;
    free(cfg->scheme);
    free(cfg->host);
    free(cfg->path);
    cfg->scheme = create_string(uri, (int)(sep - uri));
    cfg->host = create_string(host, (int)(host_end - host));
    cfg->path = NULL;
    if (*authority_end == '/' || *authority_end == '?') {
        /* esp-mqtt keeps path and query together, "/?query" when there is no path. */
        if (asprintf(&cfg->path, "%s%s", *authority_end == '?' ? "/" : "", authority_end) < 0) {
            cfg->path = NULL;
            pthread_mutex_unlock(&client->lock);
            ESP_LOGE(TAG, "%s(%d): %s", __FUNCTION__, __LINE__, "Memory exhausted");
            return ESP_ERR_NO_MEM;
        }
    }
    if (port && port < authority_end) {
        cfg->port = (int)strtol(port, NULL, 10);
    }
    if (userinfo) {
        char *user_info = create_string(userinfo, (int)(at - userinfo));
        if (user_info) {
            char *pass = strchr(user_info, ':');
            if (pass) {
                pass[0] = 0; //terminal username
                pass++;
                free(cfg->password);
                cfg->password = strdup(pass);
            }
            free(cfg->username);
            cfg->username = strdup(user_info);
            free(user_info);
        }
    }
    pthread_mutex_unlock(&client->lock);
    return ESP_OK;
}

static esp_err_t esp_mqtt_check_cfg_conflict(const mqtt_config_storage_t *cfg, const esp_mqtt_client_config_t *user_cfg)
{
    if (cfg == NULL || user_cfg == NULL) {
        ESP_LOGE(TAG, "Invalid configuration");
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t ret = ESP_OK;
    bool ssl_cfg_enabled = cfg->use_global_ca_store || cfg->cacert_buf || cfg->clientcert_buf || cfg->use_psk || cfg->alpn;
    bool is_ssl_scheme = false;
    if (cfg->scheme) {
        is_ssl_scheme = (strcasecmp(cfg->scheme, MQTT_OVER_WSS_SCHEME) == 0) || (strcasecmp(cfg->scheme, MQTT_OVER_SSL_SCHEME) == 0);
    } else {
        is_ssl_scheme = (user_cfg->broker.address.transport == MQTT_TRANSPORT_OVER_SSL) ||
                        (user_cfg->broker.address.transport == MQTT_TRANSPORT_OVER_WSS);
    }
    if (!is_ssl_scheme && ssl_cfg_enabled) {
        if (cfg->uri) {
            ESP_LOGW(TAG, "SSL related configs set, but the URI scheme specifies a non-SSL scheme, scheme = %s", cfg->scheme);
        } else {
            ESP_LOGW(TAG, "SSL related configs set, but the transport protocol is a non-SSL scheme, transport = %d", user_cfg->broker.address.transport);
        }
        ret = ESP_ERR_INVALID_ARG;
    }
    if (cfg->uri && user_cfg->broker.address.transport) {
        ESP_LOGW(TAG, "Transport config set, but overridden by scheme from URI: transport = %d, uri scheme = %s", user_cfg->broker.address.transport, cfg->scheme);
        ret = ESP_ERR_INVALID_ARG;
    }
    return ret;
}

/* Follows esp-mqtt's esp_mqtt_set_config(): unset fields keep their previous value or get the
 * default, set fields override. */
esp_err_t esp_mqtt_set_config(esp_mqtt_client_handle_t client, const esp_mqtt_client_config_t *config)
{
    if (!client) {
        ESP_LOGE(TAG, "Client was not initialized");
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&client->lock);
    esp_err_t err = ESP_OK;
    if (!client->config) {
        client->config = calloc(1, sizeof(mqtt_config_storage_t));
        if (client->config == NULL) {
            pthread_mutex_unlock(&client->lock);
            return ESP_ERR_NO_MEM;
        }
        client->config->clean_session = true;
    }
    mqtt_config_storage_t *cfg = client->config;
    /* TLS data may have changed: write the files again at the next connection. */
    mqtt_remove_tls_files(cfg);

    int buffer_size = config->buffer.size;
    if (buffer_size <= 0) {
        buffer_size = MQTT_BUFFER_SIZE_BYTE;
    }
    char *in_buffer = malloc((size_t)buffer_size);
    if (in_buffer == NULL) {
        err = ESP_ERR_NO_MEM;
        goto _mqtt_set_config_failed;
    }
    free(client->in_buffer);
    client->in_buffer = in_buffer;
    client->in_buffer_length = buffer_size;
    cfg->buffer_size = buffer_size;

    cfg->message_retransmit_timeout = config->session.message_retransmit_timeout;
    if (config->session.message_retransmit_timeout <= 0) {
        cfg->message_retransmit_timeout = MQTT_DEFAULT_RETRANSMIT_TIMEOUT_MS;
    }
    if (config->broker.address.port) {
        cfg->port = (int)config->broker.address.port;
    }
    if (config->network.tcp_keep_alive_cfg.keep_alive_enable) {
        cfg->tcp_keep_alive_cfg = config->network.tcp_keep_alive_cfg;
    }

    err = ESP_ERR_NO_MEM;
    if (!host_set_string_if_given(&cfg->host, config->broker.address.hostname) ||
            !host_set_string_if_given(&cfg->path, config->broker.address.path) ||
            !host_set_string_if_given(&cfg->username, config->credentials.username) ||
            !host_set_string_if_given(&cfg->password, config->credentials.authentication.password)) {
        goto _mqtt_set_config_failed;
    }
    cfg->null_client_id = config->credentials.set_null_client_id;
    if (!config->credentials.set_null_client_id) {
        if (config->credentials.client_id) {
            if (!host_set_string_if_given(&cfg->client_id, config->credentials.client_id)) {
                goto _mqtt_set_config_failed;
            }
        } else if (cfg->client_id == NULL) {
            cfg->client_id = platform_create_id_string();
        }
        if (cfg->client_id == NULL) {
            goto _mqtt_set_config_failed;
        }
        ESP_LOGD(TAG, "MQTT client_id=%s", cfg->client_id);
    }
    if (!host_set_string_if_given(&cfg->uri, config->broker.address.uri) ||
            !host_set_string_if_given(&cfg->will_topic, config->session.last_will.topic)) {
        goto _mqtt_set_config_failed;
    }
    if (config->session.last_will.msg_len && config->session.last_will.msg) {
        free(cfg->will_message);
        cfg->will_message = malloc((size_t)config->session.last_will.msg_len);
        if (cfg->will_message == NULL) {
            goto _mqtt_set_config_failed;
        }
        memcpy(cfg->will_message, config->session.last_will.msg, (size_t)config->session.last_will.msg_len);
        cfg->will_length = config->session.last_will.msg_len;
    } else if (config->session.last_will.msg) {
        free(cfg->will_message);
        cfg->will_message = strdup(config->session.last_will.msg);
        if (cfg->will_message == NULL) {
            goto _mqtt_set_config_failed;
        }
        cfg->will_length = (int)strlen(config->session.last_will.msg);
    }
    if (config->session.last_will.qos) {
        cfg->will_qos = config->session.last_will.qos;
    }
    if (config->session.last_will.retain) {
        cfg->will_retain = config->session.last_will.retain;
    }
    if (config->session.disable_clean_session == cfg->clean_session) {
        cfg->clean_session = !config->session.disable_clean_session;
        if (!cfg->clean_session && config->credentials.set_null_client_id) {
            ESP_LOGE(TAG, "Clean Session flag must be true if client has a null id");
        }
    }
    if (config->session.keepalive) {
        cfg->keepalive = config->session.keepalive;
    }
    if (cfg->keepalive == 0) {
        cfg->keepalive = MQTT_KEEPALIVE_TICK;
    }
    if (config->session.disable_keepalive) {
        cfg->keepalive = 0;
    }
    if (config->session.protocol_ver) {
        cfg->protocol_ver = config->session.protocol_ver;
    }
    if (cfg->protocol_ver == MQTT_PROTOCOL_UNDEFINED) {
        cfg->protocol_ver = MQTT_PROTOCOL_V_3_1_1;
    } else if (cfg->protocol_ver == MQTT_PROTOCOL_V_5) {
        ESP_LOGE(TAG, "Please first enable MQTT_PROTOCOL_5 feature in menuconfig");
        err = ESP_FAIL;
        goto _mqtt_set_config_failed;
    }

    cfg->network_timeout_ms = config->network.timeout_ms;
    if (cfg->network_timeout_ms <= 0) {
        cfg->network_timeout_ms = MQTT_NETWORK_TIMEOUT_MS;
    }
    if (config->network.refresh_connection_after_ms) {
        cfg->refresh_connection_after_ms = config->network.refresh_connection_after_ms;
    }
    cfg->auto_reconnect = !config->network.disable_auto_reconnect;
    cfg->reconnect_timeout_ms = config->network.reconnect_timeout_ms ? config->network.reconnect_timeout_ms
                                : MQTT_RECON_DEFAULT_MS;
    if (config->network.transport) {
        ESP_LOGW(TAG, "A custom network.transport is not supported by the host port, it is ignored");
    }
    if (config->network.if_name) {
        ESP_LOGW(TAG, "network.if_name is not supported by the host port, it is ignored");
    }

    if (config->broker.verification.alpn_protos && config->broker.verification.alpn_protos[0]) {
        free(cfg->alpn);
        cfg->alpn = strdup(config->broker.verification.alpn_protos[0]);
        if (config->broker.verification.alpn_protos[1]) {
            ESP_LOGW(TAG, "libmosquitto offers one ALPN protocol: only \"%s\" is sent", cfg->alpn);
        }
    }

    // configure ssl related parameters
    cfg->use_global_ca_store = config->broker.verification.use_global_ca_store;
    cfg->cacert_buf = config->broker.verification.certificate;
    cfg->cacert_bytes = config->broker.verification.certificate_len;
    cfg->use_psk = config->broker.verification.psk_hint_key != NULL;
    cfg->use_crt_bundle = config->broker.verification.crt_bundle_attach != NULL;
    cfg->clientcert_buf = config->credentials.authentication.certificate;
    cfg->clientcert_bytes = config->credentials.authentication.certificate_len;
    cfg->clientkey_buf = config->credentials.authentication.key;
    cfg->clientkey_bytes = config->credentials.authentication.key_len;
    cfg->skip_cert_common_name_check = config->broker.verification.skip_cert_common_name_check;
    cfg->common_name = config->broker.verification.common_name;
    if (cfg->common_name && !cfg->skip_cert_common_name_check) {
        ESP_LOGW(TAG, "verification.common_name is not supported by the host port: the broker host name is checked");
    }
    if (config->credentials.authentication.use_secure_element || config->credentials.authentication.ds_data ||
            config->credentials.authentication.use_ecdsa_peripheral) {
        ESP_LOGE(TAG, "Secure element, DS and ECDSA peripherals are not available on the host port");
    }
    if (config->credentials.authentication.key_password && config->credentials.authentication.key_password_len) {
        free(cfg->clientkey_password);
        cfg->clientkey_password = strndup(config->credentials.authentication.key_password,
                                          (size_t)config->credentials.authentication.key_password_len);
        if (cfg->clientkey_password == NULL) {
            goto _mqtt_set_config_failed;
        }
    }

    if (config->broker.address.transport) {
        free(cfg->scheme);
        cfg->scheme = NULL;
        switch (config->broker.address.transport) {
        case MQTT_TRANSPORT_OVER_TCP:
            cfg->scheme = strdup(MQTT_OVER_TCP_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_SSL:
            cfg->scheme = strdup(MQTT_OVER_SSL_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_WS:
            cfg->scheme = strdup(MQTT_OVER_WS_SCHEME);
            break;
        case MQTT_TRANSPORT_OVER_WSS:
            cfg->scheme = strdup(MQTT_OVER_WSS_SCHEME);
            break;
        default:
            break;
        }
    }

    // Set uri at the end of config to override separately configured uri elements
    if (config->broker.address.uri) {
        if (esp_mqtt_client_set_uri(client, cfg->uri) != ESP_OK) {
            err = ESP_FAIL;
            goto _mqtt_set_config_failed;
        }
    }
    cfg->outbox_limit = config->outbox.limit;
    err = esp_mqtt_check_cfg_conflict(cfg, config);
    pthread_mutex_unlock(&client->lock);
    return err;

_mqtt_set_config_failed:
    esp_mqtt_destroy_config(client);
    pthread_mutex_unlock(&client->lock);
    return err;
}
