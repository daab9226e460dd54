/*
 * The app's MQTT publishes, timed where they happen, for the harness's timeline (host_board.h,
 * HIL_MQTT_TRACE). No ESP-IDF counterpart: a chip's publish times are not observable from outside.
 * A message reaches the test's link only after the broker forwarded it, which amqtt does after
 * acknowledging it; stamped here, it sorts before whatever the device does next (an HTTP request,
 * a restart), on the clock the harness stamps everything else with (CLOCK_MONOTONIC).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "host_board.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_fd = -1;

static void open_trace(void)
{
    const char *path = getenv(HOST_ENV_MQTT_TRACE);
    if (path != NULL && path[0] != '\0') {
        s_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
}

void host_trace_mqtt_publish(const char *topic, const char *data, int len)
{
    pthread_once(&s_once, open_trace);
    if (s_fd < 0 || topic == NULL) {
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    size_t topic_len = strlen(topic);
    size_t data_len = data != NULL && len > 0 ? (size_t)len : 0;
    char head[64];
    int head_len = snprintf(head, sizeof(head), "%lld %zu %zu\n",
                            (long long)now.tv_sec * 1000000000LL + now.tv_nsec, topic_len, data_len);
    size_t total = (size_t)head_len + topic_len + data_len + 1;
    char *record = malloc(total);
    if (record == NULL) {
        return;
    }
    memcpy(record, head, (size_t)head_len);
    memcpy(record + head_len, topic, topic_len);
    if (data_len > 0) {
        memcpy(record + head_len + topic_len, data, data_len);
    }
    record[total - 1] = '\n';
    /* One write with O_APPEND: records from several tasks never interleave. */
    ssize_t written = write(s_fd, record, total);
    (void)written;
    free(record);
}
