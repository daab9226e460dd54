/*
 * ESP-IDF v5.5's components/esp-tls/esp_tls_errors.h, the part the host port uses: the esp-tls error
 * codes its esp_http_client and esp-mqtt report (esp_http_client_get_and_clear_last_tls_error(),
 * MQTT_EVENT_ERROR's esp_tls_last_esp_err), with the same names and values, so esp_err_to_name()
 * names them as on the chip.
 */
#pragma once

#define ESP_ERR_ESP_TLS_BASE                     0x8000 /*!< Starting number of ESP-TLS error codes */
#define ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME  (ESP_ERR_ESP_TLS_BASE + 0x01)
#define ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST   (ESP_ERR_ESP_TLS_BASE + 0x04)
#define ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT       (ESP_ERR_ESP_TLS_BASE + 0x06)
#define ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED     (ESP_ERR_ESP_TLS_BASE + 0x1A)
#define ESP_ERR_MBEDTLS_SSL_READ_FAILED          (ESP_ERR_ESP_TLS_BASE + 0x1D)
