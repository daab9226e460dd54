/*
 * SPDX-FileCopyrightText: 2017-2024 Espressif Systems (Shanghai) CO LTD
 *
 * SPDX-License-Identifier: Apache-2.0
 */
/*
 * Host port of esp_mesh.h (components/esp_wifi/include, ESP-IDF v5.5.5): its constants, error codes, event
 * ids and types are copied unchanged from that header (so every value is the chip's); the functions below
 * are the subset the host port implements (src/esp_mesh.c), with v5.5.5's signatures. Anything else of
 * ESP-WIFI-MESH (power save, groups, channel switch, IE crypto, toDS sockets) is not declared, so an app
 * that calls it fails to build for the virtual board rather than misbehave.
 */
#ifndef __ESP_MESH_H__
#define __ESP_MESH_H__

#include "esp_err.h"
#include "esp_event.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "esp_mesh_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- from ESP-IDF v5.5.5 esp_mesh.h, unchanged (Constants ... Variable Declaration) ---- */
/*******************************************************
 *                Constants
 *******************************************************/
#define MESH_ROOT_LAYER                   (1)       /**< root layer value */
#define MESH_MTU                          (1500)    /**< max transmit unit(in bytes) */
#define MESH_MPS                          (1472)    /**< max payload size(in bytes) */
/**
 * @brief Mesh error code definition
 */
#define ESP_ERR_MESH_WIFI_NOT_START       (ESP_ERR_MESH_BASE + 1)    /**< Wi-Fi isn't started */
#define ESP_ERR_MESH_NOT_INIT             (ESP_ERR_MESH_BASE + 2)    /**< mesh isn't initialized */
#define ESP_ERR_MESH_NOT_CONFIG           (ESP_ERR_MESH_BASE + 3)    /**< mesh isn't configured */
#define ESP_ERR_MESH_NOT_START            (ESP_ERR_MESH_BASE + 4)    /**< mesh isn't started */
#define ESP_ERR_MESH_NOT_SUPPORT          (ESP_ERR_MESH_BASE + 5)    /**< not supported yet */
#define ESP_ERR_MESH_NOT_ALLOWED          (ESP_ERR_MESH_BASE + 6)    /**< operation is not allowed */
#define ESP_ERR_MESH_NO_MEMORY            (ESP_ERR_MESH_BASE + 7)    /**< out of memory */
#define ESP_ERR_MESH_ARGUMENT             (ESP_ERR_MESH_BASE + 8)    /**< illegal argument */
#define ESP_ERR_MESH_EXCEED_MTU           (ESP_ERR_MESH_BASE + 9)    /**< packet size exceeds MTU */
#define ESP_ERR_MESH_TIMEOUT              (ESP_ERR_MESH_BASE + 10)   /**< timeout */
#define ESP_ERR_MESH_DISCONNECTED         (ESP_ERR_MESH_BASE + 11)   /**< disconnected with parent on station interface */
#define ESP_ERR_MESH_QUEUE_FAIL           (ESP_ERR_MESH_BASE + 12)   /**< queue fail */
#define ESP_ERR_MESH_QUEUE_FULL           (ESP_ERR_MESH_BASE + 13)   /**< queue full */
#define ESP_ERR_MESH_NO_PARENT_FOUND      (ESP_ERR_MESH_BASE + 14)   /**< no parent found to join the mesh network */
#define ESP_ERR_MESH_NO_ROUTE_FOUND       (ESP_ERR_MESH_BASE + 15)   /**< no route found to forward the packet */
#define ESP_ERR_MESH_OPTION_NULL          (ESP_ERR_MESH_BASE + 16)   /**< no option found */
#define ESP_ERR_MESH_OPTION_UNKNOWN       (ESP_ERR_MESH_BASE + 17)   /**< unknown option */
#define ESP_ERR_MESH_XON_NO_WINDOW        (ESP_ERR_MESH_BASE + 18)   /**< no window for software flow control on upstream */
#define ESP_ERR_MESH_INTERFACE            (ESP_ERR_MESH_BASE + 19)   /**< low-level Wi-Fi interface error */
#define ESP_ERR_MESH_DISCARD_DUPLICATE    (ESP_ERR_MESH_BASE + 20)   /**< discard the packet due to the duplicate sequence number */
#define ESP_ERR_MESH_DISCARD              (ESP_ERR_MESH_BASE + 21)   /**< discard the packet */
#define ESP_ERR_MESH_VOTING               (ESP_ERR_MESH_BASE + 22)   /**< vote in progress */
#define ESP_ERR_MESH_XMIT                 (ESP_ERR_MESH_BASE + 23)   /**< TX fail, the tx state is a value other than timeout and disconnect */
#define ESP_ERR_MESH_QUEUE_READ           (ESP_ERR_MESH_BASE + 24)   /**< error in reading queue */
#define ESP_ERR_MESH_PS                   (ESP_ERR_MESH_BASE + 25)   /**< mesh PS is not specified as enable or disable */
#define ESP_ERR_MESH_RECV_RELEASE         (ESP_ERR_MESH_BASE + 26)   /**< release esp_mesh_recv_toDS */

/**
 * @brief Flags bitmap for esp_mesh_send() and esp_mesh_recv()
 */
#define MESH_DATA_ENC           (0x01)  /**< data encrypted (Unimplemented) */
#define MESH_DATA_P2P           (0x02)  /**< point-to-point delivery over the mesh network */
#define MESH_DATA_FROMDS        (0x04)  /**< receive from external IP network */
#define MESH_DATA_TODS          (0x08)  /**< identify this packet is target to external IP network */
#define MESH_DATA_NONBLOCK      (0x10)  /**< esp_mesh_send() non-block */
#define MESH_DATA_DROP          (0x20)  /**< in the situation of the root having been changed, identify this packet can be dropped by new root */
#define MESH_DATA_GROUP         (0x40)  /**< identify this packet is target to a group address */

/**
 * @brief Option definitions for esp_mesh_send() and esp_mesh_recv()
 */
#define MESH_OPT_SEND_GROUP     (7)     /**< data transmission by group; used with esp_mesh_send() and shall have payload */
#define MESH_OPT_RECV_DS_ADDR   (8)     /**< return a remote IP address; used with esp_mesh_send() and esp_mesh_recv() */

/**
 * @brief Flag of mesh networking IE
 */
#define MESH_ASSOC_FLAG_MAP_ASSOC           (0x01)     /**< Mesh AP doesn't detect children leave yet */
#define MESH_ASSOC_FLAG_VOTE_IN_PROGRESS    (0x02)     /**< station in vote, set when root vote start, clear when connect to router or when root switch*/
#define MESH_ASSOC_FLAG_STA_VOTED           (0x04)     /**< station vote done, set when connect to router */
#define MESH_ASSOC_FLAG_NETWORK_FREE        (0x08)     /**< no root in current network */
#define MESH_ASSOC_FLAG_STA_VOTE_EXPIRE     (0x10)     /**< the voted address is expired, means the voted device lose the chance to be root */
#define MESH_ASSOC_FLAG_ROOTS_FOUND         (0x20)     /**< roots conflict is found, means that there are at least two roots in the mesh network */
#define MESH_ASSOC_FLAG_ROOT_FIXED          (0x40)     /**< the root is fixed in the mesh network */

/**
 * @brief Mesh PS (Power Save) duty cycle type
 */
#define MESH_PS_DEVICE_DUTY_REQUEST         (0x01)    /**< requests to join a network PS without specifying a device duty cycle. After the
                                                           device joins the network, a network duty cycle will be provided by the network */
#define MESH_PS_DEVICE_DUTY_DEMAND          (0x04)    /**< requests to join a network PS and specifies a demanded device duty cycle */
#define MESH_PS_NETWORK_DUTY_MASTER         (0x80)    /**< indicates the device is the NWK-DUTY-MASTER (network duty cycle master) */

/**
 * @brief Mesh PS (Power Save) duty cycle applied rule
 */
#define MESH_PS_NETWORK_DUTY_APPLIED_ENTIRE         (0)    /** the specified network duty is applied to the entire network <*/
#define MESH_PS_NETWORK_DUTY_APPLIED_UPLINK         (1)    /** the specified network duty is applied to only the up-link path <*/

/*******************************************************
 *                Enumerations
 *******************************************************/
/**
 * @brief Enumerated list of mesh event id
 */
typedef enum {
    MESH_EVENT_STARTED,                 /**< mesh is started */
    MESH_EVENT_STOPPED,                 /**< mesh is stopped */
    MESH_EVENT_CHANNEL_SWITCH,          /**< channel switch */
    MESH_EVENT_CHILD_CONNECTED,         /**< a child is connected on softAP interface */
    MESH_EVENT_CHILD_DISCONNECTED,      /**< a child is disconnected on softAP interface */
    MESH_EVENT_ROUTING_TABLE_ADD,       /**< routing table is changed by adding newly joined children */
    MESH_EVENT_ROUTING_TABLE_REMOVE,    /**< routing table is changed by removing leave children */
    MESH_EVENT_PARENT_CONNECTED,        /**< parent is connected on station interface */
    MESH_EVENT_PARENT_DISCONNECTED,     /**< parent is disconnected on station interface */
    MESH_EVENT_NO_PARENT_FOUND,         /**< no parent found */
    MESH_EVENT_LAYER_CHANGE,            /**< layer changes over the mesh network */
    MESH_EVENT_TODS_STATE,              /**< state represents whether the root is able to access external IP network.
                                             This state is a manual event that needs to be triggered with esp_mesh_post_toDS_state(). */
    MESH_EVENT_VOTE_STARTED,            /**< the process of voting a new root is started either by children or by the root */
    MESH_EVENT_VOTE_STOPPED,            /**< the process of voting a new root is stopped */
    MESH_EVENT_ROOT_ADDRESS,            /**< the root address is obtained. It is posted by mesh stack automatically. */
    MESH_EVENT_ROOT_SWITCH_REQ,         /**< root switch request sent from a new voted root candidate */
    MESH_EVENT_ROOT_SWITCH_ACK,         /**< root switch acknowledgment responds the above request sent from current root */
    MESH_EVENT_ROOT_ASKED_YIELD,        /**< the root is asked yield by a more powerful existing root. If self organized is disabled
                                             and this device is specified to be a root by users, users should set a new parent
                                             for this device. if self organized is enabled, this device will find a new parent
                                             by itself, users could ignore this event. */
    MESH_EVENT_ROOT_FIXED,              /**< when devices join a network, if the setting of Fixed Root for one device is different
                                             from that of its parent, the device will update the setting the same as its parent's.
                                             Fixed Root Setting of each device is variable as that setting changes of the root. */
    MESH_EVENT_SCAN_DONE,               /**< if self-organized networking is disabled, user can call esp_wifi_scan_start() to trigger
                                             this event, and add the corresponding scan done handler in this event. */
    MESH_EVENT_NETWORK_STATE,           /**< network state, such as whether current mesh network has a root. */
    MESH_EVENT_STOP_RECONNECTION,       /**< the root stops reconnecting to the router and non-root devices stop reconnecting to their parents. */
    MESH_EVENT_FIND_NETWORK,            /**< when the channel field in mesh configuration is set to zero, mesh stack will perform a
                                             full channel scan to find a mesh network that can join, and return the channel value
                                             after finding it. */
    MESH_EVENT_ROUTER_SWITCH,           /**< if users specify BSSID of the router in mesh configuration, when the root connects to another
                                             router with the same SSID, this event will be posted and the new router information is attached. */
    MESH_EVENT_PS_PARENT_DUTY,          /**< parent duty */
    MESH_EVENT_PS_CHILD_DUTY,           /**< child duty */
    MESH_EVENT_PS_DEVICE_DUTY,          /**< device duty */
    MESH_EVENT_MAX,
} mesh_event_id_t;

/** @brief ESP-MESH event base declaration */
ESP_EVENT_DECLARE_BASE(MESH_EVENT);

/**
 * @brief Device type
 */
typedef enum {
    MESH_IDLE,    /**< hasn't joined the mesh network yet */
    MESH_ROOT,    /**< the only sink of the mesh network. Has the ability to access external IP network */
    MESH_NODE,    /**< intermediate device. Has the ability to forward packets over the mesh network */
    MESH_LEAF,    /**< has no forwarding ability */
    MESH_STA,     /**< connect to router with a standalone Wi-Fi station mode, no network expansion capability */
} mesh_type_t;

/**
 * @brief Protocol of transmitted application data
 */
typedef enum {
    MESH_PROTO_BIN,     /**< binary */
    MESH_PROTO_HTTP,    /**< HTTP protocol */
    MESH_PROTO_JSON,    /**< JSON format */
    MESH_PROTO_MQTT,    /**< MQTT protocol */
    MESH_PROTO_AP,      /**< IP network mesh communication of node's AP interface */
    MESH_PROTO_STA,     /**< IP network mesh communication of node's STA interface */
} mesh_proto_t;

/**
 * @brief For reliable transmission, mesh stack provides three type of services
 */
typedef enum {
    MESH_TOS_P2P,    /**< provide P2P (point-to-point) retransmission on mesh stack by default */
    MESH_TOS_E2E,    /**< provide E2E (end-to-end) retransmission on mesh stack (Unimplemented) */
    MESH_TOS_DEF,    /**< no retransmission on mesh stack */
} mesh_tos_t;

/**
 * @brief Vote reason
 */
typedef enum {
    MESH_VOTE_REASON_ROOT_INITIATED = 1,    /**< vote is initiated by the root */
    MESH_VOTE_REASON_CHILD_INITIATED,       /**< vote is initiated by children */
} mesh_vote_reason_t;

/**
 * @brief Mesh disconnect reason code
 */
typedef enum {
    MESH_REASON_CYCLIC = 100,               /**< cyclic is detected */
    MESH_REASON_PARENT_IDLE,                /**< parent is idle */
    MESH_REASON_LEAF,                       /**< the connected device is changed to a leaf */
    MESH_REASON_DIFF_ID,                    /**< in different mesh ID */
    MESH_REASON_ROOTS,                      /**< root conflict is detected */
    MESH_REASON_PARENT_STOPPED,             /**< parent has stopped the mesh */
    MESH_REASON_SCAN_FAIL,                  /**< scan fail */
    MESH_REASON_IE_UNKNOWN,                 /**< unknown IE */
    MESH_REASON_WAIVE_ROOT,                 /**< waive root */
    MESH_REASON_PARENT_WORSE,               /**< parent with very poor RSSI */
    MESH_REASON_EMPTY_PASSWORD,             /**< use an empty password to connect to an encrypted parent */
    MESH_REASON_PARENT_UNENCRYPTED,         /**< connect to an unencrypted parent/router */
} mesh_disconnect_reason_t;

/**
 * @brief Mesh topology
 */
typedef enum {
    MESH_TOPO_TREE,                         /**< tree topology */
    MESH_TOPO_CHAIN,                        /**< chain topology */
} esp_mesh_topology_t;

/*******************************************************
 *                Structures
 *******************************************************/
/**
 * @brief IP address and port
 */
typedef struct {
    esp_ip4_addr_t ip4;    /**< IP address */
    uint16_t port;     /**< port */
} __attribute__((packed)) mip_t;

/**
 * @brief Mesh address
 */
typedef union {
    uint8_t addr[6];    /**< mac address */
    mip_t mip;          /**< mip address */
} mesh_addr_t;

/**
 * @brief Channel switch information
 */
typedef struct {
    uint8_t channel;    /**< new channel */
} mesh_event_channel_switch_t;

/**
 * @brief Parent connected information
 */
typedef struct {
    wifi_event_sta_connected_t connected; /**< parent information, same as Wi-Fi event SYSTEM_EVENT_STA_CONNECTED does */
    uint16_t self_layer;                  /**< layer */
    uint8_t duty;                         /**< parent duty */
} mesh_event_connected_t;

/**
 * @brief No parent found information
 */
typedef struct {
    int scan_times;    /**< scan times being through */
} mesh_event_no_parent_found_t;

/**
 * @brief Layer change information
 */
typedef struct {
    uint16_t new_layer; /**< new layer */
} mesh_event_layer_change_t;

/**
 * @brief The reachability of the root to a DS (distribute system)
 */
typedef enum {
    MESH_TODS_UNREACHABLE,    /**< the root isn't able to access external IP network */
    MESH_TODS_REACHABLE,      /**< the root is able to access external IP network */
} mesh_event_toDS_state_t;

/**
 * @brief vote started information
 */
typedef struct {
    int reason;             /**< vote reason, vote could be initiated by children or by the root itself */
    int attempts;           /**< max vote attempts before stopped */
    mesh_addr_t rc_addr;    /**< root address specified by users via API esp_mesh_waive_root() */
} mesh_event_vote_started_t;

/**
 * @brief find a mesh network that this device can join
 */
typedef struct {
    uint8_t channel;            /**< channel number of the new found network */
    uint8_t router_bssid[6];    /**< router BSSID */
} mesh_event_find_network_t;

/**
 * @brief Root address
 */
typedef mesh_addr_t mesh_event_root_address_t;

/**
 * @brief Parent disconnected information
 */
typedef wifi_event_sta_disconnected_t mesh_event_disconnected_t;

/**
 * @brief Child connected information
 */
typedef wifi_event_ap_staconnected_t mesh_event_child_connected_t;

/**
 * @brief Child disconnected information
 */
typedef wifi_event_ap_stadisconnected_t mesh_event_child_disconnected_t;

/**
 * @brief Root switch request information
 */
typedef struct {
    int reason;             /**< root switch reason, generally root switch is initialized by users via API esp_mesh_waive_root() */
    mesh_addr_t rc_addr;    /**< the address of root switch requester */
} mesh_event_root_switch_req_t;

/**
 * @brief Other powerful root address
 */
typedef struct {
    int8_t rssi;           /**< rssi with router */
    uint16_t capacity;     /**< the number of devices in current network */
    uint8_t addr[6];       /**< other powerful root address */
} mesh_event_root_conflict_t;

/**
 * @brief Routing table change
 */
typedef struct {
    uint16_t rt_size_new;      /**< the new value */
    uint16_t rt_size_change;   /**< the changed value */
} mesh_event_routing_table_change_t;

/**
 * @brief Root fixed
 */
typedef struct {
    bool is_fixed;     /**< status */
} mesh_event_root_fixed_t;

/**
 * @brief Scan done　event information
 */
typedef struct {
    uint8_t  number;     /**< the number of APs scanned */
} mesh_event_scan_done_t;

/**
 * @brief Network state information
 */
typedef struct {
    bool is_rootless;     /**< whether current mesh network has a root */
} mesh_event_network_state_t;

/**
 * @brief New router information
 */
typedef wifi_event_sta_connected_t mesh_event_router_switch_t;

/**
 * @brief PS duty information
 */
typedef struct {
    uint8_t duty;                                 /**< parent or child duty */
    mesh_event_child_connected_t child_connected; /**< child info */
} mesh_event_ps_duty_t;

/**
 * @brief Mesh event information
 */
typedef union {
    mesh_event_channel_switch_t channel_switch;            /**< channel switch */
    mesh_event_child_connected_t child_connected;          /**< child connected */
    mesh_event_child_disconnected_t child_disconnected;    /**< child disconnected */
    mesh_event_routing_table_change_t routing_table;       /**< routing table change */
    mesh_event_connected_t connected;                      /**< parent connected */
    mesh_event_disconnected_t disconnected;                /**< parent disconnected */
    mesh_event_no_parent_found_t no_parent;                /**< no parent found */
    mesh_event_layer_change_t layer_change;                /**< layer change */
    mesh_event_toDS_state_t toDS_state;                    /**< toDS state, devices shall check this state firstly before trying to send packets to
                                                                external IP network. This state indicates right now whether the root is capable of sending
                                                                packets out. If not, devices had better to wait until this state changes to be
                                                                MESH_TODS_REACHABLE. */
    mesh_event_vote_started_t vote_started;                /**< vote started */
    mesh_event_root_address_t root_addr;                   /**< root address */
    mesh_event_root_switch_req_t switch_req;               /**< root switch request */
    mesh_event_root_conflict_t root_conflict;              /**< other powerful root */
    mesh_event_root_fixed_t root_fixed;                    /**< fixed root */
    mesh_event_scan_done_t scan_done;                      /**< scan done */
    mesh_event_network_state_t network_state;              /**< network state, such as whether current mesh network has a root. */
    mesh_event_find_network_t find_network;                /**< network found that can join */
    mesh_event_router_switch_t router_switch;              /**< new router information */
    mesh_event_ps_duty_t ps_duty;                          /**< PS duty information */
} mesh_event_info_t;

/**
 * @brief Mesh option
 */
typedef struct {
    uint8_t type;    /**< option type */
    uint16_t len;    /**< option length */
    uint8_t *val;    /**< option value */
} __attribute__((packed)) mesh_opt_t;

/**
 * @brief Mesh data for esp_mesh_send() and esp_mesh_recv()
 */
typedef struct {
    uint8_t *data;         /**< data */
    uint16_t size;         /**< data size */
    mesh_proto_t proto;    /**< data protocol */
    mesh_tos_t tos;        /**< data type of service */
} mesh_data_t;

/**
 * @brief Router configuration
 */
typedef struct {
    uint8_t ssid[32];             /**< SSID */
    uint8_t ssid_len;             /**< length of SSID */
    uint8_t bssid[6];             /**< BSSID, if this value is specified, users should also specify "allow_router_switch". */
    uint8_t password[64];         /**< password */
    bool allow_router_switch;     /**< if the BSSID is specified and this value is also set, when the router of this specified BSSID
                                       fails to be found after "fail" (mesh_attempts_t) times, the whole network is allowed to switch
                                       to another router with the same SSID. The new router might also be on a different channel.
                                       The default value is false.
                                       There is a risk that if the password is different between the new switched router and the previous
                                       one, the mesh network could be established but the root will never connect to the new switched router. */
} mesh_router_t;

/**
 * @brief Mesh softAP configuration
 */
typedef struct {
    uint8_t password[64];              /**< mesh softAP password */
    /**
     * max number of stations allowed to connect in, default 6, max 10
     * = max_connection + nonmesh_max_connection
     */
    uint8_t max_connection;            /**< max mesh connections */
    uint8_t nonmesh_max_connection;    /**< max non-mesh connections */
} mesh_ap_cfg_t;

/**
 * @brief Mesh initialization configuration
 */
typedef struct {
    uint8_t channel;                            /**< channel, the mesh network on */
    bool allow_channel_switch;                  /**< if this value is set, when "fail" (mesh_attempts_t) times is reached, device will change to
                                                     a full channel scan for a network that could join. The default value is false. */
    mesh_addr_t mesh_id;                        /**< mesh network identification */
    mesh_router_t router;                       /**< router configuration */
    mesh_ap_cfg_t mesh_ap;                      /**< mesh softAP configuration */
    const mesh_crypto_funcs_t *crypto_funcs;    /**< crypto functions */
} mesh_cfg_t;

/**
 * @brief Vote address configuration
 */
typedef union {
    int attempts;           /**< max vote attempts before a new root is elected automatically by mesh network. (min:15, 15 by default) */
    mesh_addr_t rc_addr;    /**< a new root address specified by users for API esp_mesh_waive_root() */
} mesh_rc_config_t;

/**
 * @brief Vote
 */
typedef struct {
    float percentage;           /**< vote percentage threshold for approval of being a root */
    bool is_rc_specified;       /**< if true, rc_addr shall be specified (Unimplemented).
                                     if false, attempts value shall be specified to make network start root election. */
    mesh_rc_config_t config;    /**< vote address configuration */
} mesh_vote_t;

/**
 * @brief The number of packets pending in the queue waiting to be sent by the mesh stack
 */
typedef struct {
    int to_parent;        /**< to parent queue */
    int to_parent_p2p;    /**< to parent (P2P) queue */
    int to_child;         /**< to child queue */
    int to_child_p2p;     /**< to child (P2P) queue */
    int mgmt;             /**< management queue */
    int broadcast;        /**< broadcast and multicast queue */
} mesh_tx_pending_t;

/**
 * @brief The number of packets available in the queue waiting to be received by applications
 */
typedef struct {
    int toDS;      /**< to external DS */
    int toSelf;    /**< to self */
} mesh_rx_pending_t;

/*******************************************************
 *                Variable Declaration
 *******************************************************/
/* mesh IE crypto callback function */
extern const mesh_crypto_funcs_t g_wifi_default_mesh_crypto_funcs;

#define MESH_INIT_CONFIG_DEFAULT() { \
    .crypto_funcs = &g_wifi_default_mesh_crypto_funcs, \
}


/* ---- the functions the host port implements (src/esp_mesh.c); signatures as in v5.5.5 ---- */
esp_err_t esp_mesh_init(void);
esp_err_t esp_mesh_deinit(void);
esp_err_t esp_mesh_start(void);
esp_err_t esp_mesh_stop(void);
esp_err_t esp_mesh_send(const mesh_addr_t *to, const mesh_data_t *data,
                        int flag, const mesh_opt_t opt[],  int opt_count);
esp_err_t esp_mesh_recv(mesh_addr_t *from, mesh_data_t *data, int timeout_ms,
                        int *flag, mesh_opt_t opt[], int opt_count);
esp_err_t esp_mesh_set_config(const mesh_cfg_t *config);
esp_err_t esp_mesh_get_config(mesh_cfg_t *config);
esp_err_t esp_mesh_set_router(const mesh_router_t *router);
esp_err_t esp_mesh_get_router(mesh_router_t *router);
esp_err_t esp_mesh_set_id(const mesh_addr_t *id);
esp_err_t esp_mesh_get_id(mesh_addr_t *id);
esp_err_t esp_mesh_set_type(mesh_type_t type);
mesh_type_t esp_mesh_get_type(void);
esp_err_t esp_mesh_set_max_layer(int max_layer);
int esp_mesh_get_max_layer(void);
esp_err_t esp_mesh_set_ap_password(const uint8_t *pwd, int len);
esp_err_t esp_mesh_set_ap_authmode(wifi_auth_mode_t authmode);
wifi_auth_mode_t esp_mesh_get_ap_authmode(void);
esp_err_t esp_mesh_set_ap_connections(int connections);
int esp_mesh_get_ap_connections(void);
int esp_mesh_get_layer(void);
esp_err_t esp_mesh_get_parent_bssid(mesh_addr_t *bssid);
bool esp_mesh_is_root(void);
esp_err_t esp_mesh_set_self_organized(bool enable, bool select_parent);
bool esp_mesh_get_self_organized(void);
esp_err_t esp_mesh_set_vote_percentage(float percentage);
float esp_mesh_get_vote_percentage(void);
esp_err_t esp_mesh_set_ap_assoc_expire(int seconds);
int esp_mesh_get_ap_assoc_expire(void);
int esp_mesh_get_total_node_num(void);
int esp_mesh_get_routing_table_size(void);
esp_err_t esp_mesh_get_routing_table(mesh_addr_t *mac, int len, int *size);
esp_err_t esp_mesh_post_toDS_state(bool reachable);
esp_err_t esp_mesh_get_tx_pending(mesh_tx_pending_t *pending);
esp_err_t esp_mesh_get_rx_pending(mesh_rx_pending_t *pending);
esp_err_t esp_mesh_set_xon_qsize(int qsize);
int esp_mesh_get_xon_qsize(void);
esp_err_t esp_mesh_fix_root(bool enable);
bool esp_mesh_is_root_fixed(void);
esp_err_t esp_mesh_set_root_healing_delay(int delay_ms);
int esp_mesh_get_root_healing_delay(void);
esp_err_t esp_mesh_set_topology(esp_mesh_topology_t topo);
esp_mesh_topology_t esp_mesh_get_topology(void);
esp_err_t esp_mesh_enable_ps(void);
esp_err_t esp_mesh_disable_ps(void);
bool esp_mesh_is_ps_enabled(void);

#ifdef __cplusplus
}
#endif

#endif /* __ESP_MESH_H__ */
