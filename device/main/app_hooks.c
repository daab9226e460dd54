#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_console.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "app_hooks.h"

/* One tag for every callback line: "app_cb: <callback> <arguments>" */
static const char *TAG = "app_cb";

static atomic_bool s_hold;
static SemaphoreHandle_t s_selftest_go; /* given by the console's `selftest go` */

static bool on_check_start(const ota_agent_update_t *update, void *ctx)
{
    bool hold = atomic_load(&s_hold);
    ESP_LOGI(TAG, "on_check_start id=%s url=%s version=%s -> %s", update->id, update->url, update->version,
             hold ? "refused (hold on)" : "go");
    return !hold;
}

static bool on_suspend_tasks(void *ctx)
{
    ESP_LOGI(TAG, "on_suspend_tasks");
    return true;
}

static void on_started(const ota_agent_update_t *update, void *ctx)
{
    ESP_LOGI(TAG, "on_started id=%s version=%s", update->id, update->version);
}

static void on_progress(size_t current, size_t total, void *ctx)
{
    ESP_LOGI(TAG, "on_progress %zu/%zu", current, total);
}

static void on_finished(const ota_agent_update_t *update, void *ctx)
{
    ESP_LOGI(TAG, "on_finished id=%s", update->id);
}

static void on_failed(const char *reason, const char *detail, void *ctx)
{
    ESP_LOGI(TAG, "on_failed reason=%s detail=%s", reason, detail);
}

static void on_up_to_date(const char *version, void *ctx)
{
    ESP_LOGI(TAG, "on_up_to_date version=%s", version);
}

static void on_resume_tasks(void *ctx)
{
    ESP_LOGI(TAG, "on_resume_tasks");
}

/* The app's checks beyond "the broker is reachable" (which the agent makes first). The test variants
   (sdkconfig.ci.*) stand for a product's slow, failing or crashing checks. */
static bool selftest(void *ctx)
{
#if CONFIG_HIL_TEST_SELFTEST_DELAY_MS > 0
    /* A test sends `selftest go` once it has done what it needed the pending-verify window for, so the
       window is as long as the test needs, not a fixed time every run waits out. */
    ESP_LOGI(TAG, "self-test: application checks take %d ms or until 'selftest go' (test variant "
             "HIL_TEST_SELFTEST_DELAY_MS)", CONFIG_HIL_TEST_SELFTEST_DELAY_MS);
    if (xSemaphoreTake(s_selftest_go, pdMS_TO_TICKS(CONFIG_HIL_TEST_SELFTEST_DELAY_MS)) == pdTRUE) {
        ESP_LOGI(TAG, "self-test: application checks ended by 'selftest go'");
    }
#endif
#ifdef CONFIG_HIL_TEST_CRASH_BEFORE_CONFIRM
    ESP_LOGE(TAG, "self-test: crashing before confirmation (test variant HIL_TEST_CRASH_BEFORE_CONFIRM)");
    abort();
#endif
#ifdef CONFIG_HIL_TEST_SELFTEST_FAILS
    ESP_LOGE(TAG, "self-test: application check failed (test variant HIL_TEST_SELFTEST_FAILS)");
    return false;
#else
    ESP_LOGI(TAG, "self-test: pass");
    return true;
#endif
}

void app_hooks_fill(ota_agent_callbacks_t *callbacks)
{
    callbacks->on_check_start = on_check_start;
    callbacks->on_suspend_tasks = on_suspend_tasks;
    callbacks->on_started = on_started;
    callbacks->on_progress = on_progress;
    callbacks->on_finished = on_finished;
    callbacks->on_failed = on_failed;
    callbacks->on_up_to_date = on_up_to_date;
    callbacks->on_resume_tasks = on_resume_tasks;
    callbacks->selftest = selftest;
}

static int hold_command(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "on") == 0 || strcmp(argv[1], "off") == 0)) {
        atomic_store(&s_hold, strcmp(argv[1], "on") == 0);
        printf("OK hold %s\n", argv[1]);
        return 0;
    }
    printf("ERROR usage: hold on|off\n");
    return 1;
}

static int selftest_command(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "go") == 0) {
        xSemaphoreGive(s_selftest_go);
        printf("OK selftest go\n");
        return 0;
    }
    printf("ERROR usage: selftest go\n");
    return 1;
}

static esp_err_t register_command(const esp_console_cmd_t *command)
{
    esp_err_t err = esp_console_cmd_register(command);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "registering '%s' failed: %s", command->command, esp_err_to_name(err));
    }
    return err;
}

esp_err_t app_hooks_register_console(void)
{
    s_selftest_go = xSemaphoreCreateBinary();
    if (s_selftest_go == NULL) {
        return ESP_ERR_NO_MEM;
    }
    const esp_console_cmd_t hold = {
        .command = "hold",
        .help = "Refuse OTA updates while on (the app's on_check_start)",
        .hint = "on|off",
        .func = hold_command,
    };
    const esp_console_cmd_t selftest_go = {
        .command = "selftest",
        .help = "End the slow self-test of the test variant HIL_TEST_SELFTEST_DELAY_MS now",
        .hint = "go",
        .func = selftest_command,
    };
    esp_err_t err = register_command(&hold);
    return err == ESP_OK ? register_command(&selftest_go) : err;
}
