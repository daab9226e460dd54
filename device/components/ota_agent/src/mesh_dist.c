/*
 * Mesh distribution of an image (mesh_dist.h; docs/protocol.md, "Mesh distribution").
 *
 * Packets: a chunk is binary, 'C' tag(u32 LE) index(u32 LE) data (MESH_DIST_CHUNK bytes, the last one
 * shorter); the rest is JSON: the announce is a command {"type": "mesh_ota", ...} relayed like any other,
 * {"m": "end", "t": tag} from a server (everything sent: say what you miss), {"m": "nak", "t": tag,
 * "miss": [index, ...]} (at most NAK_MAX) and {"m": "done", "t": tag, "ok": 1, "mem": bytes} from a node,
 * {"m": "fin", "t": tag} from the root (the distribution is over: reboot).
 *
 * A node writes each chunk where it belongs (ota_image_write_at: esp_ota_write_with_offset into the slot that
 * esp_ota_begin erased for the announced size), whatever order chunks come in, and keeps a bitmap of what
 * it has; it NAKs what is missing. Only chunk 0 has to come first (its head is checked before anything is
 * erased): chunks before it are held, up to WINDOW (allocated only then), and one more is dropped and asked
 * for again. With every chunk written, the slot is read back for the SHA-256 and the image's checks
 * (ota_image_finish_written). Its memory for the transfer: the bitmap (one bit per chunk), the held chunks
 * if any, the chunks waiting in its queue; it reports the peak in `done` ("mem"). A p2p node also keeps the
 * image: it is its new slot, which it serves from (flash, no RAM).
 */
#include <stdlib.h>
#include <string.h>
#include "sdkconfig.h"
#include "esp_log.h"
#include "mesh_dist.h"

#if CONFIG_OTA_AGENT_MESH

#include "esp_event.h"
#include "esp_mac.h"
#include "esp_mesh.h"
#include "esp_partition.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "mbedtls/sha256.h"
#include "mesh_send.h"

static const char *TAG = "mesh_dist";

#define WINDOW 16          /* chunks a node holds that came before chunk 0 (the image's head) */
#define QUEUE_LEN 64       /* packets waiting for the update task */
#define NAK_MAX 128        /* indices in one NAK (about 700 bytes of JSON) */
#define MAX_TARGETS 256
#define QUIET_MS 1000      /* a node with gaps NAKs after this long without a chunk */
#define ROUND_MS 2000      /* a server says `end` again after this long without an answer */

typedef enum { PKT_CHUNK, PKT_END, PKT_NAK, PKT_DONE, PKT_FIN } pkt_kind_t;

typedef struct {
    pkt_kind_t kind;
    uint8_t from[6];
    uint32_t tag;
    uint32_t index;     /* PKT_CHUNK */
    uint16_t len;       /* PKT_CHUNK: data bytes; PKT_NAK: indices in miss */
    bool ok;            /* PKT_DONE */
    uint32_t mem;       /* PKT_DONE */
    uint32_t *miss;     /* PKT_NAK, malloc'd */
    uint8_t *data;      /* PKT_CHUNK, malloc'd */
} pkt_t;

static QueueHandle_t s_rx;     /* to a node's receive loop: chunks, end, fin */
static QueueHandle_t s_ctl;    /* to a server: nak, done */
static SemaphoreHandle_t s_lock;
static uint8_t s_children[MESH_MAX_CONNECTIONS][6];
static int s_n_children;
static volatile int s_queued, s_queued_peak;
static volatile bool s_parent_lost; /* since the last look: the root (or the way to it) went away */

static int64_t now_ms(void)
{
    return esp_timer_get_time() / 1000;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void free_pkt(pkt_t *p)
{
    free(p->miss);
    free(p->data);
}

static void on_parent_lost(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    (void)id;
    (void)data;
    s_parent_lost = true;
}

static void on_child(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    const uint8_t *mac = ((const wifi_event_ap_staconnected_t *)data)->mac;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    int at = -1;
    for (int i = 0; i < s_n_children; i++) {
        if (memcmp(s_children[i], mac, 6) == 0) {
            at = i;
        }
    }
    if (id == MESH_EVENT_CHILD_CONNECTED && at < 0 && s_n_children < MESH_MAX_CONNECTIONS) {
        memcpy(s_children[s_n_children++], mac, 6);
    } else if (id == MESH_EVENT_CHILD_DISCONNECTED && at >= 0) {
        memmove(s_children[at], s_children[at + 1], (size_t)(s_n_children - at - 1) * 6);
        s_n_children--;
    }
    xSemaphoreGive(s_lock);
}

esp_err_t mesh_dist_init(void)
{
    s_rx = xQueueCreate(QUEUE_LEN, sizeof(pkt_t));
    s_ctl = xQueueCreate(QUEUE_LEN, sizeof(pkt_t));
    s_lock = xSemaphoreCreateMutex();
    if (s_rx == NULL || s_ctl == NULL || s_lock == NULL) {
        return ESP_ERR_NO_MEM;
    }
    esp_err_t err = esp_event_handler_register(MESH_EVENT, MESH_EVENT_CHILD_CONNECTED, on_child, NULL);
    if (err == ESP_OK) {
        err = esp_event_handler_register(MESH_EVENT, MESH_EVENT_CHILD_DISCONNECTED, on_child, NULL);
    }
    if (err == ESP_OK) {
        err = esp_event_handler_register(MESH_EVENT, MESH_EVENT_PARENT_DISCONNECTED, on_parent_lost, NULL);
    }
    return err;
}

void mesh_dist_on_chunk(const uint8_t from[6], const uint8_t *data, int len)
{
    if (len < 9 || len > 9 + MESH_DIST_CHUNK) {
        return;
    }
    pkt_t p = {.kind = PKT_CHUNK, .tag = le32(data + 1), .index = le32(data + 5), .len = (uint16_t)(len - 9)};
    memcpy(p.from, from, 6);
    p.data = malloc(p.len);
    if (p.data == NULL) {
        return;
    }
    memcpy(p.data, data + 9, p.len);
    if (xQueueSend(s_rx, &p, 0) != pdPASS) {
        free(p.data); /* a full queue loses the chunk, as a full RX buffer would: it is NAKed later */
        return;
    }
    int q = ++s_queued;
    if (q > s_queued_peak) {
        s_queued_peak = q;
    }
}

void mesh_dist_on_control(const uint8_t from[6], const char *m, const cJSON *msg)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(msg, "t");
    if (!cJSON_IsNumber(t)) {
        return;
    }
    pkt_t p = {.tag = (uint32_t)t->valuedouble};
    memcpy(p.from, from, 6);
    QueueHandle_t to = s_ctl;
    if (strcmp(m, "end") == 0) {
        p.kind = PKT_END;
        to = s_rx;
    } else if (strcmp(m, "fin") == 0) {
        p.kind = PKT_FIN;
        to = s_rx;
    } else if (strcmp(m, "done") == 0) {
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(msg, "ok");
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(msg, "mem");
        p.kind = PKT_DONE;
        p.ok = cJSON_IsNumber(ok) && ok->valueint != 0;
        p.mem = cJSON_IsNumber(mem) ? (uint32_t)mem->valuedouble : 0;
    } else if (strcmp(m, "nak") == 0) {
        const cJSON *miss = cJSON_GetObjectItemCaseSensitive(msg, "miss");
        int n = cJSON_GetArraySize(miss);
        p.kind = PKT_NAK;
        if (n < 1 || n > NAK_MAX || (p.miss = malloc((size_t)n * sizeof(uint32_t))) == NULL) {
            return;
        }
        for (int i = 0; i < n; i++) {
            p.miss[i] = (uint32_t)cJSON_GetArrayItem(miss, i)->valuedouble;
        }
        p.len = (uint16_t)n;
    } else {
        return;
    }
    if (xQueueSend(to, &p, 0) != pdPASS) {
        free_pkt(&p);
    }
}

/* ---- sending ---------------------------------------------------------------------------------------- */

/* to NULL: the root */
static bool send_raw(const uint8_t *to, const uint8_t *data, size_t len, mesh_tos_t tos)
{
    return mesh_send_packet(to, data, len, MESH_PROTO_BIN, tos) == ESP_OK;
}

static bool send_json(const uint8_t *to, cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);
    bool ok = text != NULL && send_raw(to, (const uint8_t *)text, strlen(text), MESH_TOS_P2P);
    cJSON_free(text);
    cJSON_Delete(msg);
    return ok;
}

static bool send_control(const uint8_t *to, const char *m, uint32_t tag)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "m", m);
    cJSON_AddNumberToObject(msg, "t", tag);
    return send_json(to, msg);
}

static const uint8_t BROADCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static bool send_chunk(const uint8_t *to, const esp_partition_t *part, uint32_t tag, uint32_t index, int64_t size,
                       mesh_tos_t tos)
{
    static uint8_t buf[9 + MESH_DIST_CHUNK];
    int64_t offset = (int64_t)index * MESH_DIST_CHUNK;
    size_t len = (size_t)(size - offset < MESH_DIST_CHUNK ? size - offset : MESH_DIST_CHUNK);
    buf[0] = 'C';
    for (int i = 0; i < 4; i++) {
        buf[1 + i] = (uint8_t)(tag >> (8 * i));
        buf[5 + i] = (uint8_t)(index >> (8 * i));
    }
    esp_err_t err = esp_partition_read(part, (size_t)offset, buf + 9, len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_partition_read at %lld: %s", (long long)offset, esp_err_to_name(err));
        return false;
    }
    return send_raw(to, buf, 9 + len, tos);
}

/* ---- a node ---------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t n;          /* chunks */
    int64_t size;        /* image bytes */
    uint32_t next;       /* first chunk not yet had */
    bool head_written;   /* chunk 0 is in the slot: the rest go straight there */
    uint8_t *have;       /* bitmap: written or held */
    uint8_t *slots;      /* WINDOW chunks held before chunk 0, allocated when the first comes */
    int32_t slot_index[WINDOW];
    uint16_t slot_len[WINDOW];
} rx_state_t;

static bool has(const rx_state_t *s, uint32_t i)
{
    return (s->have[i / 8] >> (i % 8)) & 1;
}

static void mark(rx_state_t *s, uint32_t i)
{
    s->have[i / 8] |= (uint8_t)(1 << (i % 8));
    while (s->next < s->n && has(s, s->next)) {
        s->next++;
    }
}

static size_t chunk_len(const rx_state_t *s, uint32_t i)
{
    int64_t left = s->size - (int64_t)i * MESH_DIST_CHUNK;
    return left < MESH_DIST_CHUNK ? (size_t)left : MESH_DIST_CHUNK;
}

/* A chunk that came before chunk 0: held if there is room (the bitmap says so), else asked for again later. */
static void hold(rx_state_t *s, const pkt_t *p)
{
    if (s->slots == NULL && (s->slots = malloc((size_t)WINDOW * MESH_DIST_CHUNK)) == NULL) {
        return;
    }
    for (int k = 0; k < WINDOW; k++) {
        if (s->slot_index[k] < 0) {
            memcpy(s->slots + (size_t)k * MESH_DIST_CHUNK, p->data, p->len);
            s->slot_index[k] = (int32_t)p->index;
            s->slot_len[k] = p->len;
            mark(s, p->index);
            return;
        }
    }
}

/* Chunk 0 is written: the held chunks go where they belong. */
static bool write_held(rx_state_t *s, ota_image_t *image, ota_outcome_t *out)
{
    for (int k = 0; k < WINDOW && s->slots != NULL; k++) {
        if (s->slot_index[k] >= 0 &&
            !ota_image_write_at(image, (int64_t)s->slot_index[k] * MESH_DIST_CHUNK,
                                s->slots + (size_t)k * MESH_DIST_CHUNK, s->slot_len[k], out)) {
            return false;
        }
        s->slot_index[k] = -1;
    }
    return true;
}

/* One chunk into the image, where it belongs (held, before chunk 0). */
static bool take_chunk(rx_state_t *s, ota_image_t *image, const pkt_t *p, ota_outcome_t *out)
{
    if (p->index >= s->n || has(s, p->index) || p->len != chunk_len(s, p->index)) {
        return true; /* a duplicate (a resend someone else asked for), or not this image's */
    }
    if (!s->head_written && p->index != 0) {
        hold(s, p);
        return true;
    }
    if (!ota_image_write_at(image, (int64_t)p->index * MESH_DIST_CHUNK, p->data, p->len, out)) {
        return false;
    }
    mark(s, p->index);
    if (p->index == 0) {
        s->head_written = true;
        return write_held(s, image, out);
    }
    return true;
}

static void send_nak(const uint8_t *server, const rx_state_t *s, uint32_t tag)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "m", "nak");
    cJSON_AddNumberToObject(msg, "t", tag);
    cJSON *miss = cJSON_AddArrayToObject(msg, "miss");
    int count = 0;
    for (uint32_t i = s->next; i < s->n && count < NAK_MAX; i++) {
        if (!has(s, i)) {
            cJSON_AddItemToArray(miss, cJSON_CreateNumber(i));
            count++;
        }
    }
    ESP_LOGI(TAG, "NAK to " MACSTR ": %d chunks from %u", MAC2STR(server), count, (unsigned)s->next);
    send_json(server, msg);
}

static void send_done(const uint8_t *server, uint32_t tag, bool ok, uint32_t mem)
{
    /* to its server, and to the root, which counts every node's (in p2p the server is the parent) */
    for (int to_root = 0; to_root < 2; to_root++) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "m", "done");
        cJSON_AddNumberToObject(msg, "t", tag);
        cJSON_AddNumberToObject(msg, "ok", ok ? 1 : 0);
        cJSON_AddNumberToObject(msg, "mem", mem);
        send_json(to_root ? NULL : server, msg);
    }
}

static void drain(QueueHandle_t q)
{
    pkt_t p;
    while (xQueueReceive(q, &p, 0) == pdPASS) {
        if (p.kind == PKT_CHUNK) {
            s_queued--;
        }
        free_pkt(&p);
    }
}

static uint8_t s_server[6]; /* who served this node's image (its parent, in p2p) */

/* When a node with gaps asks again: the first time at the server's `end` or after QUIET_MS without a chunk;
   after that at an `end` that follows the resent chunks (not at the server's reminders while they are still
   on their way, which would ask for them twice), or after 3 x QUIET_MS of silence. */
static bool nak_due(bool nak_sent, bool end_seen, bool chunk_since_nak, int64_t quiet_ms, int64_t since_nak_ms)
{
    if (!nak_sent) {
        return end_seen || quiet_ms > QUIET_MS;
    }
    return (end_seen && chunk_since_nak) || (quiet_ms > 3 * QUIET_MS && since_nak_ms > 3 * QUIET_MS);
}

ota_outcome_t mesh_dist_receive(const ota_request_t *req, bool (*cancelled)(void))
{
    ota_outcome_t out = {0};
    ota_image_t image;
    rx_state_t s = {.n = (uint32_t)((req->size + MESH_DIST_CHUNK - 1) / MESH_DIST_CHUNK), .size = req->size};
    s.have = calloc((s.n + 7) / 8, 1);
    if (s.have == NULL) {
        ota_outcome_fail(&out, "failed", OTA_REASON_FLASH_ERROR, "no memory for the mesh transfer");
        return out;
    }
    for (int k = 0; k < WINDOW; k++) {
        s.slot_index[k] = -1;
    }
    s_queued_peak = s_queued;
    bool ok = ota_image_init_at_offsets(&image, req, req->size, &out);
    int64_t start = now_ms(), last_chunk = 0, last_nak = 0;
    bool have_server = false, end_seen = false, nak_sent = false, chunk_since_nak = false;
    ESP_LOGI(TAG, "receiving %s: %lld bytes in %u chunks (%s)", req->id, (long long)req->size, (unsigned)s.n,
             ota_mesh_mode_name(req->mesh));
    while (ok && s.next < s.n) {
        pkt_t p;
        bool got = xQueueReceive(s_rx, &p, pdMS_TO_TICKS(200)) == pdPASS;
        int64_t now = now_ms();
        if (got) {
            if (p.kind == PKT_CHUNK) {
                s_queued--;
            }
            if (p.tag == req->mesh_tag && (p.kind == PKT_CHUNK || p.kind == PKT_END)) {
                memcpy(s_server, p.from, 6);
                have_server = true;
                if (p.kind == PKT_CHUNK) {
                    last_chunk = now;
                    chunk_since_nak = true;
                    ok = take_chunk(&s, &image, &p, &out);
                } else {
                    end_seen = true;
                }
            }
            free_pkt(&p);
        }
        if (!ok) {
            break;
        }
        if (cancelled()) {
            ok = ota_outcome_fail(&out, "failed", OTA_REASON_CANCELLED, "cancelled");
        } else if (now - start > (int64_t)req->timeout_s * 1000) {
            ok = ota_outcome_fail(&out, "failed", OTA_REASON_TIMEOUT, "the mesh transfer took longer than timeout_s");
        } else if (last_chunk > 0 && now - last_chunk > (int64_t)req->idle_timeout_s * 1000) {
            ok = ota_outcome_fail(&out, "failed", OTA_REASON_IDLE_TIMEOUT, "no chunk from the mesh for idle_timeout_s");
        } else if (have_server && s.next < s.n && nak_due(nak_sent, end_seen, chunk_since_nak, now - last_chunk,
                                                         now - last_nak)) {
            send_nak(s_server, &s, req->mesh_tag);
            last_nak = now;
            nak_sent = true;
            end_seen = false;
            chunk_since_nak = false;
        }
    }
    uint32_t mem = (s.n + 7) / 8 + (s.slots != NULL ? WINDOW * MESH_DIST_CHUNK : 0) +
                   (uint32_t)s_queued_peak * (MESH_DIST_CHUNK + sizeof(pkt_t));
    free(s.have);
    free(s.slots);
    if (ok) {
        ok = ota_image_finish_written(&image, &out);
    }
    ota_image_free(&image);
    if (have_server) {
        send_done(s_server, req->mesh_tag, ok, mem);
    }
    ESP_LOGI(TAG, "%s %s: %s, peak transfer memory %u bytes", ok ? "received" : "failed", req->id,
             ok ? "switched" : ota_reason_name(out.reason), (unsigned)mem);
    return out;
}

/* ---- a server ---------------------------------------------------------------------------------------- */

typedef struct {
    uint8_t mac[6];
    bool done;
} target_t;

static int find_target(target_t *t, int n, const uint8_t *mac)
{
    for (int i = 0; i < n; i++) {
        if (memcmp(t[i].mac, mac, 6) == 0) {
            return i;
        }
    }
    return -1;
}

static int count_done(const target_t *t, int n)
{
    int done = 0;
    for (int i = 0; i < n; i++) {
        done += t[i].done;
    }
    return done;
}

/* Waits up to ms for control messages; resends what NAKs ask for (to `to`, or to the NAK's sender for
   unicast). Returns after the first message or the wait. */
static void serve_answers(target_t *t, int n, const esp_partition_t *part, uint32_t tag, int64_t size,
                          const uint8_t *to, mesh_tos_t tos, int ms)
{
    pkt_t p;
    if (xQueueReceive(s_ctl, &p, pdMS_TO_TICKS(ms)) != pdPASS) {
        return;
    }
    /* a broadcast resends the union of what every NAK so far asked for, once */
    uint32_t chunks = (uint32_t)((size + MESH_DIST_CHUNK - 1) / MESH_DIST_CHUNK);
    uint8_t *wanted = to != NULL ? calloc((chunks + 7) / 8, 1) : NULL;
    bool any = false;
    do {
        if (p.tag == tag) {
            int i = find_target(t, n, p.from);
            if (p.kind == PKT_DONE && i >= 0) {
                t[i].done = true;
                ESP_LOGI(TAG, "done: " MACSTR " (%s, %u bytes of transfer memory)", MAC2STR(p.from),
                         p.ok ? "ok" : "failed", (unsigned)p.mem);
            } else if (p.kind == PKT_NAK) {
                ESP_LOGI(TAG, "NAK from " MACSTR ": %d chunks", MAC2STR(p.from), p.len);
                for (int k = 0; k < p.len; k++) {
                    if (wanted != NULL && p.miss[k] < chunks) {
                        wanted[p.miss[k] / 8] |= (uint8_t)(1 << (p.miss[k] % 8));
                        any = true;
                    } else if (wanted == NULL) {
                        send_chunk(p.from, part, tag, p.miss[k], size, tos);
                    }
                }
                if (wanted == NULL) {
                    send_control(p.from, "end", tag);
                }
            }
        }
        free_pkt(&p);
    } while (xQueueReceive(s_ctl, &p, pdMS_TO_TICKS(any ? 20 : 0)) == pdPASS);
    if (any) {
        for (uint32_t c = 0; c < chunks; c++) {
            if ((wanted[c / 8] >> (c % 8)) & 1) {
                send_chunk(to, part, tag, c, size, tos);
            }
        }
        send_control(to, "end", tag);
    }
    free(wanted);
}

/* Serves the targets in turn (those in `only`, when given: a p2p root serves its children and counts
   everyone's `done`). */
static void serve_one_by_one(target_t *t, int n, const esp_partition_t *part, uint32_t tag, int64_t size,
                             int64_t deadline, const uint8_t (*only)[6], int n_only)
{
    uint32_t chunks = (uint32_t)((size + MESH_DIST_CHUNK - 1) / MESH_DIST_CHUNK);
    for (int i = 0; i < n && now_ms() < deadline; i++) {
        bool mine = only == NULL;
        for (int k = 0; k < n_only && !mine; k++) {
            mine = memcmp(only[k], t[i].mac, 6) == 0;
        }
        if (t[i].done || !mine) {
            continue;
        }
        ESP_LOGI(TAG, "serving " MACSTR " (%d of %d)", MAC2STR(t[i].mac), i + 1, n);
        for (uint32_t c = 0; c < chunks; c++) {
            send_chunk(t[i].mac, part, tag, c, size, MESH_TOS_P2P);
        }
        send_control(t[i].mac, "end", tag);
        int64_t quiet_since = now_ms();
        while (!t[i].done && now_ms() < deadline) {
            int before = count_done(t, n);
            serve_answers(t, n, part, tag, size, NULL, MESH_TOS_P2P, 200);
            if (count_done(t, n) != before) {
                quiet_since = now_ms();
            } else if (now_ms() - quiet_since > ROUND_MS) {
                send_control(t[i].mac, "end", tag); /* prompt a NAK */
                quiet_since = now_ms();
            }
        }
    }
}

static void serve_broadcast(target_t *t, int n, const esp_partition_t *part, uint32_t tag, int64_t size,
                            int64_t deadline)
{
    uint32_t chunks = (uint32_t)((size + MESH_DIST_CHUNK - 1) / MESH_DIST_CHUNK);
    ESP_LOGI(TAG, "broadcasting %u chunks to %d nodes", (unsigned)chunks, n);
    for (uint32_t c = 0; c < chunks; c++) {
        send_chunk(BROADCAST, part, tag, c, size, MESH_TOS_DEF);
    }
    send_control(BROADCAST, "end", tag);
    int64_t last_end = now_ms();
    while (count_done(t, n) < n && now_ms() < deadline) {
        serve_answers(t, n, part, tag, size, BROADCAST, MESH_TOS_DEF, 200);
        if (now_ms() - last_end > ROUND_MS) {
            send_control(BROADCAST, "end", tag);
            last_end = now_ms();
        }
    }
}

/* The root's announce: a mesh_ota command to every node, unicast (acknowledged per hop: a lost group frame
   would leave a node out of the whole distribution). */
static void announce(const ota_request_t *req, int64_t size, uint32_t tag, const uint8_t digest[32], int timeout_s,
                     const target_t *targets, int n)
{
    char hex[65];
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    cJSON *cmd = cJSON_CreateObject();
    cJSON_AddStringToObject(cmd, "type", "mesh_ota");
    cJSON_AddStringToObject(cmd, "id", req->id);
    cJSON_AddStringToObject(cmd, "version", req->version);
    cJSON_AddNumberToObject(cmd, "size", (double)size);
    cJSON_AddStringToObject(cmd, "sha256", hex);
    cJSON_AddStringToObject(cmd, "mesh", ota_mesh_mode_name(req->mesh));
    cJSON_AddNumberToObject(cmd, "tag", tag);
    cJSON_AddNumberToObject(cmd, "timeout_s", timeout_s);
    cJSON_AddNumberToObject(cmd, "idle_timeout_s", req->idle_timeout_s);
    if (req->force) {
        cJSON_AddBoolToObject(cmd, "force", true);
    }
    char *text = cJSON_PrintUnformatted(cmd);
    cJSON_Delete(cmd);
    for (int i = 0; i < n; i++) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "m", "cmd");
        cJSON_AddStringToObject(msg, "cmd", text != NULL ? text : "");
        send_json(targets[i].mac, msg);
    }
    cJSON_free(text);
}

static bool image_digest(const esp_partition_t *part, int64_t size, uint8_t digest[32])
{
    static uint8_t buf[MESH_DIST_CHUNK];
    mbedtls_sha256_context sha;
    mbedtls_sha256_init(&sha);
    mbedtls_sha256_starts(&sha, 0);
    bool ok = true;
    for (int64_t at = 0; at < size && ok; at += MESH_DIST_CHUNK) {
        size_t len = (size_t)(size - at < MESH_DIST_CHUNK ? size - at : MESH_DIST_CHUNK);
        ok = esp_partition_read(part, (size_t)at, buf, len) == ESP_OK;
        mbedtls_sha256_update(&sha, buf, len);
    }
    mbedtls_sha256_finish(&sha, digest);
    mbedtls_sha256_free(&sha);
    return ok;
}

static uint32_t tag_of(const char *id)
{
    uint32_t h = 5381;
    for (const char *c = id; *c; c++) {
        h = h * 33 + (uint8_t)*c;
    }
    return h ^ (uint32_t)esp_timer_get_time();
}

void mesh_dist_after_switch(const ota_request_t *req, const ota_outcome_t *outcome)
{
    const esp_partition_t *part =
        esp_partition_find_first(ESP_PARTITION_TYPE_APP, ESP_PARTITION_SUBTYPE_ANY, outcome->target_label);
    if (part == NULL || req->mesh == OTA_MESH_NONE) {
        return;
    }
    int64_t size = outcome->image_len;
    int64_t start = now_ms();
    if (req->mesh_rx) { /* a node: a p2p node serves its children, then everyone waits for `fin` */
        int64_t deadline = start + (int64_t)req->timeout_s * 1000;
        if (req->mesh == OTA_MESH_P2P) {
            target_t t[MESH_MAX_CONNECTIONS];
            xSemaphoreTake(s_lock, portMAX_DELAY);
            int n = s_n_children;
            for (int i = 0; i < n; i++) {
                memcpy(t[i].mac, s_children[i], 6);
                t[i].done = false;
            }
            xSemaphoreGive(s_lock);
            drain(s_ctl);
            serve_one_by_one(t, n, part, req->mesh_tag, size, deadline, NULL, 0);
        }
        s_parent_lost = false;
        while (now_ms() < deadline && !s_parent_lost) { /* the root gone: the distribution is over too */
            pkt_t p;
            if (xQueueReceive(s_rx, &p, pdMS_TO_TICKS(500)) == pdPASS) {
                bool fin = p.kind == PKT_FIN && p.tag == req->mesh_tag;
                if (p.kind == PKT_CHUNK) {
                    s_queued--;
                }
                free_pkt(&p);
                if (fin) {
                    break;
                }
            }
        }
        return;
    }
    if (!esp_mesh_is_root()) {
        ESP_LOGW(TAG, "not the mesh's root: %s is not distributed", req->id);
        return;
    }
    static target_t targets[MAX_TARGETS];
    static mesh_addr_t table[MAX_TARGETS + 1];
    int size_rt = 0;
    esp_mesh_get_routing_table(table, (int)sizeof(table), &size_rt);
    uint8_t self[6];
    esp_read_mac(self, ESP_MAC_WIFI_STA);
    int n = 0;
    for (int i = 0; i < size_rt && n < MAX_TARGETS; i++) {
        if (memcmp(table[i].addr, self, 6) != 0) {
            memcpy(targets[n].mac, table[i].addr, 6);
            targets[n++].done = false;
        }
    }
    uint8_t digest[32];
    if (n == 0 || !image_digest(part, size, digest)) {
        ESP_LOGW(TAG, "%s: no node to distribute to", req->id);
        return;
    }
    uint32_t tag = tag_of(req->id);
    int64_t deadline = start + (int64_t)req->timeout_s * 1000;
    drain(s_ctl);
    ESP_LOGI(TAG, "distributing %s (%lld bytes) to %d nodes: %s", req->id, (long long)size, n,
             ota_mesh_mode_name(req->mesh));
    announce(req, size, tag, digest, req->timeout_s, targets, n);
    vTaskDelay(pdMS_TO_TICKS(100)); /* the nodes' update tasks take the announce before the first chunk */
    if (req->mesh == OTA_MESH_BROADCAST) {
        serve_broadcast(targets, n, part, tag, size, deadline);
    } else if (req->mesh == OTA_MESH_SEQUENTIAL) {
        serve_one_by_one(targets, n, part, tag, size, deadline, NULL, 0);
    } else { /* p2p: the root's children from here; the rest from their parents; the root waits for all */
        uint8_t children[MESH_MAX_CONNECTIONS][6];
        xSemaphoreTake(s_lock, portMAX_DELAY);
        int nc = s_n_children;
        memcpy(children, s_children, sizeof(children));
        xSemaphoreGive(s_lock);
        serve_one_by_one(targets, n, part, tag, size, deadline, (const uint8_t (*)[6])children, nc);
        while (count_done(targets, n) < n && now_ms() < deadline) {
            serve_answers(targets, n, part, tag, size, NULL, MESH_TOS_P2P, 500);
        }
    }
    int done = count_done(targets, n);
    ESP_LOGI(TAG, "distribution of %s over: %d of %d nodes done in %lld ms", req->id, done, n,
             (long long)(now_ms() - start));
    for (int i = 0; i < n; i++) {
        send_control(targets[i].mac, "fin", tag); /* unicast, acknowledged per hop, as the announce */
    }
    vTaskDelay(pdMS_TO_TICKS(200)); /* for `fin` to leave the radio before the reboot */
}

#else /* !CONFIG_OTA_AGENT_MESH */

esp_err_t mesh_dist_init(void)
{
    return ESP_OK;
}

void mesh_dist_on_chunk(const uint8_t from[6], const uint8_t *data, int len)
{
    (void)from;
    (void)data;
    (void)len;
}

void mesh_dist_on_control(const uint8_t from[6], const char *m, const cJSON *msg)
{
    (void)from;
    (void)m;
    (void)msg;
}

ota_outcome_t mesh_dist_receive(const ota_request_t *req, bool (*cancelled)(void))
{
    (void)req;
    (void)cancelled;
    ota_outcome_t out = {0};
    ota_outcome_fail(&out, "rejected", OTA_REASON_BAD_COMMAND, "not a mesh build (CONFIG_OTA_AGENT_MESH)");
    return out;
}

void mesh_dist_after_switch(const ota_request_t *req, const ota_outcome_t *outcome)
{
    (void)req;
    (void)outcome;
}

#endif /* CONFIG_OTA_AGENT_MESH */
