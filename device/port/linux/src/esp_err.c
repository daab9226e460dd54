/*
 * esp_err_to_name() and ESP_ERROR_CHECK's failure path for the host port.
 * The names are those of ESP-IDF's generated esp_err_to_name table, for the codes the
 * firmware and the host port can return.
 */
#include <stdio.h>
#include <stdlib.h>
#include "esp_err.h"
#include "esp_ota_ops.h"
#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_wifi.h"
#include "esp_mesh.h"
#include "esp_tls_errors.h"
#include "nvs.h"
#include "spi_flash_mmap.h"

#define ERR_TBL_IT(err) {err, #err}

typedef struct {
    esp_err_t code;
    const char *msg;
} esp_err_msg_t;

static const esp_err_msg_t esp_err_msg_table[] = {
    ERR_TBL_IT(ESP_FAIL),
    ERR_TBL_IT(ESP_OK),
    ERR_TBL_IT(ESP_ERR_NO_MEM),
    ERR_TBL_IT(ESP_ERR_INVALID_ARG),
    ERR_TBL_IT(ESP_ERR_INVALID_STATE),
    ERR_TBL_IT(ESP_ERR_INVALID_SIZE),
    ERR_TBL_IT(ESP_ERR_NOT_FOUND),
    ERR_TBL_IT(ESP_ERR_NOT_SUPPORTED),
    ERR_TBL_IT(ESP_ERR_TIMEOUT),
    ERR_TBL_IT(ESP_ERR_INVALID_RESPONSE),
    ERR_TBL_IT(ESP_ERR_INVALID_CRC),
    ERR_TBL_IT(ESP_ERR_INVALID_VERSION),
    ERR_TBL_IT(ESP_ERR_INVALID_MAC),
    ERR_TBL_IT(ESP_ERR_NOT_FINISHED),
    ERR_TBL_IT(ESP_ERR_NOT_ALLOWED),
    ERR_TBL_IT(ESP_ERR_NVS_NOT_INITIALIZED),
    ERR_TBL_IT(ESP_ERR_NVS_NOT_FOUND),
    ERR_TBL_IT(ESP_ERR_NVS_TYPE_MISMATCH),
    ERR_TBL_IT(ESP_ERR_NVS_READ_ONLY),
    ERR_TBL_IT(ESP_ERR_NVS_NOT_ENOUGH_SPACE),
    ERR_TBL_IT(ESP_ERR_NVS_INVALID_NAME),
    ERR_TBL_IT(ESP_ERR_NVS_INVALID_HANDLE),
    ERR_TBL_IT(ESP_ERR_NVS_KEY_TOO_LONG),
    ERR_TBL_IT(ESP_ERR_NVS_INVALID_LENGTH),
    ERR_TBL_IT(ESP_ERR_NVS_NO_FREE_PAGES),
    ERR_TBL_IT(ESP_ERR_NVS_VALUE_TOO_LONG),
    ERR_TBL_IT(ESP_ERR_NVS_NEW_VERSION_FOUND),
    ERR_TBL_IT(ESP_ERR_OTA_PARTITION_CONFLICT),
    ERR_TBL_IT(ESP_ERR_OTA_SELECT_INFO_INVALID),
    ERR_TBL_IT(ESP_ERR_OTA_VALIDATE_FAILED),
    ERR_TBL_IT(ESP_ERR_OTA_SMALL_SEC_VER),
    ERR_TBL_IT(ESP_ERR_OTA_ROLLBACK_FAILED),
    ERR_TBL_IT(ESP_ERR_OTA_ROLLBACK_INVALID_STATE),
    ERR_TBL_IT(ESP_ERR_FLASH_OP_FAIL),
    ERR_TBL_IT(ESP_ERR_FLASH_OP_TIMEOUT),
    ERR_TBL_IT(ESP_ERR_HTTP_MAX_REDIRECT),
    ERR_TBL_IT(ESP_ERR_HTTP_CONNECT),
    ERR_TBL_IT(ESP_ERR_HTTP_WRITE_DATA),
    ERR_TBL_IT(ESP_ERR_HTTP_FETCH_HEADER),
    ERR_TBL_IT(ESP_ERR_HTTP_INVALID_TRANSPORT),
    ERR_TBL_IT(ESP_ERR_HTTP_CONNECTING),
    ERR_TBL_IT(ESP_ERR_HTTP_EAGAIN),
    ERR_TBL_IT(ESP_ERR_HTTP_CONNECTION_CLOSED),
    ERR_TBL_IT(ESP_ERR_HTTP_NOT_MODIFIED),
    ERR_TBL_IT(ESP_ERR_HTTP_RANGE_NOT_SATISFIABLE),
    ERR_TBL_IT(ESP_ERR_HTTP_READ_TIMEOUT),
    ERR_TBL_IT(ESP_ERR_HTTP_INCOMPLETE_DATA),
    ERR_TBL_IT(ESP_ERR_HTTPS_OTA_IN_PROGRESS),
    ERR_TBL_IT(ESP_ERR_WIFI_NOT_INIT),
    ERR_TBL_IT(ESP_ERR_WIFI_NOT_STARTED),
    ERR_TBL_IT(ESP_ERR_WIFI_CONN),
    ERR_TBL_IT(ESP_ERR_WIFI_NOT_CONNECT),
    ERR_TBL_IT(ESP_ERR_MESH_WIFI_NOT_START),
    ERR_TBL_IT(ESP_ERR_MESH_NOT_INIT),
    ERR_TBL_IT(ESP_ERR_MESH_NOT_CONFIG),
    ERR_TBL_IT(ESP_ERR_MESH_NOT_START),
    ERR_TBL_IT(ESP_ERR_MESH_NOT_SUPPORT),
    ERR_TBL_IT(ESP_ERR_MESH_NOT_ALLOWED),
    ERR_TBL_IT(ESP_ERR_MESH_NO_MEMORY),
    ERR_TBL_IT(ESP_ERR_MESH_ARGUMENT),
    ERR_TBL_IT(ESP_ERR_MESH_EXCEED_MTU),
    ERR_TBL_IT(ESP_ERR_MESH_TIMEOUT),
    ERR_TBL_IT(ESP_ERR_MESH_DISCONNECTED),
    ERR_TBL_IT(ESP_ERR_MESH_QUEUE_FAIL),
    ERR_TBL_IT(ESP_ERR_MESH_QUEUE_FULL),
    ERR_TBL_IT(ESP_ERR_MESH_NO_PARENT_FOUND),
    ERR_TBL_IT(ESP_ERR_MESH_NO_ROUTE_FOUND),
    ERR_TBL_IT(ESP_ERR_MESH_OPTION_NULL),
    ERR_TBL_IT(ESP_ERR_MESH_OPTION_UNKNOWN),
    ERR_TBL_IT(ESP_ERR_MESH_XON_NO_WINDOW),
    ERR_TBL_IT(ESP_ERR_MESH_INTERFACE),
    ERR_TBL_IT(ESP_ERR_MESH_DISCARD_DUPLICATE),
    ERR_TBL_IT(ESP_ERR_MESH_DISCARD),
    ERR_TBL_IT(ESP_ERR_MESH_VOTING),
    ERR_TBL_IT(ESP_ERR_MESH_XMIT),
    ERR_TBL_IT(ESP_ERR_MESH_QUEUE_READ),
    ERR_TBL_IT(ESP_ERR_MESH_PS),
    ERR_TBL_IT(ESP_ERR_MESH_RECV_RELEASE),
    ERR_TBL_IT(ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME),
    ERR_TBL_IT(ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST),
    ERR_TBL_IT(ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT),
    ERR_TBL_IT(ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED),
    ERR_TBL_IT(ESP_ERR_MBEDTLS_SSL_READ_FAILED),
    {0xe003, "ESP_ERR_TCP_TRANSPORT_CONNECTION_FAILED"},
};

const char *esp_err_to_name(esp_err_t code)
{
    for (size_t i = 0; i < sizeof(esp_err_msg_table) / sizeof(esp_err_msg_table[0]); ++i) {
        if (esp_err_msg_table[i].code == code) {
            return esp_err_msg_table[i].msg;
        }
    }
    return "UNKNOWN ERROR";
}

const char *esp_err_to_name_r(esp_err_t code, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s", esp_err_to_name(code));
    return buf;
}

void _esp_error_check_failed(esp_err_t rc, const char *file, int line, const char *function,
                             const char *expression)
{
    /* Same text as components/esp_system/esp_err.c prints before aborting. */
    printf("ESP_ERROR_CHECK failed: esp_err_t 0x%x (%s) at %p\n", rc, esp_err_to_name(rc),
           __builtin_return_address(0));
    printf("file: \"%s\" line %d\nfunc: %s\nexpression: %s\n", file, line, function, expression);
    fflush(stdout);
    abort();
}
