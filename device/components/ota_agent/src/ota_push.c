#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cJSON.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "mqtt_link.h"
#include "ota_deadline.h"
#include "ota_progress.h"
#include "ota_push.h"

static const char *TAG = "ota_push";

#define POLL_MS 250 /* wait for a chunk, between checks of the deadlines, cancel and reconnects */
/* The queue holds window + 2 entries at most: the chunks in order the pusher may have in flight (its window:
   it sends none past the last acknowledged `next` + window), one notice (see offer()) and one spare. */
#define QUEUE_SLOTS (OTA_PUSH_WINDOW_MAX + 2)
#define NONE (-1)

typedef struct {
    int64_t offset;
    int len;
    uint8_t *data; /* malloc'd by mqtt_link; freed by whoever drops or consumes the chunk; NULL: a notice */
} chunk_t;

typedef struct {
    const ota_request_t *req;
    ota_outcome_t out;
    ota_image_t image;
    ota_progress_t progress;
    ota_deadline_t deadline;
} push_t;

/* The running push, as the MQTT task sees it. s_lock guards it: the update task sets it and takes the
   notes, the MQTT task advances `queued_upto` and makes the notes. */
typedef struct {
    const ota_request_t *req; /* the push command (the update task's, for the transfer); NULL when none runs */
    int64_t queued_upto; /* end of the chunks queued in order from offset 0: the next one the device needs */
    int64_t gap;         /* a chunk dropped as out of order, or for want of room, since the last notice */
    int64_t copy;        /* a chunk dropped as a copy of one queued or written, since the last notice */
    bool notice_queued;  /* a notice waits in the queue: the update task will look at the notes */
} transfer_t;

static QueueHandle_t s_chunks;
static SemaphoreHandle_t s_lock;
static transfer_t s_transfer;
static atomic_bool s_resend; /* the link reconnected, or the command came again: acknowledge again */

static bool running(const char *transfer)
{
    const ota_request_t *req = s_transfer.req;
    return req != NULL && req->id[0] != '\0' && strcmp(req->id, transfer) == 0;
}

/* The length of the chunk at `offset`: `chunk` bytes, the last one shorter. */
static int64_t chunk_len_at(const ota_request_t *req, int64_t offset)
{
    int64_t left = req->size - offset;
    return left < req->chunk ? left : req->chunk;
}

static bool wants(const char *transfer)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    bool wanted = running(transfer);
    xSemaphoreGive(s_lock);
    return wanted;
}

/* Is this chunk the next one in order, whole? Then the update task will write it. */
static bool in_order(int64_t offset, int len)
{
    return offset == s_transfer.queued_upto && len == chunk_len_at(s_transfer.req, offset);
}

/* Into the queue if it has room for this push: window + 2 entries. */
static bool queue(const chunk_t *chunk)
{
    return (int)uxQueueMessagesWaiting(s_chunks) < s_transfer.req->window + 2 &&
           xQueueSend(s_chunks, chunk, 0) == pdPASS;
}

/* On the MQTT task: never blocks. Only the chunks in order take a place in the queue, so a pusher re-sending
   a window, or every chunk twice, cannot crowd out the chunk the device needs. Any other chunk is dropped and
   noted: a copy of one queued or written (a duplicate, or one re-sent after a go-back), or one past a gap
   (one lost or overtaken); a notice in the queue wakes the update task, which answers the notes once every
   chunk queued so far is written (answer_notes()). */
static void offer(const char *transfer, int64_t offset, uint8_t *data, int len)
{
    chunk_t chunk = {.offset = offset, .len = len, .data = data};
    bool queued = false;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    if (running(transfer)) {
        if (in_order(offset, len) && queue(&chunk)) {
            queued = true;
            s_transfer.queued_upto = offset + len;
        } else {
            if (offset < s_transfer.queued_upto) {
                s_transfer.copy = offset;
            } else {
                s_transfer.gap = offset;
            }
            chunk_t notice = {.offset = NONE, .len = 0, .data = NULL};
            if (!s_transfer.notice_queued && queue(&notice)) {
                s_transfer.notice_queued = true;
            }
        }
    }
    xSemaphoreGive(s_lock);
    if (!queued) {
        ESP_LOGD(TAG, "chunk %s@%" PRId64 " not queued", transfer, offset);
        free(data);
    }
}

void ota_push_ack_again(void)
{
    atomic_store(&s_resend, true);
}

esp_err_t ota_push_init(void)
{
    s_chunks = xQueueCreate(QUEUE_SLOTS, sizeof(chunk_t));
    s_lock = xSemaphoreCreateMutex();
    if (s_chunks == NULL || s_lock == NULL) {
        return ESP_ERR_NO_MEM;
    }
    static const mqtt_link_push_handler_t handler = {.wants = wants, .chunk = offer, .reconnected = ota_push_ack_again};
    mqtt_link_set_push_handler(&handler);
    return ESP_OK;
}

static void drain(void)
{
    chunk_t chunk;
    while (xQueueReceive(s_chunks, &chunk, 0) == pdPASS) {
        free(chunk.data);
    }
}

/* Starts (req) or ends (NULL) taking the chunks of a push. */
static void set_transfer(const ota_request_t *req)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    memset(&s_transfer, 0, sizeof(s_transfer));
    s_transfer.req = req;
    s_transfer.gap = s_transfer.copy = NONE;
    drain(); /* chunks of an earlier transfer with the same id */
    xSemaphoreGive(s_lock);
}

/* ignored: the offset of the chunk this answers when it was not written, else -1. It tells the pusher a
   gap (ignored >= next: go back to next) from a copy (ignored < next: nothing to do, but `next` may be news
   to a pusher whose acknowledgements were lost), which the same `next` alone cannot. */
static void send_ack(const push_t *push, int64_t ignored)
{
    cJSON *ack = cJSON_CreateObject();
    cJSON_AddStringToObject(ack, "id", push->req->id);
    cJSON_AddNumberToObject(ack, "next", (double)push->image.received);
    cJSON_AddNumberToObject(ack, "window", push->req->window);
    cJSON_AddNumberToObject(ack, "chunk", push->req->chunk);
    if (ignored >= 0) {
        cJSON_AddNumberToObject(ack, "ignored", (double)ignored);
    }
    if (mqtt_link_publish_json("push_ack", ack, false) < 0) {
        ESP_LOGW(TAG, "acknowledgement of %" PRId64 " not published", push->image.received);
    }
    cJSON_Delete(ack);
}

static bool check_deadlines(push_t *push)
{
    return ota_deadline_check(&push->deadline, true, "no chunk received within idle_timeout_s", &push->out);
}

/* Writes the chunk if it is the one expected: offer() queues only those, and this check keeps flash written
   in sequence whatever reaches it; a chunk out of place is answered as in answer_notes(). False when the
   image was refused. */
static bool take_chunk(push_t *push, const chunk_t *chunk)
{
    int64_t next = push->image.received;
    if (chunk->offset != next || chunk->len != chunk_len_at(push->req, next)) {
        ESP_LOGD(TAG, "chunk at %" PRId64 " (%d bytes) ignored; expecting %" PRId64, chunk->offset, chunk->len, next);
        xSemaphoreTake(s_lock, portMAX_DELAY);
        s_transfer.queued_upto = next; /* never so while offer() and this agree; if not, re-sends are taken */
        xSemaphoreGive(s_lock);
        send_ack(push, chunk->offset);
        return true;
    }
    if (!ota_image_write(&push->image, chunk->data, (size_t)chunk->len, &push->out)) {
        return false;
    }
    ota_deadline_restart_idle(&push->deadline);
    int64_t received = push->image.received;
    bool first_or_last = received == chunk->len || received == push->req->size;
    ota_progress_report(&push->progress, received, push->req->size, first_or_last);
    if (received < push->req->size) {
        send_ack(push, -1); /* the last one is answered by `verifying` or the failure */
    }
    return true;
}

/* The chunks offer() dropped, answered once every chunk queued so far is written, so that `next` is where
   the pusher must go on: past a gap, an acknowledgement with `ignored` at or past `next` (go back to `next`);
   else a copy of a written chunk, one with `ignored` below it, which tells a pusher whose acknowledgements
   were lost (its connection dropped) that the device is further on. */
static void answer_notes(const push_t *push)
{
    int64_t received = push->image.received;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    if (received < s_transfer.queued_upto) {
        xSemaphoreGive(s_lock); /* chunks in order still wait in the queue: answered after them */
        return;
    }
    int64_t gap = s_transfer.gap;
    int64_t copy = s_transfer.copy;
    s_transfer.gap = s_transfer.copy = NONE;
    xSemaphoreGive(s_lock);
    if (gap != NONE && gap >= received) {
        send_ack(push, gap);
    } else if (copy != NONE && copy < received) {
        send_ack(push, copy);
    }
}

static void notice_taken(void)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    s_transfer.notice_queued = false;
    xSemaphoreGive(s_lock);
}

/* Receives chunks until the image is complete (true) or the transfer ends otherwise (false). */
static bool receive(push_t *push)
{
    send_ack(push, -1);
    while (push->image.received < push->req->size) {
        chunk_t chunk;
        if (xQueueReceive(s_chunks, &chunk, pdMS_TO_TICKS(POLL_MS)) == pdPASS) {
            if (chunk.data == NULL) {
                notice_taken();
            } else {
                bool ok = take_chunk(push, &chunk);
                free(chunk.data);
                if (!ok) {
                    return false;
                }
            }
        }
        answer_notes(push); /* also a notice that found the queue full, at the next poll */
        if (push->image.received < push->req->size && !check_deadlines(push)) {
            return false;
        }
        if (atomic_exchange(&s_resend, false)) {
            send_ack(push, -1); /* a pusher that lost its place resumes from here */
        }
    }
    return true;
}

ota_outcome_t ota_push_receive(const ota_request_t *req, bool (*cancelled)(void))
{
    static push_t push;
    memset(&push, 0, sizeof(push));
    push.req = req;
    ota_progress_init(&push.progress, req->id);
    ota_deadline_start(&push.deadline, req, cancelled);
    if (ota_image_init(&push.image, req, req->size, &push.out)) {
        if (req->size > (int64_t)push.image.target->size) {
            /* Known from the command: refused before a chunk is asked for, so nothing is erased. */
            char detail[96];
            snprintf(detail, sizeof(detail), "image of %" PRId64 " bytes does not fit %s (%" PRIu32 " bytes)",
                     req->size, push.image.target->label, push.image.target->size);
            ota_outcome_fail(&push.out, "rejected", OTA_REASON_TOO_LARGE, detail);
        } else {
            ESP_LOGI(TAG, "receiving push %s (%" PRId64 " bytes, window %d x %d bytes) into %s", req->id, req->size,
                     req->window, req->chunk,
                     push.image.target->label);
            atomic_store(&s_resend, false);
            set_transfer(req);
            bool complete = receive(&push);
            set_transfer(NULL);
            if (complete) {
                ota_image_finish(&push.image, &push.out);
            }
        }
    }
    ota_image_free(&push.image);
    return push.out;
}
