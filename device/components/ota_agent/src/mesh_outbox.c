/*
 * A mesh node's messages for the broker, kept until the broker has them (mesh_outbox.h). The node's side: a
 * ring of MESH_OUTBOX_LEN messages and a task that sends the oldest (stop and wait: the next one only after
 * the ack, so they reach the broker in order). The root's side: the (boot, n) it last published for each node
 * (a message sent again is not published twice) and the messages whose PUBACK it waits for to ack them.
 */
#include <stdlib.h>
#include <string.h>
#include "sdkconfig.h"
#include "mesh_outbox.h"

#if CONFIG_OTA_AGENT_MESH

#include "esp_log.h"
#include "esp_mac.h"
#include "esp_mesh.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "agent_config.h"
#include "mesh_send.h"
#include "mqtt_link.h"

static const char *TAG = "mesh_outbox";

#define PENDING_MAX 32 /* the root: node messages published, PUBACK not yet in */
#define EARLY_MAX 8    /* the root: PUBACKs handled before esp_mqtt_client_publish() returned their id */

typedef struct {
    uint32_t n;
    char kind[33];
    char *text;
    bool retain;
} entry_t;

typedef struct {
    bool used;
    uint8_t mac[6];
    uint32_t boot;
    uint32_t n;
} seen_t;

typedef struct {
    int msg_id;
    uint8_t mac[6];
    uint32_t boot;
    uint32_t n;
} pending_t;

static SemaphoreHandle_t s_lock; /* everything below */
static SemaphoreHandle_t s_wake; /* the node's task: something to send */
static bool (*s_uplink)(void);
static entry_t s_queue[MESH_OUTBOX_LEN];
static int s_head, s_count;
static uint32_t s_boot;           /* this boot's id: n starts again at every boot */
static uint32_t s_next_n;
static int64_t s_sent_us;         /* when the oldest was last sent; 0: not yet */
static int s_wait_ms;             /* how long to wait for its ack: doubles at every resend (a busy root's radio
                                     or a loaded mesh delays acks; resending sooner would only add to it) */
static volatile bool s_resend;    /* the way out came back: send the oldest again now */
static bool s_was_up;
static seen_t *s_seen;            /* the root: CONFIG_OTA_AGENT_MESH_MAX_NODES */
static pending_t s_pending[PENDING_MAX];
static int s_n_pending;
static int s_early[EARLY_MAX];
static int s_n_early;

/* ---- a node ------------------------------------------------------------------------------------------- */

static void pop_oldest(void)
{
    free(s_queue[s_head].text);
    s_queue[s_head].text = NULL;
    s_head = (s_head + 1) % MESH_OUTBOX_LEN;
    s_count--;
    s_sent_us = 0;
    s_wait_ms = MESH_OUTBOX_ACK_MS;
}

/* Queues `copy` (now the queue's); s_lock held. */
static void put_locked(const char *kind, char *copy, bool retain)
{
    if (s_count == MESH_OUTBOX_LEN) {
        ESP_LOGW(TAG, "%d messages wait for the root: the oldest (%s, n %u) is dropped", MESH_OUTBOX_LEN,
                 s_queue[s_head].kind, (unsigned)s_queue[s_head].n);
        pop_oldest();
    }
    entry_t *e = &s_queue[(s_head + s_count) % MESH_OUTBOX_LEN];
    e->n = ++s_next_n;
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    e->text = copy;
    e->retain = retain;
    s_count++;
}

bool mesh_outbox_put(const char *kind, const char *text, bool retain)
{
    char *copy = strdup(text);
    if (copy == NULL) {
        ESP_LOGW(TAG, "no memory for a %s message: dropped", kind);
        return false;
    }
    xSemaphoreTake(s_lock, portMAX_DELAY);
    put_locked(kind, copy, retain);
    xSemaphoreGive(s_lock);
    xSemaphoreGive(s_wake);
    return true;
}

bool mesh_outbox_put_behind_held(const char *kind, const char *text, bool retain)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    bool held = s_count > 0;
    char *copy = held ? strdup(text) : NULL; /* a root's every publish comes here: copy only when queued */
    if (copy != NULL) {
        put_locked(kind, copy, retain);
    }
    xSemaphoreGive(s_lock);
    if (held && copy == NULL) {
        ESP_LOGW(TAG, "no memory for a %s message: published before those held", kind);
        return false;
    }
    if (held) {
        xSemaphoreGive(s_wake);
    }
    return held;
}

/* The oldest message as the root gets it (malloc'd), or NULL. */
static char *pub_packet(const entry_t *e)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "m", "pub");
    cJSON_AddStringToObject(msg, "dev", agent_config_get()->device_id);
    cJSON_AddStringToObject(msg, "kind", e->kind);
    cJSON_AddNumberToObject(msg, "retain", e->retain ? 1 : 0);
    cJSON_AddStringToObject(msg, "text", e->text);
    cJSON_AddNumberToObject(msg, "b", s_boot);
    cJSON_AddNumberToObject(msg, "n", e->n);
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    return text;
}

static bool send_to(const uint8_t *to, const char *text)
{
    return mesh_send_packet(to, text, strlen(text), MESH_PROTO_JSON, MESH_TOS_P2P) == ESP_OK;
}

/* A node that became root publishes what it still holds itself, oldest first (outside the lock: the PUBACK
   handler takes it). Each message leaves the queue only once published, so that one published meanwhile by
   another task queues behind it (mesh_outbox_put_behind_held) and the broker gets them in order. */
static void publish_held_as_root(void)
{
    for (;;) {
        entry_t e = {0};
        xSemaphoreTake(s_lock, portMAX_DELAY);
        bool any = s_count > 0;
        if (any) {
            e = s_queue[s_head];
            e.text = strdup(e.text); /* the queue's may go while it is published (a full queue drops its oldest) */
        }
        xSemaphoreGive(s_lock);
        if (!any) {
            return;
        }
        if (e.text != NULL) {
            mqtt_link_publish_own(e.kind, e.text, e.retain);
        } else {
            ESP_LOGW(TAG, "no memory to publish a held %s message (n %u): dropped", e.kind, (unsigned)e.n);
        }
        xSemaphoreTake(s_lock, portMAX_DELAY);
        if (s_count > 0 && s_queue[s_head].n == e.n) {
            pop_oldest();
        }
        xSemaphoreGive(s_lock);
        free(e.text);
    }
}

/* Sends the oldest message if it is due: never sent, sent to a root that has gone, or not acked in time. */
static void send_due(void)
{
    if (esp_mesh_is_root()) {
        if (mqtt_link_broker_connected()) { /* not before: esp-mqtt would queue them, and send anything
                                               published once it is connected first */
            publish_held_as_root();
        }
        return;
    }
    if (!s_uplink()) {
        return;
    }
    int64_t now = esp_timer_get_time();
    char *packet = NULL;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    bool timed_out = s_sent_us != 0 && now - s_sent_us > (int64_t)s_wait_ms * 1000;
    if (s_count > 0 && (s_sent_us == 0 || s_resend || timed_out)) {
        packet = pub_packet(&s_queue[s_head]);
        s_sent_us = now;
        if (timed_out && s_wait_ms < MESH_OUTBOX_ACK_MAX_MS) {
            s_wait_ms *= 2;
        } else if (s_resend) {
            s_wait_ms = MESH_OUTBOX_ACK_MS; /* a new root: a fresh start */
        }
        s_resend = false;
    }
    xSemaphoreGive(s_lock);
    if (packet != NULL && !send_to(NULL, packet)) { /* to NULL: the root */
        xSemaphoreTake(s_lock, portMAX_DELAY);
        s_sent_us = 0; /* not sent: again at the next look */
        xSemaphoreGive(s_lock);
    }
    cJSON_free(packet);
}

static void outbox_task(void *arg)
{
    (void)arg;
    for (;;) {
        xSemaphoreTake(s_wake, pdMS_TO_TICKS(200));
        send_due();
    }
}

void mesh_outbox_uplink_changed(void)
{
    if (s_uplink == NULL) {
        return;
    }
    bool up = s_uplink();
    if (up && !s_was_up) {
        s_resend = true; /* the root it went to may have left with it */
    }
    s_was_up = up;
    xSemaphoreGive(s_wake);
}

bool mesh_outbox_flush(int timeout_ms)
{
    int64_t until = esp_timer_get_time() + (int64_t)timeout_ms * 1000;
    for (;;) {
        xSemaphoreTake(s_lock, portMAX_DELAY);
        int left = s_count;
        xSemaphoreGive(s_lock);
        if (left == 0) {
            return true;
        }
        if (timeout_ms >= 0 && esp_timer_get_time() >= until) {
            ESP_LOGW(TAG, "%d messages not yet acknowledged by the root", left);
            return false;
        }
        vTaskDelay(pdMS_TO_TICKS(20));
    }
}

static bool number(const cJSON *msg, const char *name, uint32_t *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(msg, name);
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 4294967295.0) {
        return false;
    }
    *value = (uint32_t)item->valuedouble;
    return true;
}

void mesh_outbox_on_ack(const cJSON *msg)
{
    uint32_t boot, n;
    if (!number(msg, "b", &boot) || !number(msg, "n", &n)) {
        return;
    }
    xSemaphoreTake(s_lock, portMAX_DELAY);
    bool mine = s_count > 0 && boot == s_boot && s_queue[s_head].n == n;
    if (mine) {
        pop_oldest();
    }
    xSemaphoreGive(s_lock);
    if (mine) {
        xSemaphoreGive(s_wake); /* the next one */
    }
}

/* ---- the root ----------------------------------------------------------------------------------------- */

static void send_ack(const uint8_t mac[6], uint32_t boot, uint32_t n)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "m", "ack");
    cJSON_AddNumberToObject(msg, "b", boot);
    cJSON_AddNumberToObject(msg, "n", n);
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text != NULL) {
        send_to(mac, text);
    }
    cJSON_free(text);
}

static seen_t *seen_entry(const uint8_t mac[6])
{
    seen_t *free_slot = NULL;
    for (int i = 0; i < CONFIG_OTA_AGENT_MESH_MAX_NODES; i++) {
        if (s_seen[i].used && memcmp(s_seen[i].mac, mac, 6) == 0) {
            return &s_seen[i];
        }
        if (!s_seen[i].used && free_slot == NULL) {
            free_slot = &s_seen[i];
        }
    }
    if (free_slot != NULL) {
        memset(free_slot, 0, sizeof(*free_slot));
        free_slot->used = true;
        memcpy(free_slot->mac, mac, 6);
    }
    return free_slot;
}

static bool is_pending(const uint8_t mac[6], uint32_t boot, uint32_t n)
{
    for (int i = 0; i < s_n_pending; i++) {
        if (memcmp(s_pending[i].mac, mac, 6) == 0 && s_pending[i].boot == boot && s_pending[i].n == n) {
            return true;
        }
    }
    return false;
}

/* Whether the broker already acknowledged msg_id (its PUBACK came before publish returned the id). */
static bool take_early(int msg_id)
{
    for (int i = 0; i < s_n_early; i++) {
        if (s_early[i] == msg_id) {
            s_early[i] = s_early[--s_n_early];
            return true;
        }
    }
    return false;
}

/* Remembers a published message until its PUBACK; true if that came already (ack now). */
static bool await_puback(int msg_id, const uint8_t mac[6], uint32_t boot, uint32_t n)
{
    if (take_early(msg_id)) {
        return true;
    }
    if (s_n_pending == PENDING_MAX) { /* the oldest is sent again by its node and acked as a repeat */
        memmove(&s_pending[0], &s_pending[1], sizeof(s_pending[0]) * (PENDING_MAX - 1));
        s_n_pending--;
    }
    pending_t *p = &s_pending[s_n_pending++];
    p->msg_id = msg_id;
    memcpy(p->mac, mac, 6);
    p->boot = boot;
    p->n = n;
    return false;
}

bool mesh_outbox_root_publish(const uint8_t from[6], const cJSON *msg, const char *dev, const char *kind,
                              const char *text, bool retain)
{
    uint32_t boot, n;
    if (!number(msg, "b", &boot) || !number(msg, "n", &n)) {
        return mqtt_link_publish_as(dev, kind, text, retain) >= 0; /* not kept by its node: no ack */
    }
    xSemaphoreTake(s_lock, portMAX_DELAY);
    seen_t *seen = seen_entry(from);
    bool again = seen != NULL && seen->boot == boot && n <= seen->n;
    bool waiting = again && is_pending(from, boot, n);
    xSemaphoreGive(s_lock);
    if (again) {
        if (!waiting) {
            send_ack(from, boot, n); /* published before: its ack was lost, or went to a root that left */
        }
        return false;
    }
    int msg_id = mqtt_link_publish_as(dev, kind, text, retain);
    if (msg_id < 0) {
        return false; /* no ack: the node sends it again, to this root or the next */
    }
    xSemaphoreTake(s_lock, portMAX_DELAY);
    if (seen != NULL) {
        seen->boot = boot;
        seen->n = n;
    }
    bool acked = await_puback(msg_id, from, boot, n);
    xSemaphoreGive(s_lock);
    if (acked) {
        send_ack(from, boot, n);
    }
    return true;
}

void mesh_outbox_root_published(int msg_id)
{
    pending_t done = {0};
    bool found = false;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    for (int i = 0; i < s_n_pending && !found; i++) {
        if (s_pending[i].msg_id == msg_id) {
            done = s_pending[i];
            s_pending[i] = s_pending[--s_n_pending];
            found = true;
        }
    }
    if (!found) { /* the root's own message, or a node's whose id publish has not returned yet */
        if (s_n_early == EARLY_MAX) {
            memmove(&s_early[0], &s_early[1], sizeof(s_early[0]) * (EARLY_MAX - 1));
            s_n_early--;
        }
        s_early[s_n_early++] = msg_id;
    }
    xSemaphoreGive(s_lock);
    if (found) {
        send_ack(done.mac, done.boot, done.n);
    }
}

bool mesh_outbox_start(bool (*uplink)(void))
{
    s_uplink = uplink;
    s_boot = esp_random();
    s_wait_ms = MESH_OUTBOX_ACK_MS;
    s_lock = xSemaphoreCreateMutex();
    s_wake = xSemaphoreCreateBinary();
    s_seen = calloc(CONFIG_OTA_AGENT_MESH_MAX_NODES, sizeof(seen_t));
    return s_lock != NULL && s_wake != NULL && s_seen != NULL &&
           xTaskCreate(outbox_task, "mesh_outbox", 4096, NULL, 4, NULL) == pdPASS;
}

#endif /* CONFIG_OTA_AGENT_MESH */
