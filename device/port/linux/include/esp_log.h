/*
 * Host port of ESP-IDF's esp_log.h (components/log, v5.5): same macros, same line format
 * "L (ms) tag: message" as a real ESP32 prints with colours off (the v5.4+ default).
 */
#pragma once

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ESP_LOG_NONE = 0,
    ESP_LOG_ERROR,
    ESP_LOG_WARN,
    ESP_LOG_INFO,
    ESP_LOG_DEBUG,
    ESP_LOG_VERBOSE,
} esp_log_level_t;

void esp_log_level_set(const char *tag, esp_log_level_t level);
uint32_t esp_log_timestamp(void);
void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#define ESP_LOG_LEVEL_LINE_(level, letter, tag, format, ...) \
    esp_log_write(level, tag, letter " (%lu) %s: " format "\n", (unsigned long)esp_log_timestamp(), tag, ##__VA_ARGS__)

#define ESP_LOGE(tag, format, ...) ESP_LOG_LEVEL_LINE_(ESP_LOG_ERROR, "E", tag, format, ##__VA_ARGS__)
#define ESP_LOGW(tag, format, ...) ESP_LOG_LEVEL_LINE_(ESP_LOG_WARN, "W", tag, format, ##__VA_ARGS__)
#define ESP_LOGI(tag, format, ...) ESP_LOG_LEVEL_LINE_(ESP_LOG_INFO, "I", tag, format, ##__VA_ARGS__)
#define ESP_LOGD(tag, format, ...) ESP_LOG_LEVEL_LINE_(ESP_LOG_DEBUG, "D", tag, format, ##__VA_ARGS__)
#define ESP_LOGV(tag, format, ...) ESP_LOG_LEVEL_LINE_(ESP_LOG_VERBOSE, "V", tag, format, ##__VA_ARGS__)

#ifdef __cplusplus
}
#endif
