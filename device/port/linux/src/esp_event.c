/*
 * The default event loop: posted events are queued and dispatched by one loop thread, in
 * order, as ESP-IDF's default loop task does.
 *
 * Known difference from the chip: the loop task (sys_evt) has priority 20, above the tasks that post
 * to it, so on a chip it handles an event as soon as it is posted; host threads have no priorities,
 * and a poster may run on before the handler. Where that shows, at a restart (the log lines of
 * esp_https_ota's last events, posted just before esp_restart()), host_event_loop_settle() waits
 * for what was posted to be handled.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "esp_event.h"
#include "esp_log.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "host_event_loop.h"
#include "host_time.h"

#define MAX_HANDLERS 32
#define EVENT_QUEUE_LEN 32

static const char *TAG = "event";

typedef struct {
    esp_event_base_t base;
    int32_t id;
    esp_event_handler_t handler;
    void *arg;
} handler_entry_t;

typedef struct {
    esp_event_base_t base;
    int32_t id;
    void *data;
} posted_event_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static handler_entry_t s_handlers[MAX_HANDLERS];
static size_t s_handler_count;
static QueueHandle_t s_queue;
/* Events posted and not yet handled (queued, or in their handlers), for host_event_loop_settle(). */
static pthread_mutex_t s_pending_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_pending_done = PTHREAD_COND_INITIALIZER;
static int s_pending;
static pthread_t s_loop_thread;

static void pending_add(int delta)
{
    pthread_mutex_lock(&s_pending_lock);
    s_pending += delta;
    if (s_pending == 0) {
        pthread_cond_broadcast(&s_pending_done);
    }
    pthread_mutex_unlock(&s_pending_lock);
}

static bool matches(const handler_entry_t *h, esp_event_base_t base, int32_t id)
{
    bool base_ok = h->base == ESP_EVENT_ANY_BASE || h->base == base ||
                   (base != NULL && h->base != NULL && strcmp(h->base, base) == 0);
    return base_ok && (h->id == ESP_EVENT_ANY_ID || h->id == id);
}

static void dispatch(const posted_event_t *ev)
{
    handler_entry_t snapshot[MAX_HANDLERS];
    pthread_mutex_lock(&s_lock);
    size_t count = s_handler_count;
    memcpy(snapshot, s_handlers, count * sizeof(snapshot[0]));
    pthread_mutex_unlock(&s_lock);
    for (size_t i = 0; i < count; i++) {
        if (matches(&snapshot[i], ev->base, ev->id)) {
            snapshot[i].handler(snapshot[i].arg, ev->base, ev->id, ev->data);
        }
    }
}

static void event_loop_task(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_pending_lock);
    s_loop_thread = pthread_self();
    pthread_mutex_unlock(&s_pending_lock);
    posted_event_t ev;
    for (;;) {
        if (xQueueReceive(s_queue, &ev, portMAX_DELAY) == pdPASS) {
            dispatch(&ev);
            free(ev.data);
            pending_add(-1);
        }
    }
}

void host_event_loop_settle(int timeout_ms)
{
    pthread_mutex_lock(&s_pending_lock);
    bool in_loop = pthread_equal(pthread_self(), s_loop_thread);
    pthread_mutex_unlock(&s_pending_lock);
    if (s_queue == NULL || in_loop) {
        return; /* no loop, or a handler itself restarts: nothing it could wait for */
    }
    struct timespec deadline = host_deadline_ms(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&s_pending_lock);
    while (s_pending > 0 && pthread_cond_timedwait(&s_pending_done, &s_pending_lock, &deadline) == 0) {
    }
    pthread_mutex_unlock(&s_pending_lock);
}

esp_err_t esp_event_loop_create_default(void)
{
    if (s_queue != NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    s_queue = xQueueCreate(EVENT_QUEUE_LEN, sizeof(posted_event_t));
    if (s_queue == NULL) {
        return ESP_ERR_NO_MEM;
    }
    if (xTaskCreate(event_loop_task, "sys_evt", 4096, NULL, 20, NULL) != pdPASS) {
        return ESP_FAIL;
    }
    return ESP_OK;
}

esp_err_t esp_event_loop_delete_default(void)
{
    return ESP_ERR_NOT_SUPPORTED;
}

esp_err_t esp_event_handler_register(esp_event_base_t event_base, int32_t event_id,
                                     esp_event_handler_t event_handler, void *event_handler_arg)
{
    return esp_event_handler_instance_register(event_base, event_id, event_handler,
                                               event_handler_arg, NULL);
}

esp_err_t esp_event_handler_instance_register(esp_event_base_t event_base, int32_t event_id,
                                              esp_event_handler_t event_handler,
                                              void *event_handler_arg,
                                              esp_event_handler_instance_t *instance)
{
    if (event_handler == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s_lock);
    if (s_handler_count == MAX_HANDLERS) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "too many event handlers");
        return ESP_ERR_NO_MEM;
    }
    handler_entry_t *h = &s_handlers[s_handler_count++];
    *h = (handler_entry_t){event_base, event_id, event_handler, event_handler_arg};
    pthread_mutex_unlock(&s_lock);
    if (instance != NULL) {
        *instance = h;
    }
    return ESP_OK;
}

esp_err_t esp_event_handler_unregister(esp_event_base_t event_base, int32_t event_id,
                                       esp_event_handler_t event_handler)
{
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_handler_count; i++) {
        if (s_handlers[i].base == event_base && s_handlers[i].id == event_id &&
            s_handlers[i].handler == event_handler) {
            memmove(&s_handlers[i], &s_handlers[i + 1],
                    (s_handler_count - i - 1) * sizeof(s_handlers[0]));
            s_handler_count--;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_event_post(esp_event_base_t event_base, int32_t event_id, const void *event_data,
                         size_t event_data_size, TickType_t ticks_to_wait)
{
    if (s_queue == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    posted_event_t ev = {event_base, event_id, NULL};
    if (event_data != NULL && event_data_size > 0) {
        /* Copied, as ESP-IDF does, so the poster's buffer may go away. */
        ev.data = malloc(event_data_size);
        if (ev.data == NULL) {
            return ESP_ERR_NO_MEM;
        }
        memcpy(ev.data, event_data, event_data_size);
    }
    pending_add(1);
    if (xQueueSend(s_queue, &ev, ticks_to_wait) != pdPASS) {
        pending_add(-1);
        free(ev.data);
        return ESP_ERR_TIMEOUT;
    }
    return ESP_OK;
}
