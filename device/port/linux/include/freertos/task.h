/* Host port of freertos/task.h: the task calls ESP-IDF firmware uses, on POSIX threads. */
#pragma once

#include "freertos/FreeRTOS.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*TaskFunction_t)(void *);
typedef struct host_task *TaskHandle_t;

#define tskNO_AFFINITY ((BaseType_t)0x7FFFFFFF)
#define configMAX_TASK_NAME_LEN 16

BaseType_t xTaskCreate(TaskFunction_t pxTaskCode, const char *const pcName,
                       const configSTACK_DEPTH_TYPE uxStackDepth, void *const pvParameters,
                       UBaseType_t uxPriority, TaskHandle_t *const pxCreatedTask);
BaseType_t xTaskCreatePinnedToCore(TaskFunction_t pxTaskCode, const char *const pcName,
                                   const configSTACK_DEPTH_TYPE uxStackDepth, void *const pvParameters,
                                   UBaseType_t uxPriority, TaskHandle_t *const pxCreatedTask,
                                   const BaseType_t xCoreID);
void vTaskDelete(TaskHandle_t xTaskToDelete);
/* The calling task; a thread the port did not create (a library's) gets a handle on first call. */
TaskHandle_t xTaskGetCurrentTaskHandle(void);
char *pcTaskGetName(TaskHandle_t xTaskToQuery);
/* The core a task is pinned to, or tskNO_AFFINITY (xTaskCreate on a dual-core ESP32). */
BaseType_t xTaskGetCoreID(TaskHandle_t xTask);
void vTaskDelay(const TickType_t xTicksToDelay);
TickType_t xTaskGetTickCount(void);

#ifdef __cplusplus
}
#endif
