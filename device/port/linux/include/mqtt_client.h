/*
 * Host port of esp-mqtt's mqtt_client.h as shipped in ESP-IDF v5.5.4 (components/mqtt/esp-mqtt,
 * submodule commit 6af4446a48ea), implemented over libmosquitto in src/mqtt_client.c and the
 * src/mqtt_*.c files beside it.
 *
 * Types, enum values, struct field names/types/order and function signatures are those of that
 * commit, built without CONFIG_MQTT_PROTOCOL_5 (the ESP-IDF default), so the MQTT 5 members and
 * the esp_mqtt5_* API are absent here as they are on a default device build.
 *
 * Differences from the real header:
 *  - It declares the MQTT_EVENTS event base. esp-mqtt 6af4446 defines MQTT_EVENTS in
 *    mqtt_client.c but does not declare it in this header, so firmware that names MQTT_EVENTS
 *    must declare it itself (ESP_EVENT_DECLARE_BASE(MQTT_EVENTS)) to build for the chip.
 *  - esp_transport.h is the host port's (include/esp_transport.h): the types and
 *    esp_transport_get_socket() only.
 *  - Functions an app of this kind (an OTA agent's MQTT link) does not call are not declared,
 *    so a caller fails to build: esp_mqtt_client_reconnect(), esp_mqtt_client_disconnect(),
 *    esp_mqtt_client_unregister_event() and esp_mqtt_dispatch_custom_event() (MQTT_USER_EVENT
 *    stays in the enum, which mirrors esp-mqtt's, but nothing posts it).
 */
#ifndef _MQTT_CLIENT_H_
#define _MQTT_CLIENT_H_

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "esp_err.h"
#include "esp_event.h"

#include "esp_transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Only used through pointers, as on the device. */
struct psk_key_hint;
struct ifreq;

ESP_EVENT_DECLARE_BASE(MQTT_EVENTS);

typedef struct esp_mqtt_client *esp_mqtt_client_handle_t;

#define MQTT_OVER_TCP_SCHEME "mqtt"
#define MQTT_OVER_SSL_SCHEME "mqtts"
#define MQTT_OVER_WS_SCHEME  "ws"
#define MQTT_OVER_WSS_SCHEME "wss"

/**
 * @brief *MQTT* event types.
 */
typedef enum esp_mqtt_event_id_t {
    MQTT_EVENT_ANY = -1,
    MQTT_EVENT_ERROR = 0,       /*!< on error event, additional context: connection return code, error handle from esp_tls (if supported) */
    MQTT_EVENT_CONNECTED,       /*!< connected event, additional context: session_present flag */
    MQTT_EVENT_DISCONNECTED,    /*!< disconnected event */
    MQTT_EVENT_SUBSCRIBED,      /*!< subscribed event, additional context: msg_id, error_handle, data (broker response), data_len */
    MQTT_EVENT_UNSUBSCRIBED,    /*!< unsubscribed event, additional context:  msg_id */
    MQTT_EVENT_PUBLISHED,       /*!< published event, additional context:  msg_id */
    MQTT_EVENT_DATA,            /*!< data event, additional context: msg_id, topic, topic_len, data, data_len,
                                     current_data_offset, total_data_len, retain, qos, dup.
                                     Multiple MQTT_EVENT_DATA could be fired for one message, if it is longer
                                     than internal buffer. In that case only first event contains topic pointer
                                     and length, other contain data only with current data length and current
                                     data offset updating. */
    MQTT_EVENT_BEFORE_CONNECT,  /*!< The event occurs before connecting */
    MQTT_EVENT_DELETED,         /*!< Notification on delete of one message from the internal outbox (only if
                                     MQTT_REPORT_DELETED_MESSAGES==1) */
    MQTT_USER_EVENT,            /*!< Custom event used to queue tasks into mqtt event handler */
} esp_mqtt_event_id_t;

/**
 * *MQTT* connection error codes propagated via ERROR event
 */
typedef enum esp_mqtt_connect_return_code_t {
    MQTT_CONNECTION_ACCEPTED = 0,               /*!< Connection accepted  */
    MQTT_CONNECTION_REFUSE_PROTOCOL,            /*!< *MQTT* connection refused reason: Wrong protocol */
    MQTT_CONNECTION_REFUSE_ID_REJECTED,         /*!< *MQTT* connection refused reason: ID rejected */
    MQTT_CONNECTION_REFUSE_SERVER_UNAVAILABLE,  /*!< *MQTT* connection refused reason: Server unavailable */
    MQTT_CONNECTION_REFUSE_BAD_USERNAME,        /*!< *MQTT* connection refused reason: Wrong user */
    MQTT_CONNECTION_REFUSE_NOT_AUTHORIZED       /*!< *MQTT* connection refused reason: Wrong username or password */
} esp_mqtt_connect_return_code_t;

/**
 * *MQTT* connection error codes propagated via ERROR event
 */
typedef enum esp_mqtt_error_type_t {
    MQTT_ERROR_TYPE_NONE = 0,
    MQTT_ERROR_TYPE_TCP_TRANSPORT,
    MQTT_ERROR_TYPE_CONNECTION_REFUSED,
    MQTT_ERROR_TYPE_SUBSCRIBE_FAILED
} esp_mqtt_error_type_t;

#define MQTT_ERROR_TYPE_ESP_TLS MQTT_ERROR_TYPE_TCP_TRANSPORT

typedef enum esp_mqtt_transport_t {
    MQTT_TRANSPORT_UNKNOWN = 0x0,
    MQTT_TRANSPORT_OVER_TCP,    /*!< *MQTT* over TCP, using scheme: ``MQTT`` */
    MQTT_TRANSPORT_OVER_SSL,    /*!< *MQTT* over SSL, using scheme: ``MQTTS`` */
    MQTT_TRANSPORT_OVER_WS,     /*!< *MQTT* over Websocket, using scheme:: ``ws`` */
    MQTT_TRANSPORT_OVER_WSS     /*!< *MQTT* over Websocket Secure, using scheme: ``wss`` */
} esp_mqtt_transport_t;

/**
 *  *MQTT* protocol version used for connection
 */
typedef enum esp_mqtt_protocol_ver_t {
    MQTT_PROTOCOL_UNDEFINED = 0,
    MQTT_PROTOCOL_V_3_1,
    MQTT_PROTOCOL_V_3_1_1,
    MQTT_PROTOCOL_V_5,
} esp_mqtt_protocol_ver_t;

/**
 * @brief *MQTT* error code structure to be passed as a contextual information into ERROR event
 */
typedef struct esp_mqtt_error_codes {
    /* compatible portion of the struct corresponding to struct esp_tls_last_error */
    esp_err_t esp_tls_last_esp_err;     /*!< last esp_err code reported from esp-tls component */
    int esp_tls_stack_err;              /*!< tls specific error code reported from underlying tls stack */
    int esp_tls_cert_verify_flags;      /*!< tls flags reported from underlying tls stack during certificate verification */
    /* esp-mqtt specific structure extension */
    esp_mqtt_error_type_t error_type;   /*!< error type referring to the source of the error */
    esp_mqtt_connect_return_code_t connect_return_code; /*!< connection refused error code reported from *MQTT* broker on connection */
    /* tcp_transport extension */
    int esp_transport_sock_errno;       /*!< errno from the underlying socket */
} esp_mqtt_error_codes_t;

/**
 * *MQTT* event configuration structure
 */
typedef struct esp_mqtt_event_t {
    esp_mqtt_event_id_t event_id;       /*!< *MQTT* event type */
    esp_mqtt_client_handle_t client;    /*!< *MQTT* client handle for this event */
    char *data;                         /*!< Data associated with this event */
    int data_len;                       /*!< Length of the data for this event */
    int total_data_len;                 /*!< Total length of the data (longer data are supplied with multiple events) */
    int current_data_offset;            /*!< Actual offset for the data associated with this event */
    char *topic;                        /*!< Topic associated with this event */
    int topic_len;                      /*!< Length of the topic for this event associated with this event */
    int msg_id;                         /*!< *MQTT* messaged id of message */
    int session_present;                /*!< *MQTT* session_present flag for connection event */
    esp_mqtt_error_codes_t *error_handle; /*!< esp-mqtt error handle including esp-tls errors as well as internal *MQTT* errors */
    bool retain;                        /*!< Retained flag of the message associated with this event */
    int qos;                            /*!< QoS of the messages associated with this event */
    bool dup;                           /*!< dup flag of the message associated with this event */
    esp_mqtt_protocol_ver_t protocol_ver; /*!< MQTT protocol version used for connection, defaults to value from menuconfig*/
} esp_mqtt_event_t;

typedef esp_mqtt_event_t *esp_mqtt_event_handle_t;

/**
 * *MQTT* client configuration structure
 *
 *  - All certificates and key data could be passed in PEM or DER format. PEM format must have a terminating NULL
 *    character and the related len field set to 0. DER format requires a related len field set to the correct length.
 */
typedef struct esp_mqtt_client_config_t {
    /**
     *   Broker related configuration
     */
    struct broker_t {
        /**
         * Broker address
         *
         *  - uri have precedence over other fields
         *  - If uri isn't set at least hostname, transport and port should.
         */
        struct address_t {
            const char *uri;                /*!< Complete *MQTT* broker URI */
            const char *hostname;           /*!< Hostname, to set ipv4 pass it as string) */
            esp_mqtt_transport_t transport; /*!< Selects transport*/
            const char *path;               /*!< Path in the URI*/
            uint32_t port;                  /*!< *MQTT* server port */
        } address; /*!< Broker address configuration */
        /**
         * Broker identity verification
         */
        struct verification_t {
            bool use_global_ca_store;       /*!< Use a global ca_store, look esp-tls documentation for details. */
            esp_err_t (*crt_bundle_attach)(void *conf); /*!< Pointer to ESP x509 Certificate Bundle attach function */
            const char *certificate;        /*!< Certificate data, default is NULL. It's not copied nor freed by the client, user needs to clean up.*/
            size_t certificate_len;         /*!< Length of the buffer pointed to by certificate. */
            const struct psk_key_hint *psk_hint_key; /*!< Pointer to PSK struct defined in esp_tls.h */
            bool skip_cert_common_name_check; /*!< Skip any validation of server certificate CN field */
            const char **alpn_protos;       /*!< NULL-terminated list of supported application protocols to be used for ALPN.*/
            const char *common_name;        /*!< Pointer to the string containing server certificate common name. */
        } verification; /*!< Security verification of the broker */
    } broker; /*!< Broker address and security verification */
    /**
     * Client related credentials for authentication.
     */
    struct credentials_t {
        const char *username;       /*!< *MQTT* username */
        const char *client_id;      /*!< Set *MQTT* client identifier. Ignored if set_null_client_id == true If NULL set
                                         the default client id. Default client id is ``ESP32_%CHIPID%`` where `%CHIPID%` are
                                         last 3 bytes of MAC address in hex format */
        bool set_null_client_id;    /*!< Selects a NULL client id */
        /**
         * Client authentication
         */
        struct authentication_t {
            const char *password;       /*!< *MQTT* password */
            const char *certificate;    /*!< Certificate for ssl mutual authentication */
            size_t certificate_len;     /*!< Length of the buffer pointed to by certificate.*/
            const char *key;            /*!< Private key for SSL mutual authentication */
            size_t key_len;             /*!< Length of the buffer pointed to by key.*/
            const char *key_password;   /*!< Client key decryption password, not PEM nor DER */
            int key_password_len;       /*!< Length of the password pointed to by `key_password` */
            bool use_secure_element;    /*!< Enable secure element, available in ESP32-ROOM-32SE, for SSL connection */
            void *ds_data;              /*!< Carrier of handle for digital signature parameters */
            bool use_ecdsa_peripheral;  /*!< Enable ECDSA peripheral, available in some Espressif devices. */
            uint8_t ecdsa_key_efuse_blk; /*!< ECDSA key block number from efuse, available in some Espressif devices. */
        } authentication; /*!< Client authentication */
    } credentials; /*!< User credentials for broker */
    /**
     * *MQTT* Session related configuration
     */
    struct session_t {
        /**
         * Last Will and Testament message configuration.
         */
        struct last_will_t {
            const char *topic;  /*!< LWT (Last Will and Testament) message topic */
            const char *msg;    /*!< LWT message, may be NULL terminated*/
            int msg_len;        /*!< LWT message length, if msg isn't NULL terminated must have the correct length */
            int qos;            /*!< LWT message QoS */
            int retain;         /*!< LWT retained message flag */
        } last_will; /*!< Last will configuration */
        bool disable_clean_session; /*!< *MQTT* clean session, default clean_session is true */
        int keepalive;              /*!< *MQTT* keepalive, default is 120 seconds */
        bool disable_keepalive;     /*!< Set `disable_keepalive=true` to turn off keep-alive mechanism */
        esp_mqtt_protocol_ver_t protocol_ver; /*!< *MQTT* protocol version used for connection.*/
        int message_retransmit_timeout; /*!< timeout for retransmitting of failed packet */
    } session; /*!< *MQTT* session configuration. */
    /**
     * Network related configuration
     */
    struct network_t {
        int reconnect_timeout_ms;   /*!< Reconnect to the broker after this value in miliseconds if auto reconnect is not
                                         disabled (defaults to 10s) */
        int timeout_ms;             /*!< Abort network operation if it is not completed after this value, in milliseconds
                                         (defaults to 10s). */
        int refresh_connection_after_ms; /*!< Refresh connection after this value (in milliseconds) */
        bool disable_auto_reconnect;     /*!< Client will reconnect to server (when errors/disconnect). Set
                                              `disable_auto_reconnect=true` to disable */
        esp_transport_keep_alive_t tcp_keep_alive_cfg;  /*!< Transport keep-alive config*/
        esp_transport_handle_t transport; /*!< Custom transport handle to use (not supported by the host port) */
        struct ifreq *if_name;      /*!< The name of interface for data to go through. Use the default interface without setting */
    } network; /*!< Network configuration */
    /**
     * Client task configuration
     */
    struct task_t {
        int priority;   /*!< *MQTT* task priority*/
        int stack_size; /*!< *MQTT* task stack size*/
    } task; /*!< FreeRTOS task configuration.*/
    /**
     * Client buffer size configuration
     */
    struct buffer_t {
        int size;       /*!< size of *MQTT* send/receive buffer*/
        int out_size;   /*!< size of *MQTT* output buffer. If not defined, defaults to the size defined by ``buffer_size`` */
    } buffer; /*!< Buffer size configuration.*/

    /**
     * Client outbox configuration options.
     */
    struct outbox_config_t {
        uint64_t limit; /*!< Size limit for the outbox in bytes.*/
    } outbox; /*!< Outbox configuration. */
} esp_mqtt_client_config_t;

/**
 * Topic definition struct
 */
typedef struct topic_t {
    const char *filter;  /*!< Topic filter  to subscribe */
    int qos;             /*!< Max QoS level of the subscription */
} esp_mqtt_topic_t;

/**
 * @brief Creates *MQTT* client handle based on the configuration
 * @return mqtt_client_handle if successfully created, NULL on error
 */
esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t *config);

/**
 * @brief Sets *MQTT* connection URI (overrides the URI configured in esp_mqtt_client_init)
 * @return ESP_FAIL if URI parse error, ESP_OK on success
 */
esp_err_t esp_mqtt_client_set_uri(esp_mqtt_client_handle_t client, const char *uri);

/**
 * @brief Starts *MQTT* client with already created client handle
 * @return ESP_OK on success, ESP_ERR_INVALID_ARG on wrong initialization, ESP_FAIL on other error
 */
esp_err_t esp_mqtt_client_start(esp_mqtt_client_handle_t client);

/**
 * @brief Stops *MQTT* client tasks (cannot be called from the *MQTT* event handler)
 * @return ESP_OK on success, ESP_ERR_INVALID_ARG on wrong initialization, ESP_FAIL if client is in invalid state
 */
esp_err_t esp_mqtt_client_stop(esp_mqtt_client_handle_t client);

#ifdef __cplusplus

#define esp_mqtt_client_subscribe esp_mqtt_client_subscribe_single

#else
/**
 * @brief Convenience macro to select subscribe function to use.
 *
 * @param client_handle    *MQTT* client handle
 * @param topic_type Needs to be char* for single subscription or `esp_mqtt_topic_t` for multiple topics
 * @param qos_or_size It's either a qos when subscribing to a single topic or the size of the subscription array when subscribing to multiple topics.
 *
 * @return message_id of the subscribe message on success, -1 on failure, -2 in case of full outbox.
 */
#define esp_mqtt_client_subscribe(client_handle, topic_type, qos_or_size) _Generic((topic_type), \
      char *: esp_mqtt_client_subscribe_single, \
      const char *: esp_mqtt_client_subscribe_single, \
      esp_mqtt_topic_t*: esp_mqtt_client_subscribe_multiple \
    )(client_handle, topic_type, qos_or_size)

#endif /* __cplusplus*/

/**
 * @brief Subscribe the client to defined topic with defined qos (client must be connected)
 * @return message_id of the subscribe message on success, -1 on failure, -2 in case of full outbox.
 */
int esp_mqtt_client_subscribe_single(esp_mqtt_client_handle_t client, const char *topic, int qos);

/**
 * @brief Subscribe the client to a list of defined topics with defined qos (client must be connected)
 * @return message_id of the subscribe message on success, -1 on failure, -2 in case of full outbox.
 */
int esp_mqtt_client_subscribe_multiple(esp_mqtt_client_handle_t client, const esp_mqtt_topic_t *topic_list, int size);

/**
 * @brief Unsubscribe the client from defined topic (client must be connected)
 * @return message_id of the subscribe message on success, -1 on failure
 */
int esp_mqtt_client_unsubscribe(esp_mqtt_client_handle_t client, const char *topic);

/**
 * @brief Client to send a publish message to the broker
 *
 * - Client doesn't have to be connected for this API to work, enqueueing the messages with qos>1
 *   (returning -1 for all the qos=0 messages if disconnected).
 *
 * @param len       data length, if set to 0, length is calculated from payload string
 * @return message_id of the publish message (for QoS 0 message_id will always be zero) on success.
 *         -1 on failure, -2 in case of full outbox.
 */
int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len, int qos, int retain);

/**
 * @brief Enqueue a message to the outbox, to be sent later by the MQTT task.
 * @param store     if true, all messages are enqueued; otherwise only QoS 1 and QoS 2 are enqueued
 * @return message_id if queued successfully, -1 on failure, -2 in case of full outbox.
 */
int esp_mqtt_client_enqueue(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len, int qos, int retain, bool store);

/**
 * @brief Destroys the client handle (cannot be called from the *MQTT* event handler)
 * @return ESP_OK, ESP_ERR_INVALID_ARG on wrong initialization
 */
esp_err_t esp_mqtt_client_destroy(esp_mqtt_client_handle_t client);

/**
 * @brief Set configuration structure, typically used when updating the config (i.e. on "before_connect" event)
 * @return ESP_ERR_NO_MEM if failed to allocate, ESP_ERR_INVALID_ARG if conflicts on transport configuration, ESP_OK on success
 */
esp_err_t esp_mqtt_set_config(esp_mqtt_client_handle_t client, const esp_mqtt_client_config_t *config);

/**
 * @brief Registers *MQTT* event. The handler is called as
 *        event_handler(event_handler_arg, MQTT_EVENTS, event_id, esp_mqtt_event_handle_t).
 * @return ESP_ERR_NO_MEM if failed to allocate, ESP_ERR_INVALID_ARG on wrong initialization, ESP_OK on success
 */
esp_err_t esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t event, esp_event_handler_t event_handler, void *event_handler_arg);

/**
 * @brief Get outbox size
 * @return outbox size, 0 on wrong initialization
 */
int esp_mqtt_client_get_outbox_size(esp_mqtt_client_handle_t client);

/**
 * @brief Get a transport from the scheme ("mqtt" or "mqtts"; NULL: the custom transport, never set on the
 *        host port, so NULL).
 */
esp_transport_handle_t esp_mqtt_client_get_transport(esp_mqtt_client_handle_t client, char *transport_scheme);

#ifdef __cplusplus
}
#endif //__cplusplus

#endif
