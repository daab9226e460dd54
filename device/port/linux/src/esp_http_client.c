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
 *  - The first esp_http_client_init() of a boot loads libcurl (src/host_curl.c): about 5 ms of CPU
 *    that the chip does not spend, before that client's first request.
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
 *
 * The code is split by concern (src/http_client_priv.h lists the files): this file is the
 * public API; http_config.c, http_transport.c (libcurl), http_buffers.c and http_errors.c
 * (esp-tls / tcp_transport error codes and log lines) hold the rest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "esp_err.h"
#include "esp_log.h"
#include "esp_event.h"
#include "esp_http_client.h"
#include "http_client_priv.h"

ESP_EVENT_DEFINE_BASE(ESP_HTTP_CLIENT_EVENT);

static const char *TAG = HTTP_CLIENT_TAG;

/* CONFIG_ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT default (components/esp_http_client/Kconfig). */
#define ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT pdMS_TO_TICKS(2000)

static const char *DEFAULT_HTTP_USER_AGENT = "ESP32 HTTP Client/1.0";

/* ---------------------------------------------------------------- events */

esp_err_t http_dispatch_event(esp_http_client_t *client, esp_http_client_event_id_t event_id, void *data, int len)
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

void http_dispatch_event_to_event_loop(int32_t event_id, const void *event_data, size_t event_data_size)
{
    esp_err_t err = esp_event_post(ESP_HTTP_CLIENT_EVENT, event_id, event_data, event_data_size, ESP_HTTP_CLIENT_EVENT_POST_TIMEOUT);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "Failed to post http_client event: %" PRId32 ", error: %s", event_id, esp_err_to_name(err));
    }
}

void http_dispatch_error(esp_http_client_t *client)
{
    http_dispatch_event(client, HTTP_EVENT_ERROR, &client->tls_error, 0);
    http_dispatch_event_to_event_loop(HTTP_EVENT_ERROR, &client, sizeof(esp_http_client_handle_t));
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

esp_http_client_handle_t esp_http_client_init(const esp_http_client_config_t *config)
{
    if (http_transport_global_init() != CURLE_OK) {
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

    if (http_apply_config(client, config) != ESP_OK) {
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
    char *host_name = http_host_header(client->host, client->port);
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
    http_clear_connection_info(client);
    host_free_secret(client->client_key_password);
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
    http_transport_global_init();

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
            return http_read_result_after_failure(client, rlen, ridx);
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

        http_ring_clear(client);
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
    http_ring_clear(client);
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
