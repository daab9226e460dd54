/*
 * Host port of the FreeRTOS types and macros ESP-IDF code uses (ESP-IDF v5.5 FreeRTOS kernel).
 * Tasks are POSIX threads and one tick is one millisecond.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef int32_t BaseType_t;
typedef uint32_t UBaseType_t;
typedef uint32_t TickType_t;
typedef uint32_t configSTACK_DEPTH_TYPE;

#define pdFALSE         ((BaseType_t)0)
#define pdTRUE          ((BaseType_t)1)
#define pdPASS          pdTRUE
#define pdFAIL          pdFALSE
#define portMAX_DELAY   ((TickType_t)0xffffffffUL)
#define configTICK_RATE_HZ 1000
#define portTICK_PERIOD_MS ((TickType_t)1000 / configTICK_RATE_HZ)
#define pdMS_TO_TICKS(xTimeInMs) ((TickType_t)(((uint64_t)(xTimeInMs) * configTICK_RATE_HZ) / 1000U))
#define pdTICKS_TO_MS(xTicks) ((uint32_t)(((uint64_t)(xTicks) * 1000U) / configTICK_RATE_HZ))
