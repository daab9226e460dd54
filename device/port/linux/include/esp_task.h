/*
 * Host port of ESP-IDF's esp_task.h (components/esp_system/include/esp_task.h, v5.5.4): the
 * priorities and stack sizes of ESP-IDF's own tasks, of which only the Bluetooth controller's are
 * reproduced (esp_bt.h's BT_CONTROLLER_INIT_CONFIG_DEFAULT() and esp_bt_controller_init() use them).
 * The other ESP_TASK_* values depend on options the host port does not have and are left out.
 */
#pragma once

#include "sdkconfig.h"
#include "freertos/FreeRTOS.h"

/* configMAX_PRIORITIES of ESP-IDF's FreeRTOSConfig.h; the host port's FreeRTOS.h does not define it
   (its tasks are threads, whose priority it ignores). */
#define ESP_TASK_PRIO_MAX (25)
#define ESP_TASK_PRIO_MIN (0)

#define ESP_TASK_BT_CONTROLLER_PRIO   (ESP_TASK_PRIO_MAX - 2)
#ifdef CONFIG_NEWLIB_NANO_FORMAT
#define TASK_EXTRA_STACK_SIZE      (0)
#else
#define TASK_EXTRA_STACK_SIZE      (512)
#endif

#define BT_TASK_EXTRA_STACK_SIZE      TASK_EXTRA_STACK_SIZE
#define ESP_TASK_BT_CONTROLLER_STACK  (3584 + TASK_EXTRA_STACK_SIZE)
