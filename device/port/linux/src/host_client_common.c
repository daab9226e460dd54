/*
 * What the host port's HTTP and MQTT clients share (host_client_common.h). No ESP-IDF file of its
 * own: the copying follows esp-mqtt's esp_mqtt_set_if_config(), the TLS lines are esp-tls's.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "host_client_common.h"

/* Tags of the ESP-IDF components whose lines the device prints for either client. */
static const char *TAG_TLS = "esp-tls";
static const char *TAG_MBEDTLS = "esp-tls-mbedtls";

bool host_set_string_if_given(char **dst, const char *src)
{
    if (src) {
        free(*dst);
        *dst = strdup(src);
        if (*dst == NULL) {
            return false;
        }
    }
    return true;
}

void host_free_secret(char *secret)
{
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
}

void host_report_tls_setup_error(host_tls_setup_error_t what)
{
    switch (what) {
    case HOST_TLS_NO_GLOBAL_CA:
        ESP_LOGE(TAG_MBEDTLS, "global_cacert is NULL");
        break;
    case HOST_TLS_CA_UNPARSABLE:
        ESP_LOGE(TAG_MBEDTLS, "mbedtls_x509_crt_parse of CA cert returned -0x%04X", 0x2180);
        break;
    case HOST_TLS_NO_VERIFICATION:
        ESP_LOGE(TAG_MBEDTLS, "No server verification option set in esp_tls_cfg_t structure. Check esp_tls API reference");
        ESP_LOGE(TAG_TLS, "create_ssl_handle failed");
        break;
    }
}
