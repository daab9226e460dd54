/*
 * The network gate (host_net_gate.h): the virtual access point between the app's TCP sockets and the
 * host's network. No ESP-IDF file of its own: what it reproduces is lwIP's (esp-lwip 2.1.3-esp) and
 * esp_netif's behaviour when Wi-Fi goes away, seen from the socket API.
 *
 * It defines connect, send, sendto, recv, recvfrom, read, write, poll, ppoll, pselect, getsockopt and
 * close in the executable (exported to the dynamic symbol table, CMakeLists.txt), so libcurl's,
 * libmosquitto's and OpenSSL's calls reach these first; each hands over to libc's (dlsym RTLD_NEXT). A
 * socket is gated once the app connect()s it (AF_INET/AF_INET6, SOCK_STREAM); anything else, and every
 * socket while the link is up, goes straight to libc with one atomic load on the way.
 *
 *   STALLED (the AP vanished, beacon timeout still pending): frames are lost. recv/read see no data
 *       (EAGAIN on a non-blocking socket, a blocking one waits), poll() does not report it readable; send
 *       and write take up to CONFIG_LWIP_TCP_SND_BUF_DEFAULT (5760) bytes into a held buffer, as lwIP's
 *       send buffer and retransmission queue do, then EAGAIN / wait; a non-blocking connect() returns
 *       EINPROGRESS and its SYN waits. Back to UP: the held bytes go out, in order, and the waiting
 *       connects are made; what the peer did meanwhile (data, FIN, RST) then arrives, as retransmission
 *       would deliver it.
 *   DOWN (esp_netif_down after WIFI_EVENT_STA_DISCONNECTED): esp_netif_down_api() sets the netif's
 *       address to 0.0.0.0, and lwIP's tcp_netif_ip_addr_changed() tcp_abort()s every PCB bound to the
 *       old address: every gated socket then fails with ECONNABORTED (ERR_ABRT), poll() reports it
 *       readable with POLLERR, SO_ERROR is ECONNABORTED; held data is dropped. A new connect() fails at
 *       once with EHOSTUNREACH (ip4_route() finds no netif that is up: ERR_RTE).
 *   A socket the app closes while the link is not up is really closed when it comes back: with a FIN
 *       after its held data if it was only stalled, with an RST if it was aborted (the peer hears of an
 *       aborted connection only once frames get through again). An aborted socket closed later is
 *       closed with an RST too.
 *
 * Known differences from the chip: no retransmission timers (a stalled connection never times out in
 * the gate: lwIP would abort it after CONFIG_LWIP_TCP_MAXRTX retransmissions, minutes at the default
 * RTO; the beacon timeout ends a stall long before), so a connect or a send never fails while STALLED;
 * name resolution (getaddrinfo) is not gated, nor UDP, sendmsg/recvmsg, readv/writev or select() (the
 * libraries the port uses do not call them on TCP sockets); descriptors from 1024 up are not gated; the
 * peer's RST for an aborted connection is sent when the link is back up, not when the peer's next
 * segment would reach the device.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host_net_gate.h"
#include "host_time.h"

#define GATE_MAX_FDS 1024
#define GATE_SND_BUF 5760     /* CONFIG_LWIP_TCP_SND_BUF_DEFAULT: what send() takes before it blocks */
#define GATE_FLUSH_MS 1000    /* longest wait for the kernel to take the held bytes back at UP */
#define GATE_NO_WAKE_SLICE_MS 100 /* poll slices if no wake pipe could be made (out of descriptors) */

typedef struct {
    bool tracked;    /* a TCP socket the app connect()ed and has not closed */
    bool pending;    /* connect() made while STALLED: the real one waits for UP */
    bool closed;     /* closed by the app while the link was not up: the real close waits for UP */
    bool reset;      /* ... and ends with an RST */
    int error;       /* aborted: every call fails with this errno */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    size_t held;     /* bytes sent while STALLED */
    unsigned char *hold;
} gate_fd_t;

/* Woken waiters: a pipe whose write end is closed when the state changes (readable for every waiter,
   however many), replaced by a fresh one; the old read end goes once its last waiter has left. */
typedef struct {
    int rd;
    int wr;
    int users;
    bool retired;
} gate_wake_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_changed = PTHREAD_COND_INITIALIZER;
static host_net_state_t s_state = HOST_NET_UP;
static atomic_bool s_active; /* false: UP and no socket needs the gate, every call goes to libc */
static gate_fd_t s_fds[GATE_MAX_FDS];
static gate_wake_t *s_wake;

static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static int (*real_close)(int);

static pthread_once_t s_resolve_once = PTHREAD_ONCE_INIT;

static void resolve_libc(void)
{
    real_connect = dlsym(RTLD_NEXT, "connect");
    real_send = dlsym(RTLD_NEXT, "send");
    real_sendto = dlsym(RTLD_NEXT, "sendto");
    real_recv = dlsym(RTLD_NEXT, "recv");
    real_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
    real_read = dlsym(RTLD_NEXT, "read");
    real_write = dlsym(RTLD_NEXT, "write");
    real_poll = dlsym(RTLD_NEXT, "poll");
    real_ppoll = dlsym(RTLD_NEXT, "ppoll");
    real_pselect = dlsym(RTLD_NEXT, "pselect");
    real_getsockopt = dlsym(RTLD_NEXT, "getsockopt");
    real_close = dlsym(RTLD_NEXT, "close");
    if (!real_connect || !real_send || !real_sendto || !real_recv || !real_recvfrom || !real_read ||
            !real_write || !real_poll || !real_ppoll || !real_pselect || !real_getsockopt || !real_close) {
        abort(); /* cannot happen with glibc; nothing could work without them */
    }
}

/* Every wrapper starts here: libc's functions, and whether the gate has anything to do. */
static inline bool gate_active(void)
{
    pthread_once(&s_resolve_once, resolve_libc);
    return atomic_load_explicit(&s_active, memory_order_acquire);
}

static gate_fd_t *entry(int fd)
{
    return fd >= 0 && fd < GATE_MAX_FDS ? &s_fds[fd] : NULL;
}

/* With s_lock held. */
static void update_active(void)
{
    bool active = s_state != HOST_NET_UP;
    for (int fd = 0; !active && fd < GATE_MAX_FDS; fd++) {
        const gate_fd_t *e = &s_fds[fd];
        active = e->pending || e->closed || (e->tracked && e->error != 0);
    }
    atomic_store_explicit(&s_active, active, memory_order_release);
}

static void clear_entry(gate_fd_t *e)
{
    free(e->hold);
    memset(e, 0, sizeof(*e));
}

static bool nonblocking(int fd, int flags)
{
    if (flags & MSG_DONTWAIT) {
        return true;
    }
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static void reset_on_close(int fd)
{
    const struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------- state changes */

/* With s_lock held: the bytes held while STALLED go out now (the kernel buffer takes 5760 bytes at once;
   the wait is for a peer that stopped reading). A peer that closed meanwhile makes send() fail: the
   socket itself then reports it to the app's next call, as lwIP would after the retransmission. */
static void flush_held(int fd, gate_fd_t *e)
{
    size_t done = 0;
    int64_t deadline = now_ns() + (int64_t)GATE_FLUSH_MS * 1000000;
    while (done < e->held) {
        ssize_t n = real_send(fd, e->hold + done, e->held - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            int left_ms = (int)((deadline - now_ns()) / 1000000);
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (left_ms > 0 && real_poll(&p, 1, left_ms) > 0) {
                continue;
            }
        }
        break;
    }
    e->held = 0;
}

static gate_wake_t *new_wake(void)
{
    gate_wake_t *w = calloc(1, sizeof(*w));
    int fds[2];
    if (w == NULL || pipe2(fds, O_CLOEXEC) != 0) {
        free(w);
        return NULL;
    }
    w->rd = fds[0];
    w->wr = fds[1];
    return w;
}

/* With s_lock held. */
static void release_wake(gate_wake_t *w)
{
    if (w != NULL && --w->users == 0 && w->retired) {
        real_close(w->rd);
        free(w);
    }
}

/* With s_lock held: every poll() waiting in the gate returns to look again. */
static void wake_waiters(void)
{
    gate_wake_t *old = s_wake;
    s_wake = new_wake();
    if (old != NULL) {
        real_close(old->wr);
        old->retired = true;
        old->users++;
        release_wake(old);
    }
    pthread_cond_broadcast(&s_changed);
}

void host_net_set_state(host_net_state_t next)
{
    pthread_once(&s_resolve_once, resolve_libc);
    pthread_mutex_lock(&s_lock);
    if (s_wake == NULL) {
        s_wake = new_wake();
    }
    if (next == s_state) {
        pthread_mutex_unlock(&s_lock);
        return;
    }
    for (int fd = 0; fd < GATE_MAX_FDS; fd++) {
        gate_fd_t *e = &s_fds[fd];
        if (!e->tracked && !e->closed) {
            continue;
        }
        if (next == HOST_NET_DOWN) {
            /* tcp_netif_ip_addr_changed(): every PCB on the lost address is aborted */
            if (e->tracked && e->error == 0) {
                e->error = ECONNABORTED;
            }
            e->pending = false;
            e->held = 0;
            e->reset = e->reset || e->closed;
        } else if (next == HOST_NET_UP) {
            if (e->pending) {
                e->pending = false;
                if (real_connect(fd, (const struct sockaddr *)&e->peer, e->peer_len) != 0 && errno != EINPROGRESS) {
                    e->error = errno;
                }
            }
            if (e->held > 0) {
                flush_held(fd, e);
            }
            if (e->closed) {
                if (e->reset) {
                    reset_on_close(fd);
                }
                real_close(fd);
                clear_entry(e);
            }
        }
    }
    s_state = next;
    update_active();
    wake_waiters();
    pthread_mutex_unlock(&s_lock);
}

host_net_state_t host_net_state(void)
{
    pthread_mutex_lock(&s_lock);
    host_net_state_t state = s_state;
    pthread_mutex_unlock(&s_lock);
    return state;
}

bool host_net_wait_state(host_net_state_t state, int timeout_ms)
{
    struct timespec until = host_deadline_ms(CLOCK_REALTIME, timeout_ms); /* the cond's default clock */
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    while (s_state != state && rc == 0) {
        rc = pthread_cond_timedwait(&s_changed, &s_lock, &until);
    }
    bool reached = s_state == state;
    pthread_mutex_unlock(&s_lock);
    return reached;
}

/* ---------------------------------------------------------------- the socket calls */

static bool is_tcp_inet(int fd, const struct sockaddr *addr)
{
    int type = 0;
    socklen_t len = sizeof(type);
    return addr != NULL && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
           real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    pthread_once(&s_resolve_once, resolve_libc);
    gate_fd_t *e = entry(fd);
    if (e == NULL || !is_tcp_inet(fd, addr) || len > sizeof(e->peer)) {
        return real_connect(fd, addr, len);
    }
    pthread_mutex_lock(&s_lock);
    clear_entry(e);
    e->tracked = true;
    for (;;) {
        if (e->error != 0) { /* a blocking connect aborted while it waited */
            int err = e->error;
            pthread_mutex_unlock(&s_lock);
            errno = err;
            return -1;
        }
        if (s_state == HOST_NET_UP) {
            pthread_mutex_unlock(&s_lock);
            return real_connect(fd, addr, len);
        }
        if (s_state == HOST_NET_DOWN) {
            pthread_mutex_unlock(&s_lock);
            errno = EHOSTUNREACH; /* ERR_RTE: no route while the netif is down */
            return -1;
        }
        if (nonblocking(fd, 0)) {
            memcpy(&e->peer, addr, len);
            e->peer_len = len;
            e->pending = true;
            update_active();
            pthread_mutex_unlock(&s_lock);
            errno = EINPROGRESS;
            return -1;
        }
        pthread_cond_wait(&s_changed, &s_lock);
    }
}

/* Before a receive on fd: 0 to go to libc, or -1 with errno set. */
static int gate_before_receive(int fd, int flags)
{
    pthread_mutex_lock(&s_lock);
    for (;;) {
        gate_fd_t *e = entry(fd);
        if (e == NULL || !e->tracked) {
            break;
        }
        if (e->error != 0) {
            int err = e->error;
            pthread_mutex_unlock(&s_lock);
            errno = err;
            return -1;
        }
        if (!e->pending && s_state != HOST_NET_STALLED) {
            break;
        }
        if (nonblocking(fd, flags)) {
            pthread_mutex_unlock(&s_lock);
            errno = EAGAIN;
            return -1;
        }
        pthread_cond_wait(&s_changed, &s_lock);
    }
    pthread_mutex_unlock(&s_lock);
    return 0;
}

/* A send on fd: true when the gate took it (*result set, errno set on -1), false to go to libc. */
static bool gate_send(int fd, const void *buf, size_t len, int flags, ssize_t *result)
{
    pthread_mutex_lock(&s_lock);
    for (;;) {
        gate_fd_t *e = entry(fd);
        if (e == NULL || !e->tracked) {
            break;
        }
        if (e->error != 0) {
            int err = e->error;
            pthread_mutex_unlock(&s_lock);
            *result = -1;
            errno = err;
            return true;
        }
        if (!e->pending && s_state != HOST_NET_STALLED) {
            break;
        }
        if (!e->pending && e->held < GATE_SND_BUF) {
            if (e->hold == NULL && (e->hold = malloc(GATE_SND_BUF)) == NULL) {
                pthread_mutex_unlock(&s_lock);
                *result = -1;
                errno = ENOMEM; /* ERR_MEM */
                return true;
            }
            size_t take = len < GATE_SND_BUF - e->held ? len : GATE_SND_BUF - e->held;
            memcpy(e->hold + e->held, buf, take);
            e->held += take;
            pthread_mutex_unlock(&s_lock);
            *result = (ssize_t)take;
            return true;
        }
        if (nonblocking(fd, flags)) {
            pthread_mutex_unlock(&s_lock);
            *result = -1;
            errno = EAGAIN;
            return true;
        }
        pthread_cond_wait(&s_changed, &s_lock);
    }
    pthread_mutex_unlock(&s_lock);
    return false;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    if (gate_active() && gate_before_receive(fd, flags) != 0) {
        return -1;
    }
    return real_recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *addr_len)
{
    if (gate_active() && gate_before_receive(fd, flags) != 0) {
        return -1;
    }
    return real_recvfrom(fd, buf, len, flags, addr, addr_len);
}

ssize_t read(int fd, void *buf, size_t len)
{
    if (gate_active() && gate_before_receive(fd, 0) != 0) {
        return -1;
    }
    return real_read(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    ssize_t result;
    if (gate_active() && gate_send(fd, buf, len, flags, &result)) {
        return result;
    }
    return real_send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t addr_len)
{
    ssize_t result;
    if (gate_active() && gate_send(fd, buf, len, flags, &result)) {
        return result;
    }
    return real_sendto(fd, buf, len, flags, addr, addr_len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    ssize_t result;
    if (gate_active() && gate_send(fd, buf, len, 0, &result)) {
        return result;
    }
    return real_write(fd, buf, len);
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
    if (gate_active() && level == SOL_SOCKET && name == SO_ERROR && value != NULL && len != NULL &&
            *len >= sizeof(int)) {
        pthread_mutex_lock(&s_lock);
        gate_fd_t *e = entry(fd);
        if (e != NULL && e->tracked && (e->pending || e->error != 0)) {
            *(int *)value = e->pending ? 0 : e->error; /* a connect still in progress has no error yet */
            *len = sizeof(int);
            pthread_mutex_unlock(&s_lock);
            return 0;
        }
        pthread_mutex_unlock(&s_lock);
    }
    return real_getsockopt(fd, level, name, value, len);
}

int close(int fd)
{
    pthread_once(&s_resolve_once, resolve_libc);
    gate_fd_t *e = entry(fd);
    if (e == NULL) {
        return real_close(fd);
    }
    pthread_mutex_lock(&s_lock);
    if (!e->tracked) {
        pthread_mutex_unlock(&s_lock);
        return real_close(fd);
    }
    if (s_state == HOST_NET_UP && !e->pending) {
        bool aborted = e->error != 0;
        clear_entry(e);
        update_active();
        pthread_mutex_unlock(&s_lock);
        if (aborted) {
            reset_on_close(fd);
        }
        return real_close(fd);
    }
    /* The descriptor stays open until the link is back, so its number is not handed out again meanwhile. */
    e->tracked = false;
    e->closed = true;
    e->reset = e->error != 0 || s_state == HOST_NET_DOWN;
    if (e->pending) {
        e->pending = false;
        e->held = 0;
    }
    update_active();
    pthread_mutex_unlock(&s_lock);
    return 0;
}

/* ---------------------------------------------------------------- waiting */

static bool remaining(int64_t deadline_ns, struct timespec *ts)
{
    int64_t left = deadline_ns - now_ns();
    if (left < 0) {
        left = 0;
    }
    ts->tv_sec = left / 1000000000;
    ts->tv_nsec = left % 1000000000;
    return left > 0;
}

/* ppoll() with the gate's view of its sockets: a stalled one shows nothing (but room in its send buffer),
   an aborted one is readable with POLLERR; a state change wakes the wait to look again. */
static int gate_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask)
{
    int64_t deadline = timeout ? now_ns() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec : -1;
    struct pollfd local[16];
    struct pollfd *copy = n + 1 <= sizeof(local) / sizeof(local[0]) ? local : malloc((n + 1) * sizeof(*copy));
    if (copy == NULL) {
        errno = ENOMEM;
        return -1;
    }
    bool first = true;
    for (;;) {
        struct timespec left;
        bool time_left = deadline < 0 || remaining(deadline, &left);
        int ready = 0;
        bool gated = false;
        pthread_mutex_lock(&s_lock);
        for (nfds_t i = 0; i < n; i++) {
            copy[i] = fds[i];
            fds[i].revents = 0;
            gate_fd_t *e = entry(fds[i].fd);
            if (e == NULL || !e->tracked) {
                continue;
            }
            if (e->error != 0) {
                gated = true;
                copy[i].fd = -1;
                fds[i].revents = (short)((fds[i].events & (POLLIN | POLLOUT)) | POLLERR);
            } else if (e->pending || s_state == HOST_NET_STALLED) {
                gated = true;
                copy[i].fd = -1;
                if (!e->pending && (fds[i].events & POLLOUT) && e->held < GATE_SND_BUF) {
                    fds[i].revents = POLLOUT;
                }
            }
            ready += fds[i].revents != 0;
        }
        if (!gated) {
            pthread_mutex_unlock(&s_lock);
            if (copy != local) {
                free(copy);
            }
            if (!first && !time_left) {
                return 0;
            }
            return real_ppoll(fds, n, deadline < 0 ? NULL : &left, sigmask);
        }
        gate_wake_t *wake = s_wake;
        if (wake != NULL) {
            wake->users++;
        }
        pthread_mutex_unlock(&s_lock);
        copy[n] = (struct pollfd){.fd = wake ? wake->rd : -1, .events = POLLIN};
        struct timespec zero = {0, 0};
        struct timespec slice = {0, GATE_NO_WAKE_SLICE_MS * 1000000L};
        const struct timespec *wait = ready > 0 || !time_left ? &zero : deadline < 0 ? NULL : &left;
        if (wake == NULL && (wait == NULL || wait->tv_sec > 0 || wait->tv_nsec > slice.tv_nsec)) {
            wait = &slice;
        }
        int rc = real_ppoll(copy, n + 1, wait, sigmask);
        int err = errno;
        pthread_mutex_lock(&s_lock);
        release_wake(wake);
        pthread_mutex_unlock(&s_lock);
        if (rc < 0) {
            if (copy != local) {
                free(copy);
            }
            errno = err;
            return -1;
        }
        int count = 0;
        for (nfds_t i = 0; i < n; i++) {
            if (copy[i].fd >= 0) {
                fds[i].revents = copy[i].revents;
            }
            count += fds[i].revents != 0;
        }
        bool woken = wake == NULL || copy[n].revents != 0;
        if (count > 0 || !woken || (deadline >= 0 && !remaining(deadline, &left))) {
            if (copy != local) {
                free(copy);
            }
            return count;
        }
        first = false; /* the state changed and nothing is ready yet: look again */
    }
}

static bool any_gated(const struct pollfd *fds, nfds_t n)
{
    bool found = false;
    pthread_mutex_lock(&s_lock);
    for (nfds_t i = 0; i < n && !found; i++) {
        const gate_fd_t *e = entry(fds[i].fd);
        found = e != NULL && e->tracked;
    }
    pthread_mutex_unlock(&s_lock);
    return found;
}

int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (!gate_active() || !any_gated(fds, n)) {
        return real_poll(fds, n, timeout_ms);
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    return gate_ppoll(fds, n, timeout_ms < 0 ? NULL : &ts, NULL);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *sigmask)
{
    if (!gate_active() || !any_gated(fds, n)) {
        return real_ppoll(fds, n, timeout, sigmask);
    }
    return gate_ppoll(fds, n, timeout, sigmask);
}

/* libmosquitto's network loop waits in pselect(): the same wait, through poll descriptors. */
int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *timeout, const sigset_t *sigmask)
{
    if (!gate_active() || nfds <= 0 || nfds > FD_SETSIZE) {
        return real_pselect(nfds, rd, wr, ex, timeout, sigmask);
    }
    struct pollfd fds[FD_SETSIZE];
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short events = (short)(((rd && FD_ISSET(fd, rd)) ? POLLIN : 0) | ((wr && FD_ISSET(fd, wr)) ? POLLOUT : 0) |
                               ((ex && FD_ISSET(fd, ex)) ? POLLPRI : 0));
        if (events != 0) {
            fds[n++] = (struct pollfd){.fd = fd, .events = events};
        }
    }
    if (!any_gated(fds, n)) {
        return real_pselect(nfds, rd, wr, ex, timeout, sigmask);
    }
    int rc = gate_ppoll(fds, n, timeout, sigmask);
    if (rc < 0) {
        return -1;
    }
    int count = 0;
    for (nfds_t i = 0; i < n; i++) {
        int fd = fds[i].fd;
        short re = fds[i].revents;
        bool r = rd && FD_ISSET(fd, rd) && (re & (POLLIN | POLLHUP | POLLERR));
        bool w = wr && FD_ISSET(fd, wr) && (re & (POLLOUT | POLLERR));
        bool x = ex && FD_ISSET(fd, ex) && (re & POLLPRI);
        if (rd && FD_ISSET(fd, rd) && !r) {
            FD_CLR(fd, rd);
        }
        if (wr && FD_ISSET(fd, wr) && !w) {
            FD_CLR(fd, wr);
        }
        if (ex && FD_ISSET(fd, ex) && !x) {
            FD_CLR(fd, ex);
        }
        count += r + w + x;
    }
    return count;
}
