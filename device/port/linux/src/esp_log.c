/*
 * ESP_LOGx back end for the host port. Lines go to stdout, which the virtual board relays
 * to its serial console, one whole line per write so tasks never interleave mid-line.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "esp_log.h"
#include "esp_timer.h"

#define MAX_TAG_LEVELS 16

typedef struct {
    char tag[32];
    esp_log_level_t level;
} tag_level_t;

static pthread_mutex_t s_log_lock = PTHREAD_MUTEX_INITIALIZER;
static esp_log_level_t s_default_level = ESP_LOG_INFO;
static tag_level_t s_tag_levels[MAX_TAG_LEVELS];
static size_t s_tag_level_count;

void esp_log_level_set(const char *tag, esp_log_level_t level)
{
    pthread_mutex_lock(&s_log_lock);
    if (strcmp(tag, "*") == 0) {
        s_default_level = level;
    } else {
        size_t i = 0;
        while (i < s_tag_level_count && strcmp(s_tag_levels[i].tag, tag) != 0) {
            i++;
        }
        if (i < MAX_TAG_LEVELS) {
            snprintf(s_tag_levels[i].tag, sizeof(s_tag_levels[i].tag), "%s", tag);
            s_tag_levels[i].level = level;
            if (i == s_tag_level_count) {
                s_tag_level_count++;
            }
        }
    }
    pthread_mutex_unlock(&s_log_lock);
}

static esp_log_level_t level_for(const char *tag)
{
    for (size_t i = 0; i < s_tag_level_count; i++) {
        if (strcmp(s_tag_levels[i].tag, tag) == 0) {
            return s_tag_levels[i].level;
        }
    }
    return s_default_level;
}

uint32_t esp_log_timestamp(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
{
    pthread_mutex_lock(&s_log_lock);
    if (level <= level_for(tag)) {
        va_list args;
        va_start(args, format);
        vfprintf(stdout, format, args);
        va_end(args);
        fflush(stdout);
    }
    pthread_mutex_unlock(&s_log_lock);
}
