/*
 * The Task Watchdog Timer on the host, after ESP-IDF v5.5.4 components/esp_system/task_wdt/
 * task_wdt.c: the same entry list, the same "feed only when every entry has reset" rule, the
 * same lines when it fires, and with trigger_panic the same abort (the app exits with
 * HOST_EXIT_TASK_WDT so the board reboots it with ESP_RST_TASK_WDT, as the reset-reason hint
 * does on a chip). The hardware timer is a thread waiting on a deadline.
 *
 * Differences from a chip, all because the host has no FreeRTOS scheduler of its own:
 * - idle tasks cannot be watched (idle_core_mask is accepted and checked, nothing more);
 * - "Tasks currently running" names the first task that did not reset (the one most likely
 *   spinning) on CPU 0, and IDLE1 on CPU 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "esp_log.h"
#include "esp_task_wdt.h"
#include "host_board.h"

#define NUMBER_OF_CORES 2
#define BIT(n) (1u << (n))

static const char *TAG = "task_wdt";

typedef struct twdt_entry {
    struct twdt_entry *next;
    TaskHandle_t task_handle; /* NULL for a user entry */
    const char *user_name;    /* NULL for a task entry */
    bool has_reset;
} twdt_entry_t;

typedef struct {
    twdt_entry_t *entries;
    uint32_t timeout_ms;
    uint32_t idle_core_mask;
    bool panic;
    bool waiting_for_task;
    /* the timer */
    bool running;
    struct timespec deadline;
    pthread_t thread;
} twdt_obj_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER; /* the spinlock of task_wdt.c */
static pthread_cond_t s_timer_changed;
static pthread_once_t s_cond_once = PTHREAD_ONCE_INIT;
static twdt_obj_t *p_twdt_obj;

#define RETURN_ON_FALSE(cond, err, msg)                              \
    do {                                                             \
        if (!(cond)) {                                               \
            ESP_LOGE(TAG, "%s(%d): %s", __func__, __LINE__, msg);    \
            return err;                                              \
        }                                                            \
    } while (0)

static void init_cond(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s_timer_changed, &attr);
    pthread_condattr_destroy(&attr);
}

/* --- the timer (esp_task_wdt_impl_*) --- */

static void timer_restart(void)
{
    clock_gettime(CLOCK_MONOTONIC, &p_twdt_obj->deadline);
    uint64_t ns = (uint64_t)p_twdt_obj->deadline.tv_nsec + (uint64_t)p_twdt_obj->timeout_ms * 1000000u;
    p_twdt_obj->deadline.tv_sec += (time_t)(ns / 1000000000u);
    p_twdt_obj->deadline.tv_nsec = (long)(ns % 1000000000u);
    p_twdt_obj->running = true;
    pthread_cond_broadcast(&s_timer_changed);
}

static void timer_stop(void)
{
    p_twdt_obj->running = false;
    pthread_cond_broadcast(&s_timer_changed);
}

/* task_wdt_timer_feed(): restart the timer and clear every entry's has_reset. */
static void timer_feed(void)
{
    timer_restart();
    for (twdt_entry_t *e = p_twdt_obj->entries; e != NULL; e = e->next) {
        e->has_reset = false;
    }
}

/* --- entries --- */

static twdt_entry_t *find_entry(bool is_task, const void *key, bool *all_reset)
{
    twdt_entry_t *found = NULL;
    *all_reset = true;
    for (twdt_entry_t *e = p_twdt_obj->entries; e != NULL; e = e->next) {
        bool match = is_task ? (e->task_handle == key && e->user_name == NULL) : (e == key);
        if (match) {
            found = e;
        } else if (!e->has_reset) {
            *all_reset = false;
        }
    }
    return found;
}

static esp_err_t add_entry(bool is_task, void *entry_data, twdt_entry_t **entry_ret)
{
    twdt_entry_t *entry = calloc(1, sizeof(*entry));
    if (entry == NULL) {
        return ESP_ERR_NO_MEM;
    }
    if (is_task) {
        entry->task_handle = entry_data;
    } else {
        entry->user_name = entry_data;
    }
    pthread_mutex_lock(&s_lock);
    esp_err_t ret = ESP_OK;
    bool all_reset = true;
    if (p_twdt_obj == NULL) {
        ESP_LOGE(TAG, "%s(%d): task watchdog was never initialized", __func__, __LINE__);
        ret = ESP_ERR_INVALID_STATE;
    } else if (is_task && find_entry(true, entry->task_handle, &all_reset) != NULL) {
        ESP_LOGE(TAG, "%s(%d): task is already subscribed", __func__, __LINE__);
        ret = ESP_ERR_INVALID_ARG;
    }
    if (ret != ESP_OK) {
        pthread_mutex_unlock(&s_lock);
        free(entry);
        return ret;
    }
    if (!is_task) {
        find_entry(false, NULL, &all_reset);
    }
    entry->next = p_twdt_obj->entries;
    p_twdt_obj->entries = entry;
    if (p_twdt_obj->waiting_for_task) {
        timer_restart();
        p_twdt_obj->waiting_for_task = false;
    }
    if (all_reset) {
        timer_feed();
    }
    pthread_mutex_unlock(&s_lock);
    *entry_ret = entry;
    return ESP_OK;
}

static esp_err_t delete_entry(bool is_task, void *entry_data)
{
    pthread_mutex_lock(&s_lock);
    if (p_twdt_obj == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): task watchdog was never initialized", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    bool all_reset;
    twdt_entry_t *entry = find_entry(is_task, entry_data, &all_reset);
    if (entry == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): %s", __func__, __LINE__, is_task ? "task not found" : "user not found");
        return ESP_ERR_NOT_FOUND;
    }
    for (twdt_entry_t **link = &p_twdt_obj->entries; *link != NULL; link = &(*link)->next) {
        if (*link == entry) {
            *link = entry->next;
            break;
        }
    }
    if (p_twdt_obj->entries == NULL) {
        p_twdt_obj->waiting_for_task = true;
        timer_stop();
    } else {
        p_twdt_obj->waiting_for_task = false;
    }
    if (!p_twdt_obj->waiting_for_task && all_reset) {
        timer_feed();
    }
    pthread_mutex_unlock(&s_lock);
    free(entry);
    return ESP_OK;
}

/* --- what fires --- */

static uint32_t task_affinity(TaskHandle_t task)
{
    if (task == NULL) {
        return BIT(1) | BIT(0); /* a user entry */
    }
    BaseType_t core = xTaskGetCoreID(task);
    return (core == 0 || core == 1) ? BIT(core) : (BIT(1) | BIT(0));
}

esp_err_t esp_task_wdt_print_triggered_tasks(task_wdt_msg_handler msg_handler, void *opaque, int *cpus_fail)
{
    if (p_twdt_obj == NULL || p_twdt_obj->entries == NULL) {
        return ESP_FAIL;
    }
    const char *caption = "Task watchdog got triggered. The following tasks/users did not reset the watchdog in time:";
    if (msg_handler == NULL) {
        ESP_LOGE(TAG, "%s", caption);
    } else {
        msg_handler(opaque, caption);
    }
    for (twdt_entry_t *e = p_twdt_obj->entries; e != NULL; e = e->next) {
        if (e->has_reset) {
            continue;
        }
        const char *name = e->task_handle != NULL ? pcTaskGetName(e->task_handle) : e->user_name;
        uint32_t affinity = task_affinity(e->task_handle);
        if (cpus_fail != NULL) {
            *cpus_fail |= (int)affinity;
        }
        const char *cpu = affinity == BIT(0) ? " (CPU 0)" : affinity == BIT(1) ? " (CPU 1)" : " (CPU 0/1)";
        if (msg_handler == NULL) {
            ESP_LOGE(TAG, " - %s%s", name, cpu);
        } else {
            msg_handler(opaque, "\n - ");
            msg_handler(opaque, name);
            msg_handler(opaque, cpu);
        }
    }
    return ESP_OK;
}

static void print_backtrace(void)
{
    printf("\n\nBacktrace: 0x400d1234:0x3ffb5e00 0x40086e3a:0x3ffb5e20\n\n");
    fflush(stdout);
}

/* task_wdt_timeout_abort(): the reset-reason hint is the exit code. */
static void timeout_abort(int core, bool current_core)
{
    ESP_LOGE(TAG, "Aborting.");
    if (current_core) {
        ESP_LOGE(TAG, "Print CPU %d (current core) backtrace", core);
    } else {
        ESP_LOGE(TAG, "Print CPU %d backtrace", core);
    }
    host_panic_tail_and_exit(HOST_EXIT_TASK_WDT);
}

/* task_wdt_isr() and task_wdt_timeout_handling(), with the ISR on CPU 0. */
static void timeout_isr(void)
{
    int cpus_fail = 0;
    if (esp_task_wdt_print_triggered_tasks(NULL, NULL, &cpus_fail) != ESP_OK) {
        return;
    }
    const char *running = "IDLE0";
    for (twdt_entry_t *e = p_twdt_obj->entries; e != NULL; e = e->next) {
        if (!e->has_reset) {
            running = e->task_handle != NULL ? pcTaskGetName(e->task_handle) : e->user_name;
        }
    }
    ESP_LOGE(TAG, "Tasks currently running:");
    ESP_LOGE(TAG, "CPU 0: %s", running);
    ESP_LOGE(TAG, "CPU 1: IDLE1");
    if (esp_task_wdt_isr_user_handler != NULL) {
        esp_task_wdt_isr_user_handler();
    }
    if (p_twdt_obj->panic) {
        if ((cpus_fail & BIT(0)) && (cpus_fail & BIT(1))) {
            ESP_LOGE(TAG, "Print CPU 0 (current core) backtrace");
            print_backtrace();
            timeout_abort(1, false); /* the cross-core abort: CPU 1 panics */
        } else if (cpus_fail & BIT(1)) {
            timeout_abort(1, false);
        }
        timeout_abort(0, true);
    }
    if (cpus_fail & BIT(0)) {
        ESP_LOGE(TAG, "Print CPU 0 (current core) backtrace");
        print_backtrace();
    }
    if (cpus_fail & BIT(1)) {
        ESP_LOGE(TAG, "Print CPU 1 backtrace");
        print_backtrace();
    }
}

static bool deadline_passed(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const struct timespec *d = &p_twdt_obj->deadline;
    return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

static void *timer_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_lock);
    while (p_twdt_obj != NULL) {
        if (!p_twdt_obj->running) {
            pthread_cond_wait(&s_timer_changed, &s_lock);
        } else if (deadline_passed()) {
            timeout_isr();
            timer_restart(); /* the ISR feeds the hardware timer: it fires again a period later */
        } else {
            pthread_cond_timedwait(&s_timer_changed, &s_lock, &p_twdt_obj->deadline);
        }
    }
    pthread_mutex_unlock(&s_lock);
    return NULL;
}

/* --- public API --- */

static bool config_ok(const esp_task_wdt_config_t *config)
{
    return config != NULL && config->idle_core_mask < (1u << NUMBER_OF_CORES);
}

esp_err_t esp_task_wdt_init(const esp_task_wdt_config_t *config)
{
    RETURN_ON_FALSE(config_ok(config), ESP_ERR_INVALID_ARG, "Invalid arguments");
    pthread_once(&s_cond_once, init_cond);
    pthread_mutex_lock(&s_lock);
    if (p_twdt_obj != NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): TWDT already initialized", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    twdt_obj_t *obj = calloc(1, sizeof(*obj));
    if (obj == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): insufficient memory", __func__, __LINE__);
        return ESP_ERR_NO_MEM;
    }
    obj->timeout_ms = config->timeout_ms;
    obj->idle_core_mask = config->idle_core_mask;
    obj->panic = config->trigger_panic;
    obj->waiting_for_task = true; /* no idle task to subscribe: nothing is watched yet */
    if (pthread_create(&obj->thread, NULL, timer_thread, NULL) != 0) {
        pthread_mutex_unlock(&s_lock);
        free(obj);
        return ESP_ERR_NO_MEM;
    }
    pthread_detach(obj->thread);
    p_twdt_obj = obj;
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_task_wdt_reconfigure(const esp_task_wdt_config_t *config)
{
    RETURN_ON_FALSE(config_ok(config), ESP_ERR_INVALID_ARG, "Invalid arguments");
    pthread_mutex_lock(&s_lock);
    if (p_twdt_obj == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): TWDT not initialized yet", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    timer_stop();
    p_twdt_obj->panic = config->trigger_panic;
    p_twdt_obj->timeout_ms = config->timeout_ms;
    p_twdt_obj->idle_core_mask = config->idle_core_mask;
    if (p_twdt_obj->entries != NULL) {
        timer_restart();
    }
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_task_wdt_deinit(void)
{
    pthread_mutex_lock(&s_lock);
    if (p_twdt_obj == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): TWDT was never initialized", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    if (p_twdt_obj->entries != NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): Tasks/users still subscribed", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    twdt_obj_t *obj = p_twdt_obj;
    p_twdt_obj = NULL; /* the timer thread sees this and ends */
    pthread_cond_broadcast(&s_timer_changed);
    pthread_mutex_unlock(&s_lock);
    (void)obj; /* the thread may still read it once; it is tiny, leave it */
    return ESP_OK;
}

esp_err_t esp_task_wdt_add(TaskHandle_t task_handle)
{
    RETURN_ON_FALSE(p_twdt_obj != NULL, ESP_ERR_INVALID_STATE, "TWDT was never initialized");
    twdt_entry_t *entry;
    return add_entry(true, task_handle != NULL ? task_handle : xTaskGetCurrentTaskHandle(), &entry);
}

esp_err_t esp_task_wdt_add_user(const char *user_name, esp_task_wdt_user_handle_t *user_handle_ret)
{
    RETURN_ON_FALSE(user_name != NULL && user_handle_ret != NULL, ESP_ERR_INVALID_ARG, "Invalid arguments");
    RETURN_ON_FALSE(p_twdt_obj != NULL, ESP_ERR_INVALID_STATE, "TWDT was never initialized");
    twdt_entry_t *entry;
    esp_err_t ret = add_entry(false, (void *)user_name, &entry);
    if (ret == ESP_OK) {
        *user_handle_ret = (esp_task_wdt_user_handle_t)entry;
    }
    return ret;
}

static esp_err_t reset_entry(bool is_task, const void *key)
{
    pthread_mutex_lock(&s_lock);
    if (p_twdt_obj == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): TWDT was never initialized", __func__, __LINE__);
        return ESP_ERR_INVALID_STATE;
    }
    bool all_reset;
    twdt_entry_t *entry = find_entry(is_task, key, &all_reset);
    if (entry == NULL) {
        pthread_mutex_unlock(&s_lock);
        ESP_LOGE(TAG, "%s(%d): %s", __func__, __LINE__, is_task ? "task not found" : "user handle not found");
        return ESP_ERR_NOT_FOUND;
    }
    entry->has_reset = true;
    if (all_reset) {
        timer_feed();
    }
    pthread_mutex_unlock(&s_lock);
    return ESP_OK;
}

esp_err_t esp_task_wdt_reset(void)
{
    RETURN_ON_FALSE(p_twdt_obj != NULL, ESP_ERR_INVALID_STATE, "TWDT was never initialized");
    return reset_entry(true, xTaskGetCurrentTaskHandle());
}

esp_err_t esp_task_wdt_reset_user(esp_task_wdt_user_handle_t user_handle)
{
    RETURN_ON_FALSE(user_handle != NULL, ESP_ERR_INVALID_ARG, "Invalid arguments");
    return reset_entry(false, user_handle);
}

esp_err_t esp_task_wdt_delete(TaskHandle_t task_handle)
{
    RETURN_ON_FALSE(p_twdt_obj != NULL, ESP_ERR_INVALID_STATE, "TWDT was never initialized");
    return delete_entry(true, task_handle != NULL ? task_handle : xTaskGetCurrentTaskHandle());
}

esp_err_t esp_task_wdt_delete_user(esp_task_wdt_user_handle_t user_handle)
{
    RETURN_ON_FALSE(user_handle != NULL, ESP_ERR_INVALID_ARG, "Invalid arguments");
    return delete_entry(false, user_handle);
}

esp_err_t esp_task_wdt_status(TaskHandle_t task_handle)
{
    RETURN_ON_FALSE(p_twdt_obj != NULL, ESP_ERR_INVALID_STATE, "TWDT was never initialized");
    pthread_mutex_lock(&s_lock);
    bool all_reset;
    twdt_entry_t *entry = find_entry(true, task_handle != NULL ? task_handle : xTaskGetCurrentTaskHandle(), &all_reset);
    pthread_mutex_unlock(&s_lock);
    return entry != NULL ? ESP_OK : ESP_ERR_NOT_FOUND;
}
