/* esp_timer_get_time(): microseconds since the chip's reset, as the chip's timer counts. */
#include <stdlib.h>
#include <time.h>
#include "esp_timer.h"
#include "host_board.h"

static struct timespec s_start_time;
/* The time the ROM and the bootloader took before the app started (the board passes it), so
   the app's log timestamps continue from the bootloader's, as on a chip. */
static int64_t s_boot_time_us;

/* Runs before main(), like the chip's timer that keeps counting from reset into the app. */
__attribute__((constructor)) static void record_start_time(void)
{
    clock_gettime(CLOCK_MONOTONIC, &s_start_time);
    const char *boot = getenv(HOST_ENV_BOOT_TIME_US);
    s_boot_time_us = boot != NULL ? strtoll(boot, NULL, 10) : 0;
}

int64_t esp_timer_get_time(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return s_boot_time_us + (int64_t)(now.tv_sec - s_start_time.tv_sec) * 1000000 +
           (now.tv_nsec - s_start_time.tv_nsec) / 1000;
}
