/*
 * One packet over ESP-WIFI-MESH (mesh_send.h).
 */
#include <string.h>
#include "sdkconfig.h"

#if CONFIG_OTA_AGENT_MESH

#include "esp_log.h"
#include "mesh_send.h"

static const char *TAG = "mesh_send";

esp_err_t mesh_send_packet(const uint8_t *to, const void *data, size_t len, mesh_proto_t proto, mesh_tos_t tos)
{
    if (len > MESH_MPS) {
        ESP_LOGW(TAG, "a %u-byte mesh message is over MESH_MPS (%d): not sent", (unsigned)len, MESH_MPS);
        return ESP_ERR_INVALID_SIZE;
    }
    mesh_addr_t addr;
    if (to != NULL) {
        memcpy(addr.addr, to, sizeof(addr.addr));
    }
    mesh_data_t packet = {.data = (uint8_t *)data, .size = (uint16_t)len, .proto = proto, .tos = tos};
    esp_err_t err = esp_mesh_send(to != NULL ? &addr : NULL, &packet, MESH_DATA_P2P, NULL, 0);
    if (err != ESP_OK) {
        ESP_LOGD(TAG, "esp_mesh_send: %s", esp_err_to_name(err));
    }
    return err;
}

#endif /* CONFIG_OTA_AGENT_MESH */
