/*
 * What the host port's HTTP client (esp_http_client.c) and MQTT client (mqtt_client.c) share:
 * the copying and wiping of configuration strings, and the lines esp-tls prints when it cannot
 * set up a TLS context (on the chip both clients reach the same esp-tls, so the wording is one).
 * Private to the host port: firmware code never includes this.
 */
#pragma once

#include <stdbool.h>

/* A configuration field given (src not NULL) replaces *dst with a copy, as esp-mqtt's
   esp_mqtt_set_if_config() does: the old value is freed first, and left NULL when the copy
   cannot be made (then false). A field not given keeps its value (true). */
bool host_set_string_if_given(char **dst, const char *src);

/* A secret (password, key passphrase) is overwritten before it is freed. NULL is fine. */
void host_free_secret(char *secret);

/* ---- what esp-tls reports when it cannot set up the TLS context from a client's options */
typedef enum {
    HOST_TLS_NO_GLOBAL_CA,          /* use_global_ca_store with no global store */
    HOST_TLS_CA_UNPARSABLE,         /* the CA (or client certificate / key) cannot be loaded */
    HOST_TLS_NO_VERIFICATION,       /* https / mqtts with no server verification option */
} host_tls_setup_error_t;
void host_report_tls_setup_error(host_tls_setup_error_t what);
