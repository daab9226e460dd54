/*
 * Configuration keys are described once, in a table, so loading, setting, printing and
 * masking all follow the same list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_log.h"
#include "esp_mac.h"
#include "nvs.h"
#include "sdkconfig.h"
#include "agent_config.h"

static const char *TAG = "agent_config";
static const char *NVS_NAMESPACE = "config";

typedef enum { KEY_STR, KEY_INT, KEY_BOOL } key_kind_t;

typedef struct {
    const char *name;    /* the name on the console */
    const char *nvs_key; /* NULL: same as name. NVS keys are at most NVS_KEY_NAME_MAX_SIZE - 1 (15) characters */
    key_kind_t kind;
    size_t offset;
    size_t size;  /* buffer size for strings */
    bool secret;  /* masked by `config show` and never logged */
    int min, max; /* range for integers */
    bool (*valid)(const char *text); /* strings: NULL when any text that fits will do */
    const char *expected;            /* what `valid` accepts, for the console's error */
} config_key_t;

#define STR_KEY(field, secret) {#field, NULL, KEY_STR, offsetof(agent_config_t, field), sizeof(((agent_config_t *)0)->field), secret, 0, 0, NULL, NULL}
/* A string key whose value must also pass `valid` (described by `expected`). */
#define CHECKED_STR_KEY(field, valid, expected) {#field, NULL, KEY_STR, offsetof(agent_config_t, field), sizeof(((agent_config_t *)0)->field), false, 0, 0, valid, expected}
#define INT_KEY(field, lo, hi) {#field, NULL, KEY_INT, offsetof(agent_config_t, field), sizeof(int), false, lo, hi, NULL, NULL}
/* For names longer than an NVS key may be: stored under nvs_key instead. */
#define INT_KEY_AS(field, nvs_key, lo, hi) {#field, nvs_key, KEY_INT, offsetof(agent_config_t, field), sizeof(int), false, lo, hi, NULL, NULL}
#define BOOL_KEY(field) {#field, NULL, KEY_BOOL, offsetof(agent_config_t, field), sizeof(bool), false, 0, 1, NULL, NULL}

/* An empty URL (not provisioned), or one esp-mqtt's esp_mqtt_client_set_uri() takes: a scheme it has a
   transport for, "://", then a host (after any user:password@) and an optional decimal port. Anything
   else would make esp_mqtt_client_init() fail at every boot, and the agent with it. */
static bool valid_broker_url(const char *url)
{
    static const char *const schemes[] = {"mqtt://", "mqtts://", "ws://", "wss://"};
    if (url[0] == '\0') {
        return true;
    }
    const char *host = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]) && host == NULL; i++) {
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0) {
            host = url + strlen(schemes[i]);
        }
    }
    if (host == NULL) {
        return false;
    }
    size_t authority = strcspn(host, "/");
    const char *at = memchr(host, '@', authority);
    if (at != NULL) {
        authority -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    const char *bracket = host[0] == '[' ? memchr(host, ']', authority) : NULL; /* an IPv6 literal */
    size_t name = bracket != NULL ? (size_t)(bracket + 1 - host) : strcspn(host, ":/");
    if (name == 0 || name > authority || (host[0] == '[' && bracket == NULL)) {
        return false;
    }
    if (host[name] != ':') {
        return true;
    }
    size_t digits = strspn(host + name + 1, "0123456789");
    return digits >= 1 && digits <= 5 && name + 1 + digits == authority && atol(host + name + 1) <= 65535;
}

/* The device id is one level of its topics (<prefix>/<device_id>/cmd): a '/' would move them, and with a
   wildcard ('+', '#') the subscription would take other devices' commands and the last will could not be
   sent (CONNECT fails at every boot). Empty: derived from the MAC. */
static bool valid_topic_level(const char *text)
{
    return text[strcspn(text, "/+#")] == '\0';
}

/* The topic prefix: one or more levels, without wildcards, neither starting nor ending with '/'. */
static bool valid_topic_prefix(const char *text)
{
    size_t len = strlen(text);
    return len > 0 && text[strcspn(text, "+#")] == '\0' && text[0] != '/' && text[len - 1] != '/';
}

static const config_key_t s_keys[] = {
    CHECKED_STR_KEY(device_id, valid_topic_level, "one topic level: without /, + or # (empty: from the MAC)"),
    CHECKED_STR_KEY(topic_prefix, valid_topic_prefix, "topic levels without + or #, not starting or ending with /"),
    STR_KEY(wifi_ssid, false),
    STR_KEY(wifi_password, true),
    CHECKED_STR_KEY(broker_url, valid_broker_url,
                    "mqtt://host[:port] (or mqtts://, ws://, wss://), or empty"),
    STR_KEY(broker_username, false),
    STR_KEY(broker_password, true),
    STR_KEY(manifest_url, false),
    STR_KEY(ota_ca_cert, false),
    STR_KEY(broker_ca_cert, false),
    INT_KEY_AS(manifest_delay_s, "manifest_dly_s", 0, 86400),
    INT_KEY_AS(selftest_timeout_s, "selftest_to_s", 1, 3600),
    INT_KEY(heartbeat_s, 0, 86400),
    INT_KEY_AS(mqtt_keepalive_s, "mqtt_keepalv_s", 2, 3600),
    INT_KEY_AS(wifi_beacon_timeout_s, "wifi_bcn_to_s", 3, 60),
    BOOL_KEY(require_https),
};

#define KEY_COUNT (sizeof(s_keys) / sizeof(s_keys[0]))

static agent_config_t s_config;

static const char *nvs_key(const config_key_t *key)
{
    return key->nvs_key != NULL ? key->nvs_key : key->name;
}

static const config_key_t *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(s_keys[i].name, name) == 0) {
            return &s_keys[i];
        }
    }
    return NULL;
}

static void load_defaults(agent_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->device_id, sizeof(c->device_id), "%s", CONFIG_HIL_DEVICE_ID);
    snprintf(c->topic_prefix, sizeof(c->topic_prefix), "%s", CONFIG_HIL_TOPIC_PREFIX);
    snprintf(c->wifi_ssid, sizeof(c->wifi_ssid), "%s", CONFIG_HIL_WIFI_SSID);
    snprintf(c->wifi_password, sizeof(c->wifi_password), "%s", CONFIG_HIL_WIFI_PASSWORD);
    snprintf(c->broker_url, sizeof(c->broker_url), "%s", CONFIG_HIL_BROKER_URL);
    snprintf(c->broker_username, sizeof(c->broker_username), "%s", CONFIG_HIL_BROKER_USERNAME);
    snprintf(c->broker_password, sizeof(c->broker_password), "%s", CONFIG_HIL_BROKER_PASSWORD);
    snprintf(c->manifest_url, sizeof(c->manifest_url), "%s", CONFIG_HIL_MANIFEST_URL);
    c->selftest_timeout_s = CONFIG_HIL_SELFTEST_TIMEOUT_S;
    c->manifest_delay_s = CONFIG_HIL_MANIFEST_DELAY_S;
    c->heartbeat_s = CONFIG_HIL_HEARTBEAT_S;
    c->mqtt_keepalive_s = CONFIG_HIL_MQTT_KEEPALIVE_S;
#ifdef CONFIG_OTA_AGENT_WIFI_BEACON_TIMEOUT_S
    c->wifi_beacon_timeout_s = CONFIG_OTA_AGENT_WIFI_BEACON_TIMEOUT_S;
#else
    c->wifi_beacon_timeout_s = 6; /* ESP-IDF's default; the application runs Wi-Fi itself */
#endif
#ifdef CONFIG_HIL_REQUIRE_HTTPS
    c->require_https = true;
#endif
}

/* An empty device id means "derive it from the MAC", so each chip has its own topics. */
static void derive_device_id(agent_config_t *c)
{
    if (c->device_id[0] != '\0') {
        return;
    }
    uint8_t mac[6] = {0};
    esp_err_t err = esp_read_mac(mac, ESP_MAC_WIFI_STA);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "esp_read_mac failed: %s", esp_err_to_name(err));
    }
    snprintf(c->device_id, sizeof(c->device_id), "esp32-%02x%02x%02x", mac[3], mac[4], mac[5]);
}

/* Parses text into the field of a key; false when it does not fit or parse. */
static bool parse_value(const config_key_t *key, const char *text, agent_config_t *c)
{
    void *field = (char *)c + key->offset;
    if (key->kind == KEY_STR) {
        if (strlen(text) >= key->size || (key->valid != NULL && !key->valid(text))) {
            return false;
        }
        strcpy(field, text);
        return true;
    }
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (key->kind == KEY_BOOL && (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)) {
        *(bool *)field = text[0] == 't';
        return true;
    }
    if (end == text || *end != '\0' || v < key->min || v > key->max) {
        return false;
    }
    if (key->kind == KEY_BOOL) {
        *(bool *)field = v != 0;
    } else {
        *(int *)field = (int)v;
    }
    return true;
}

static void format_value(const config_key_t *key, const agent_config_t *c, char *out, size_t out_len)
{
    const void *field = (const char *)c + key->offset;
    if (key->kind == KEY_STR) {
        snprintf(out, out_len, "%s", (const char *)field);
    } else if (key->kind == KEY_INT) {
        snprintf(out, out_len, "%d", *(const int *)field);
    } else {
        snprintf(out, out_len, "%s", *(const bool *)field ? "true" : "false");
    }
}

esp_err_t agent_config_load(void)
{
    load_defaults(&s_config);
    nvs_handle_t nvs;
    esp_err_t err = nvs_open(NVS_NAMESPACE, NVS_READONLY, &nvs);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        derive_device_id(&s_config); /* nothing set on the console yet */
        return ESP_OK;
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "nvs_open failed: %s", esp_err_to_name(err));
        return err;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        static char text[AGENT_CONFIG_CA_MAX]; /* static: too large for the main task's stack */
        size_t len = sizeof(text);
        if (nvs_get_str(nvs, nvs_key(&s_keys[i]), text, &len) == ESP_OK && !parse_value(&s_keys[i], text, &s_config)) {
            ESP_LOGW(TAG, "ignoring stored %s: not a valid value", s_keys[i].name);
        }
    }
    nvs_close(nvs);
    derive_device_id(&s_config);
    return ESP_OK;
}

const agent_config_t *agent_config_get(void)
{
    return &s_config;
}

esp_err_t agent_config_set(const char *name, const char *value)
{
    const config_key_t *key = find_key(name);
    if (key == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    static agent_config_t scratch; /* static: ~1.6 KB; only the console task sets keys */
    scratch = s_config;
    if (!parse_value(key, value, &scratch)) {
        return ESP_ERR_INVALID_ARG;
    }
    nvs_handle_t nvs;
    esp_err_t err = nvs_open(NVS_NAMESPACE, NVS_READWRITE, &nvs);
    if (err != ESP_OK) {
        return err;
    }
    err = nvs_set_str(nvs, nvs_key(key), value);
    if (err == ESP_OK) {
        err = nvs_commit(nvs);
    }
    nvs_close(nvs);
    return err;
}

void agent_config_describe(const char *name, char *out, size_t out_len)
{
    const config_key_t *key = find_key(name);
    if (key == NULL) {
        snprintf(out, out_len, "a known key");
    } else if (key->kind == KEY_INT) {
        snprintf(out, out_len, "an integer from %d to %d", key->min, key->max);
    } else if (key->kind == KEY_BOOL) {
        snprintf(out, out_len, "true or false");
    } else if (key->expected != NULL) {
        snprintf(out, out_len, "%s, at most %u characters", key->expected, (unsigned)(key->size - 1));
    } else {
        snprintf(out, out_len, "at most %u characters", (unsigned)(key->size - 1));
    }
}

esp_err_t agent_config_get_value(const char *name, char *out, size_t out_len, bool mask)
{
    const config_key_t *key = find_key(name);
    if (key == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    if (key->secret && mask) {
        const char *value = (const char *)&s_config + key->offset;
        snprintf(out, out_len, "%s", value[0] != '\0' ? "********" : "");
        return ESP_OK;
    }
    format_value(key, &s_config, out, out_len);
    return ESP_OK;
}

esp_err_t agent_config_reset(void)
{
    nvs_handle_t nvs;
    esp_err_t err = nvs_open(NVS_NAMESPACE, NVS_READWRITE, &nvs);
    if (err != ESP_OK) {
        return err;
    }
    err = nvs_erase_all(nvs);
    if (err == ESP_OK) {
        err = nvs_commit(nvs);
    }
    nvs_close(nvs);
    return err;
}

void agent_config_for_each_key(void (*fn)(const char *key, void *ctx), void *ctx)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        fn(s_keys[i].name, ctx);
    }
}

/* One line of base64 DER as a PEM certificate; false when b64 is empty. */
static bool pem_of(const char *b64, char *pem, size_t pem_len)
{
    size_t len = strlen(b64);
    if (len == 0) {
        return false;
    }
    size_t pos = (size_t)snprintf(pem, pem_len, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < len && pos + 70 < pem_len; i += 64) {
        pos += (size_t)snprintf(pem + pos, pem_len - pos, "%.64s\n", b64 + i);
    }
    snprintf(pem + pos, pem_len - pos, "-----END CERTIFICATE-----\n");
    return true;
}

bool agent_config_ca_pem(char *pem, size_t pem_len)
{
    return pem_of(agent_config_get()->ota_ca_cert, pem, pem_len);
}

bool agent_config_broker_ca_pem(char *pem, size_t pem_len)
{
    return pem_of(agent_config_get()->broker_ca_cert, pem, pem_len);
}
