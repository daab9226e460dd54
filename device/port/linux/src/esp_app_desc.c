/*
 * esp_app_get_description() for the virtual board: the descriptor of the image the bootloader
 * loaded, read from flash, so a patched version is what the running app reports.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_app_format.h"
#include "host_board.h"

static esp_app_desc_t s_desc;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void load_descriptor(void)
{
    uint32_t offset = host_running_app_offset() + sizeof(esp_image_header_t) +
                      sizeof(esp_image_segment_header_t);
    memcpy(&s_desc, host_flash_data() + offset, sizeof(s_desc));
}

uint32_t host_running_app_offset(void)
{
    const char *offset = getenv(HOST_ENV_APP_OFFSET);
    return offset != NULL ? (uint32_t)strtoul(offset, NULL, 0) : 0;
}

const esp_app_desc_t *esp_app_get_description(void)
{
    pthread_once(&s_once, load_descriptor);
    return &s_desc;
}

int esp_app_get_elf_sha256(char *dst, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const esp_app_desc_t *desc = esp_app_get_description();
    size_t n = 0;
    for (size_t i = 0; i < sizeof(desc->app_elf_sha256) && n + 2 < size; i++) {
        dst[n++] = hex[desc->app_elf_sha256[i] >> 4];
        dst[n++] = hex[desc->app_elf_sha256[i] & 0xF];
    }
    if (size > 0) {
        dst[n] = '\0';
    }
    return (int)n;
}
