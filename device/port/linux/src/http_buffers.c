/*
 * Host port of esp_http_client (see esp_http_client.c): its buffers. The bounded receive ring
 * between libcurl and esp_http_client_read(), the request header list (ESP-IDF's http_header.c),
 * string helpers, and base64 / PEM for Basic auth and in-memory certificates.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client_priv.h"

/* ---------------------------------------------------------------- receive ring */

size_t http_ring_free(const esp_http_client_t *client)
{
    return client->ring_cap - client->ring_count;
}

void http_ring_put(esp_http_client_t *client, const char *data, size_t len)
{
    size_t tail = (client->ring_head + client->ring_count) % client->ring_cap;
    size_t first = client->ring_cap - tail < len ? client->ring_cap - tail : len;
    memcpy(client->ring + tail, data, first);
    memcpy(client->ring, data + first, len - first);
    client->ring_count += len;
}

size_t http_ring_take(esp_http_client_t *client, char *out, size_t len)
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

void http_ring_clear(esp_http_client_t *client)
{
    client->ring_head = 0;
    client->ring_count = 0;
}

/* ---------------------------------------------------------------- request headers (http_header.c) */

http_header_item_t *http_header_find(esp_http_client_handle_t client, const char *key)
{
    for (http_header_item_t *item = client->headers; item; item = item->next) {
        if (strcasecmp(item->key, key) == 0) {
            return item;
        }
    }
    return NULL;
}

esp_err_t http_header_delete(esp_http_client_handle_t client, const char *key)
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

esp_err_t http_header_set(esp_http_client_handle_t client, const char *key, const char *value)
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

void http_header_clean(esp_http_client_handle_t client)
{
    while (client->headers) {
        http_header_item_t *item = client->headers;
        client->headers = item->next;
        free(item->key);
        free(item->value);
        free(item);
    }
}

esp_err_t http_assign_string(char **dst, const char *src, int len)
{
    char *copy = len < 0 ? strdup(src) : strndup(src, (size_t)len);
    if (copy == NULL) {
        return ESP_ERR_NO_MEM;
    }
    free(*dst);
    *dst = copy;
    return ESP_OK;
}

esp_err_t http_append_string(char **dst, const char *src, size_t len)
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

/* ---------------------------------------------------------------- base64 / PEM */

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 without line breaks; used for Basic auth and for turning a DER certificate into PEM,
 * which is the only form libcurl accepts for an in-memory CA. */
char *http_base64_encode(const unsigned char *in, size_t len)
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

bool http_is_pem(const char *data, size_t len)
{
    return memmem(data, len, "-----BEGIN ", 11) != NULL;
}

/* PEM text for a certificate given as ESP-IDF accepts it: NUL-terminated PEM when len is 0,
 * otherwise PEM or DER of that length (mbedtls_x509_crt_parse() accepts both). */
char *http_cert_to_pem(const char *data, size_t len)
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
