/*
 * Host port of ESP-IDF's esp_task_wdt.h (components/esp_system/include, v5.5.4): the same
 * API and semantics. Subscribed tasks and users must each call esp_task_wdt_reset() within
 * the timeout; when one does not, the port prints the lines task_wdt.c prints and, with
 * trigger_panic, aborts the app (the board reboots with ESP_RST_TASK_WDT).
 *
 * The host has no idle tasks: idle_core_mask is accepted (and checked) but watches nothing.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t timeout_ms;     /**< TWDT timeout duration in milliseconds */
    uint32_t idle_core_mask; /**< Cores whose idle task is watched (none on the host) */
    bool trigger_panic;      /**< Trigger panic when timeout occurs */
} esp_task_wdt_config_t;

typedef struct esp_task_wdt_user_handle_s *esp_task_wdt_user_handle_t;

esp_err_t esp_task_wdt_init(const esp_task_wdt_config_t *config);
esp_err_t esp_task_wdt_reconfigure(const esp_task_wdt_config_t *config);
esp_err_t esp_task_wdt_deinit(void);
esp_err_t esp_task_wdt_add(TaskHandle_t task_handle);
esp_err_t esp_task_wdt_add_user(const char *user_name, esp_task_wdt_user_handle_t *user_handle_ret);
esp_err_t esp_task_wdt_reset(void);
esp_err_t esp_task_wdt_reset_user(esp_task_wdt_user_handle_t user_handle);
esp_err_t esp_task_wdt_delete(TaskHandle_t task_handle);
esp_err_t esp_task_wdt_delete_user(esp_task_wdt_user_handle_t user_handle);
esp_err_t esp_task_wdt_status(TaskHandle_t task_handle);
void __attribute__((weak)) esp_task_wdt_isr_user_handler(void);

typedef void (*task_wdt_msg_handler)(void *opaque, const char *msg);
esp_err_t esp_task_wdt_print_triggered_tasks(task_wdt_msg_handler msg_handler, void *opaque, int *cpus_fail);

#ifdef __cplusplus
}
#endif
