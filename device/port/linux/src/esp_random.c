/* esp_random() and esp_fill_random() for the virtual chip: getrandom(2), which does not fail for these sizes
   once the kernel's pool is ready (a chip's RNG is true random once Wi-Fi or the bootloader's entropy runs). */
#include <sys/random.h>
#include "esp_random.h"

void esp_fill_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
}

uint32_t esp_random(void)
{
    uint32_t value;
    esp_fill_random(&value, sizeof(value));
    return value;
}
