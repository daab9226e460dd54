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

static QueueHandle_t s_chunks;
static SemaphoreHandle_t s_lock; /* guards s_transfer: written by the update task, read by the MQTT task */
static char s_transfer[48];      /* the running push's id, "" when none runs */
static atomic_int s_slots;       /* window + 2 of the running push */
static atomic_bool s_resend;     /* the link reconnected: acknowledge again */

static bool wants(const char *transfer)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    bool running = s_transfer[0] != '\0' && strcmp(s_transfer, transfer) == 0;
    xSemaphoreGive(s_lock);
    return running;
}

/* On the MQTT task: never blocks. A full queue drops the chunk; the pusher sends it again when
   the acknowledgements show it missing. */
static void offer(const char *transfer, int64_t offset, uint8_t *data, int len)
{
    chunk_t chunk = {.offset = offset, .len = len, .data = data};
    if (!wants(transfer) || (int)uxQueueMessagesWaiting(s_chunks) >= atomic_load(&s_slots) ||
        xQueueSend(s_chunks, &chunk, 0) != pdPASS) {
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

static void set_transfer(const char *id, int window)
{
    xSemaphoreTake(s_lock, portMAX_DELAY);
    snprintf(s_transfer, sizeof(s_transfer), "%s", id);
    xSemaphoreGive(s_lock);
    atomic_store(&s_slots, window + 2);
    drain(); /* chunks of an earlier transfer with the same id */
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

/* Writes the chunk if it is the one expected, else ignores it (a duplicate, or one after a gap);
   acknowledges either way, so the pusher goes back to `next`. False when the image was refused. */
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
            set_transfer(req->id, req->window);
            bool complete = receive(&push);
            set_transfer("", 0);
            if (complete) {
                ota_image_finish(&push.image, &push.out);
            }
        }
    }
    ota_image_free(&push.image);
    return push.out;
}
