/*
 * Host port of the part of ESP-IDF v5.5.4's tcp_transport API (components/tcp_transport/include/
 * esp_transport.h) that apps of this kind call: the types esp-mqtt's config names, and
 * esp_transport_get_socket() to tune the connection's socket (TCP_NODELAY, for instance).
 *
 * Differences from the real header: only these declarations. The transports themselves are the
 * ones esp_mqtt_client_get_transport() hands out (src/mqtt_client.c); their socket is the one
 * libmosquitto connected, or -1 while the client is not connected.
 */
#ifndef _ESP_TRANSPORT_H_
#define _ESP_TRANSPORT_H_

#include <esp_err.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
*  @brief Keep alive parameters structure
*/
typedef struct esp_transport_keepalive {
    bool            keep_alive_enable;      /*!< Enable keep-alive timeout */
    int             keep_alive_idle;        /*!< Keep-alive idle time (second) */
    int             keep_alive_interval;    /*!< Keep-alive interval time (second) */
    int             keep_alive_count;       /*!< Keep-alive packet retry send count */
} esp_transport_keep_alive_t;

typedef struct esp_transport_list_t* esp_transport_list_handle_t;
typedef struct esp_transport_item_t* esp_transport_handle_t;

/**
 * @brief      Get the underlying socket from the transport
 *
 * @param[in] t The transport handle
 *
 * @return socket descriptor
 */
int esp_transport_get_socket(esp_transport_handle_t t);

#ifdef __cplusplus
}
#endif
#endif /* _ESP_TRANSPORT_H_ */
