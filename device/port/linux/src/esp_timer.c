/* esp_timer_get_time(): microseconds since this boot, as the chip's timer counts from reset. */
#include <time.h>
#include "esp_timer.h"

static struct timespec s_boot_time;

/* Runs before main(), like the chip's timer starting at reset. */
__attribute__((constructor)) static void record_boot_time(void)
{
    clock_gettime(CLOCK_MONOTONIC, &s_boot_time);
}

int64_t esp_timer_get_time(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - s_boot_time.tv_sec) * 1000000 +
           (now.tv_nsec - s_boot_time.tv_nsec) / 1000;
}
