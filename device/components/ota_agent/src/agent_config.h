/*
 * Device configuration: Kconfig defaults, overridden by values set on the serial console and
 * kept in NVS, so they survive reboots and OTA updates.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include "esp_err.h"

#define AGENT_CONFIG_STR_MAX 129
/* A CA certificate as one line of base64 DER (the body of a PEM file), to fit on a console line. */
#define AGENT_CONFIG_CA_MAX 1025

typedef struct {
    char device_id[33];
    char topic_prefix[33];
    char wifi_ssid[33];
    char wifi_password[65];
    char broker_url[AGENT_CONFIG_STR_MAX];
    char broker_username[65];
    char broker_password[65];
    char manifest_url[AGENT_CONFIG_STR_MAX];
    char ota_ca_cert[AGENT_CONFIG_CA_MAX];
    char broker_ca_cert[AGENT_CONFIG_CA_MAX]; /* the CA an mqtts:// broker's certificate must chain to */
    int manifest_delay_s;
    int selftest_timeout_s;
    int heartbeat_s;
    int mqtt_keepalive_s;
    int wifi_beacon_timeout_s; /* esp_wifi_set_inactive_time() of the station */
    bool require_https;
} agent_config_t;

/* Loads Kconfig defaults, then the NVS overrides. */
esp_err_t agent_config_load(void);
/* The loaded configuration; valid after agent_config_load(). */
const agent_config_t *agent_config_get(void);
/* Sets a key by name and persists it; ESP_ERR_NOT_FOUND for an unknown key,
   ESP_ERR_INVALID_ARG for a value that does not fit or parse. Takes effect after a reboot. */
esp_err_t agent_config_set(const char *key, const char *value);
/* What a valid value of the key looks like, for an error message ("an integer from 1 to 3600"). */
void agent_config_describe(const char *key, char *out, size_t out_len);
/* Writes the value of a key into out (masked for secrets when mask is true). */
esp_err_t agent_config_get_value(const char *key, char *out, size_t out_len, bool mask);
/* Erases every override, back to the Kconfig defaults (after a reboot). */
esp_err_t agent_config_reset(void);
/* Calls fn for each key, in a stable order. */
void agent_config_for_each_key(void (*fn)(const char *key, void *ctx), void *ctx);

/* The configured CA (ota_ca_cert: one line of base64 DER) as the PEM esp_http_client expects; false
   when none is configured. pem_len: AGENT_CONFIG_CA_MAX + 128 is always enough. */
bool agent_config_ca_pem(char *pem, size_t pem_len);
/* The same for broker_ca_cert, the CA of an mqtts:// broker (esp-mqtt's broker.verification.certificate). */
bool agent_config_broker_ca_pem(char *pem, size_t pem_len);
