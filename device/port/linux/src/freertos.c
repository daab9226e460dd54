/*
 * The FreeRTOS calls the firmware uses, on POSIX threads. Priorities and stack sizes are
 * accepted and ignored: the host scheduler decides, which is fine for the firmware's tasks
 * because they only block on queues, event groups and delays.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/event_groups.h"
#include "host_time.h"

struct host_task {
    pthread_t thread;
    TaskFunction_t fn;
    void *arg;
    char name[configMAX_TASK_NAME_LEN];
    BaseType_t core;
};

static __thread struct host_task *s_current_task;

struct host_queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint8_t *items;
    UBaseType_t length;
    UBaseType_t item_size;
    UBaseType_t head;
    UBaseType_t count;
};

/* Every kind of semaphore as FreeRTOS builds them all on its queues: a count with a ceiling. A mutex
   starts at 1 and a binary semaphore at 0, both with ceiling 1. (No priority inheritance: tasks are
   threads of equal priority here.) */
struct host_semaphore {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    UBaseType_t count;
    UBaseType_t max;
};

struct host_event_group {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    EventBits_t bits;
};

/* Absolute deadline on `clock` for a wait of `ticks`: CLOCK_MONOTONIC for the pthread conds below,
   CLOCK_REALTIME for pthread_mutex_timedlock (the only clock it takes). */
static struct timespec deadline_on(clockid_t clock, TickType_t ticks)
{
    return host_deadline_ms(clock, (int64_t)pdTICKS_TO_MS(ticks));
}

static void init_monotonic_cond(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* Waits on cond until woken or the deadline passes; returns false on timeout. */
static bool wait_cond(pthread_cond_t *cond, pthread_mutex_t *lock, TickType_t ticks,
                      const struct timespec *deadline)
{
    if (ticks == portMAX_DELAY) {
        pthread_cond_wait(cond, lock);
        return true;
    }
    return pthread_cond_timedwait(cond, lock, deadline) != ETIMEDOUT;
}

static void *task_trampoline(void *arg)
{
    struct host_task *task = arg;
    s_current_task = task;
    task->fn(task->arg);
    return NULL;
}

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t pxTaskCode, const char *const pcName,
                                   const configSTACK_DEPTH_TYPE uxStackDepth, void *const pvParameters,
                                   UBaseType_t uxPriority, TaskHandle_t *const pxCreatedTask,
                                   const BaseType_t xCoreID)
{
    (void)uxStackDepth;
    (void)uxPriority;
    struct host_task *task = calloc(1, sizeof(*task));
    if (task == NULL) {
        return pdFAIL;
    }
    task->fn = pxTaskCode;
    task->arg = pvParameters;
    task->core = xCoreID;
    snprintf(task->name, sizeof(task->name), "%s", pcName != NULL ? pcName : "");
    if (pthread_create(&task->thread, NULL, task_trampoline, task) != 0) {
        free(task);
        return pdFAIL;
    }
    pthread_detach(task->thread);
    if (pxCreatedTask != NULL) {
        *pxCreatedTask = task;
    }
    return pdPASS;
}

BaseType_t xTaskCreate(TaskFunction_t pxTaskCode, const char *const pcName,
                       const configSTACK_DEPTH_TYPE uxStackDepth, void *const pvParameters,
                       UBaseType_t uxPriority, TaskHandle_t *const pxCreatedTask)
{
    return xTaskCreatePinnedToCore(pxTaskCode, pcName, uxStackDepth, pvParameters, uxPriority, pxCreatedTask,
                                   tskNO_AFFINITY);
}

TaskHandle_t xTaskGetCurrentTaskHandle(void)
{
    if (s_current_task == NULL) {
        struct host_task *task = calloc(1, sizeof(*task));
        if (task != NULL) {
            task->thread = pthread_self();
            task->core = tskNO_AFFINITY;
            snprintf(task->name, sizeof(task->name), "pthread");
        }
        s_current_task = task;
    }
    return s_current_task;
}

char *pcTaskGetName(TaskHandle_t xTaskToQuery)
{
    struct host_task *task = xTaskToQuery != NULL ? xTaskToQuery : xTaskGetCurrentTaskHandle();
    return task->name;
}

BaseType_t xTaskGetCoreID(TaskHandle_t xTask)
{
    struct host_task *task = xTask != NULL ? xTask : xTaskGetCurrentTaskHandle();
    return task->core;
}

void vTaskDelete(TaskHandle_t xTaskToDelete)
{
    /* Only self-deletion is used (vTaskDelete(NULL) at the end of a task function). */
    if (xTaskToDelete == NULL) {
        pthread_exit(NULL);
    }
}

void vTaskDelay(const TickType_t xTicksToDelay)
{
    uint64_t ms = pdTICKS_TO_MS(xTicksToDelay);
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)((ms % 1000) * 1000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

TickType_t xTaskGetTickCount(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (TickType_t)(((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) *
                        configTICK_RATE_HZ / 1000);
}

QueueHandle_t xQueueCreate(UBaseType_t uxQueueLength, UBaseType_t uxItemSize)
{
    struct host_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    q->items = calloc(uxQueueLength, uxItemSize);
    if (q->items == NULL) {
        free(q);
        return NULL;
    }
    q->length = uxQueueLength;
    q->item_size = uxItemSize;
    pthread_mutex_init(&q->lock, NULL);
    init_monotonic_cond(&q->changed);
    return q;
}

BaseType_t xQueueSend(QueueHandle_t q, const void *pvItemToQueue, TickType_t xTicksToWait)
{
    struct timespec deadline = deadline_on(CLOCK_MONOTONIC, xTicksToWait);
    pthread_mutex_lock(&q->lock);
    while (q->count == q->length) {
        if (xTicksToWait == 0 || !wait_cond(&q->changed, &q->lock, xTicksToWait, &deadline)) {
            pthread_mutex_unlock(&q->lock);
            return pdFAIL;
        }
    }
    UBaseType_t tail = (q->head + q->count) % q->length;
    memcpy(q->items + (size_t)tail * q->item_size, pvItemToQueue, q->item_size);
    q->count++;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    return pdPASS;
}

BaseType_t xQueueReceive(QueueHandle_t q, void *pvBuffer, TickType_t xTicksToWait)
{
    struct timespec deadline = deadline_on(CLOCK_MONOTONIC, xTicksToWait);
    pthread_mutex_lock(&q->lock);
    while (q->count == 0) {
        if (xTicksToWait == 0 || !wait_cond(&q->changed, &q->lock, xTicksToWait, &deadline)) {
            pthread_mutex_unlock(&q->lock);
            return pdFAIL;
        }
    }
    memcpy(pvBuffer, q->items + (size_t)q->head * q->item_size, q->item_size);
    q->head = (q->head + 1) % q->length;
    q->count--;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    return pdPASS;
}

UBaseType_t uxQueueMessagesWaiting(const QueueHandle_t q)
{
    pthread_mutex_lock(&q->lock);
    UBaseType_t count = q->count;
    pthread_mutex_unlock(&q->lock);
    return count;
}

void vQueueDelete(QueueHandle_t q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
    free(q->items);
    free(q);
}

SemaphoreHandle_t xSemaphoreCreateCounting(UBaseType_t uxMaxCount, UBaseType_t uxInitialCount)
{
    if (uxMaxCount == 0 || uxInitialCount > uxMaxCount) {
        return NULL;
    }
    struct host_semaphore *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        pthread_mutex_init(&s->lock, NULL);
        init_monotonic_cond(&s->changed);
        s->count = uxInitialCount;
        s->max = uxMaxCount;
    }
    return s;
}

SemaphoreHandle_t xSemaphoreCreateMutex(void)
{
    return xSemaphoreCreateCounting(1, 1);
}

SemaphoreHandle_t xSemaphoreCreateBinary(void)
{
    return xSemaphoreCreateCounting(1, 0); /* created empty: the first take waits for a give */
}

BaseType_t xSemaphoreTake(SemaphoreHandle_t s, TickType_t xBlockTime)
{
    struct timespec deadline = deadline_on(CLOCK_MONOTONIC, xBlockTime);
    pthread_mutex_lock(&s->lock);
    while (s->count == 0) {
        if (xBlockTime == 0 || !wait_cond(&s->changed, &s->lock, xBlockTime, &deadline)) {
            pthread_mutex_unlock(&s->lock);
            return pdFALSE;
        }
    }
    s->count--;
    pthread_mutex_unlock(&s->lock);
    return pdTRUE;
}

BaseType_t xSemaphoreGive(SemaphoreHandle_t s)
{
    pthread_mutex_lock(&s->lock);
    bool given = s->count < s->max; /* a full semaphore refuses the give, as FreeRTOS does */
    if (given) {
        s->count++;
        pthread_cond_signal(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return given ? pdTRUE : pdFALSE;
}

void vSemaphoreDelete(SemaphoreHandle_t s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s);
}

EventGroupHandle_t xEventGroupCreate(void)
{
    struct host_event_group *g = calloc(1, sizeof(*g));
    if (g != NULL) {
        pthread_mutex_init(&g->lock, NULL);
        init_monotonic_cond(&g->changed);
    }
    return g;
}

EventBits_t xEventGroupSetBits(EventGroupHandle_t g, const EventBits_t uxBitsToSet)
{
    pthread_mutex_lock(&g->lock);
    g->bits |= uxBitsToSet;
    EventBits_t bits = g->bits;
    pthread_cond_broadcast(&g->changed);
    pthread_mutex_unlock(&g->lock);
    return bits;
}

EventBits_t xEventGroupClearBits(EventGroupHandle_t g, const EventBits_t uxBitsToClear)
{
    pthread_mutex_lock(&g->lock);
    EventBits_t before = g->bits; /* FreeRTOS returns the bits before clearing */
    g->bits &= ~uxBitsToClear;
    pthread_mutex_unlock(&g->lock);
    return before;
}

EventBits_t xEventGroupGetBits(EventGroupHandle_t g)
{
    pthread_mutex_lock(&g->lock);
    EventBits_t bits = g->bits;
    pthread_mutex_unlock(&g->lock);
    return bits;
}

static bool bits_satisfied(EventBits_t bits, EventBits_t wanted, BaseType_t wait_all)
{
    return wait_all ? (bits & wanted) == wanted : (bits & wanted) != 0;
}

EventBits_t xEventGroupWaitBits(EventGroupHandle_t g, const EventBits_t uxBitsToWaitFor,
                                const BaseType_t xClearOnExit, const BaseType_t xWaitForAllBits,
                                TickType_t xTicksToWait)
{
    struct timespec deadline = deadline_on(CLOCK_MONOTONIC, xTicksToWait);
    pthread_mutex_lock(&g->lock);
    while (!bits_satisfied(g->bits, uxBitsToWaitFor, xWaitForAllBits)) {
        if (xTicksToWait == 0 || !wait_cond(&g->changed, &g->lock, xTicksToWait, &deadline)) {
            break;
        }
    }
    EventBits_t bits = g->bits;
    if (xClearOnExit && bits_satisfied(bits, uxBitsToWaitFor, xWaitForAllBits)) {
        g->bits &= ~uxBitsToWaitFor;
    }
    pthread_mutex_unlock(&g->lock);
    return bits;
}
