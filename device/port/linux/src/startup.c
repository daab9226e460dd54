/*
 * The host port's main(): what the ESP32's ROM, cpu_start and main_task do before app_main(),
 * with the same log lines, so tests match a virtual boot with the regexes they use on a chip.
 * Not on a chip: the process ends with the harness process that runs its board (HIL_BOARD_PID).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_task_wdt.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "host_board.h"
#include "sdkconfig.h"

void app_main(void);
void host_install_panic_handler(void);

static void print_app_info(void)
{
    const esp_app_desc_t *desc = esp_app_get_description();
    char elf_sha[17];
    esp_app_get_elf_sha256(elf_sha, sizeof(elf_sha));
    ESP_LOGI("cpu_start", "Multicore app");
    ESP_LOGI("cpu_start", "Pro cpu start user code");
    ESP_LOGI("cpu_start", "cpu freq: 160000000 Hz");
    ESP_LOGI("app_init", "Application information:");
    ESP_LOGI("app_init", "Project name:     %s", desc->project_name);
    ESP_LOGI("app_init", "App version:      %s", desc->version);
    ESP_LOGI("app_init", "Compile time:     %s %s", desc->date, desc->time);
    ESP_LOGI("app_init", "ELF file SHA256:  %s...", elf_sha);
    ESP_LOGI("app_init", "ESP-IDF:          %s", desc->idf_ver);
}

static void main_task(void *arg)
{
    (void)arg;
    ESP_LOGI("main_task", "Started on CPU0");
    ESP_LOGI("main_task", "Calling app_main()");
    app_main();
    ESP_LOGI("main_task", "Returned from app_main()");
    vTaskDelete(NULL);
}

/* The harness process that runs the board is its power supply: when it dies (a killed test or lab), the app
   dies too, instead of running on as an orphan with its flash file and broker session. */
static void die_with_the_board(void)
{
    const char *board = getenv(HOST_ENV_BOARD_PID);
    if (board == NULL) {
        return; /* started by hand, not by a board */
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)atol(board)) {
        _exit(1); /* the board was gone before prctl() took effect */
    }
}

int main(void)
{
    die_with_the_board();
    /* Line-buffered stdout: the board relays whole log lines to the serial console. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    host_install_panic_handler();
    print_app_info();
#ifdef CONFIG_ESP_TASK_WDT_INIT
#ifdef CONFIG_ESP_TASK_WDT_PANIC
    const bool twdt_panic = true;
#else
    const bool twdt_panic = false;
#endif
    /* esp_system's startup does this on a chip (the host has no idle tasks to subscribe). */
    const esp_task_wdt_config_t twdt_config = {
        .timeout_ms = CONFIG_ESP_TASK_WDT_TIMEOUT_S * 1000,
        .idle_core_mask = 0,
        .trigger_panic = twdt_panic,
    };
    esp_task_wdt_init(&twdt_config);
#endif
    /* CONFIG_ESP_MAIN_TASK_AFFINITY_CPU0, the default */
    xTaskCreatePinnedToCore(main_task, "main", 3584, NULL, 1, NULL, 0);
    /* The scheduler never returns on the chip; here the process lives until esp_restart(),
       a crash or the board pulls the plug. */
    for (;;) {
        pause();
    }
}
