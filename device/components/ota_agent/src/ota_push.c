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
/* The queue holds window + 2 chunks at most: the window the pusher may have in flight, and room for
   a re-sent chunk or two that cross an acknowledgement. */
#define QUEUE_SLOTS (OTA_PUSH_WINDOW_MAX + 2)

typedef struct {
    int64_t offset;
    int len;
    uint8_t *data; /* malloc'd by mqtt_link; freed by whoever drops or consumes the chunk */
} chunk_t;

typedef struct {
    const ota_request_t *req;
    ota_outcome_t out;
    ota_image_t image;
    ota_progress_t progress;
    ota_deadline_t deadline;
} push_t;

/* The running push, as the MQTT task sees it. s_lock guards it: the update task sets it, the MQTT task
   reads it and advances `queued_upto`. */
typedef struct {
    char id[48];         /* "" when no push runs */
    int slots;           /* window + 2 */
    int64_t size;        /* the image's length */
    int chunk;           /* bytes in every chunk but the last */
    int64_t queued_upto; /* end of the chunks queued in order from offset 0: the next one the device needs */
} transfer_t;

static QueueHandle_t s_chunks;
static SemaphoreHandle_t s_lock;
static transfer_t s_transfer;
static atomic_bool s_resend; /* the link reconnected: acknowledge again */

static bool running(const char *transfer)
{
    return s_transfer.id[0] != '\0' && strcmp(s_transfer.id, transfer) == 0;
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
    int64_t left = s_transfer.size - offset;
    return offset == s_transfer.queued_upto && len == (left < s_transfer.chunk ? left : s_transfer.chunk);
}

/* On the MQTT task: never blocks. A chunk before `queued_upto` (a duplicate, or one re-sent after a
   go-back) is written or queued to be written already: it is dropped without taking a slot, so that a
   pusher re-sending a window cannot fill the queue with copies and crowd out the chunk the device needs.
   Any other chunk is queued (one past a gap too: the update task answers it, and the pusher goes back);
   a full queue drops it, and the pusher sends it again when the acknowledgements show it missing. */
static void offer(const char *transfer, int64_t offset, uint8_t *data, int len)
{
    chunk_t chunk = {.offset = offset, .len = len, .data = data};
    bool queued = false;
    xSemaphoreTake(s_lock, portMAX_DELAY);
    if (running(transfer) && offset >= s_transfer.queued_upto &&
        (int)uxQueueMessagesWaiting(s_chunks) < s_transfer.slots && xQueueSend(s_chunks, &chunk, 0) == pdPASS) {
        queued = true;
        if (in_order(offset, len)) {
            s_transfer.queued_upto = offset + len;
        }
    }
    xSemaphoreGive(s_lock);
    if (!queued) {
        ESP_LOGD(TAG, "chunk %s@%" PRId64 " dropped", transfer, offset);
        free(data);
    }
}

static void reconnected(void)
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
    static const mqtt_link_push_handler_t handler = {.wants = wants, .chunk = offer, .reconnected = reconnected};
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
    if (req != NULL) {
        snprintf(s_transfer.id, sizeof(s_transfer.id), "%s", req->id);
        s_transfer.slots = req->window + 2;
        s_transfer.size = req->size;
        s_transfer.chunk = req->chunk;
    }
    drain(); /* chunks of an earlier transfer with the same id */
    xSemaphoreGive(s_lock);
}

/* ignored: the offset of the chunk this answers when it was not written, else -1. It tells the pusher a
   gap (ignored > next: go back to next) from a duplicate (ignored < next: nothing to do), which the same
   `next` alone cannot: after a go-back every chunk re-sent that had arrived already is answered too. */
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

/* Writes the chunk if it is the one expected, else ignores it (one after a gap: duplicates of written or
   queued chunks never get here, see offer()); acknowledges either way, so the pusher goes back to `next`. False when the image was refused. */
static bool take_chunk(push_t *push, const chunk_t *chunk)
{
    int64_t next = push->image.received;
    int64_t left = push->req->size - next;
    int64_t expected_len = left < push->req->chunk ? left : push->req->chunk;
    if (chunk->offset != next || chunk->len != expected_len) {
        ESP_LOGD(TAG, "chunk at %" PRId64 " (%d bytes) ignored; expecting %" PRId64, chunk->offset, chunk->len, next);
        send_ack(push, chunk->offset);
        return true;
    }
    if (!ota_image_write(&push->image, chunk->data, (size_t)chunk->len, &push->out)) {
        return false;
    }
    ota_deadline_restart_idle(&push->deadline);
    int64_t received = push->image.received;
    ota_progress_report(&push->progress, received, push->req->size, received == chunk->len || received == push->req->size);
    if (received < push->req->size) {
        send_ack(push, -1); /* the last one is answered by `verifying` or the failure */
    }
    return true;
}

/* Receives chunks until the image is complete (true) or the transfer ends otherwise (false). */
static bool receive(push_t *push)
{
    send_ack(push, -1);
    while (push->image.received < push->req->size) {
        chunk_t chunk;
        if (xQueueReceive(s_chunks, &chunk, pdMS_TO_TICKS(POLL_MS)) == pdPASS) {
            bool ok = take_chunk(push, &chunk);
            free(chunk.data);
            if (!ok) {
                return false;
            }
        }
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
