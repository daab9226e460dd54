/*
 * The virtual board's network gate: every TCP socket the app connects (libcurl's, libmosquitto's, its
 * own) crosses the virtual access point, and this gate is where the Wi-Fi driver (esp_wifi.c) says
 * whether frames get through. Private to the host port: firmware code never includes this.
 *
 * The gate works below the client libraries, on the libc calls they make (host_net_gate.c defines
 * connect, send, recv, read, write, poll, pselect, getsockopt and close in the executable, which the
 * dynamic linker binds ahead of libc's), so one gate covers every transport and none of them changes.
 * While the link is up every call goes straight to libc: nothing is observable.
 */
#pragma once

#include <stdbool.h>

typedef enum {
    HOST_NET_UP,      /* associated with an IP: sockets work */
    HOST_NET_STALLED, /* the AP is gone but the station has not noticed yet (beacon timeout pending):
                         frames are lost, so connections stall and data sent waits, as lwIP's
                         retransmission queue holds it */
    HOST_NET_DOWN,    /* netif down after WIFI_EVENT_STA_DISCONNECTED (esp_netif_action_disconnected):
                         established connections were aborted, connect() fails at once */
} host_net_state_t;

/* Moves the gate to state (from the Wi-Fi driver's task). Leaving STALLED for UP delivers what the app
   sent meanwhile and completes connects it started; entering DOWN aborts every connection. */
void host_net_set_state(host_net_state_t state);
host_net_state_t host_net_state(void);
/* Waits up to timeout_ms for the gate to be in state (for port_check: the board's AP file is followed
   asynchronously, so a test learns here that the driver has seen a change). */
bool host_net_wait_state(host_net_state_t state, int timeout_ms);
