/* Deadlines for the host port's timed waits (pthread_cond_timedwait, pthread_mutex_timedlock). */
#pragma once

#include <stdint.h>
#include <time.h>

/* `ms` from now on `clock` (now, for ms <= 0), as the absolute time those calls take: CLOCK_REALTIME for a
   cond with default attributes and for pthread_mutex_timedlock, CLOCK_MONOTONIC for a cond set to it. */
static inline struct timespec host_deadline_ms(clockid_t clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    if (ms <= 0) {
        return ts;
    }
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
