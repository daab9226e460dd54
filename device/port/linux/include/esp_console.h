/*
 * Host port of esp_console.h (components/console, v5.5): command registration, esp_console_run
 * and a UART REPL, where the "UART" is the virtual board's serial console (stdin/stdout).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"
#include "freertos/FreeRTOS.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t max_cmdline_length;
    size_t max_cmdline_args;
    uint32_t heap_alloc_caps;
    int hint_color;
    int hint_bold;
} esp_console_config_t;

typedef struct {
    uint32_t max_history_len;
    const char *history_save_path;
    uint32_t task_stack_size;
    uint32_t task_priority;
    BaseType_t task_core_id;
    const char *prompt;
    size_t max_cmdline_length;
} esp_console_repl_config_t;

#define tskNO_AFFINITY ((BaseType_t)0x7FFFFFFF)

#define ESP_CONSOLE_REPL_CONFIG_DEFAULT() \
{                                         \
        .max_history_len = 32,            \
        .history_save_path = NULL,        \
        .task_stack_size = 4096,          \
        .task_priority = 2,               \
        .task_core_id = tskNO_AFFINITY,   \
        .prompt = NULL,                   \
        .max_cmdline_length = 0,          \
}

typedef struct {
    int channel;
    int baud_rate;
    int tx_gpio_num;
    int rx_gpio_num;
} esp_console_dev_uart_config_t;

#define ESP_CONSOLE_DEV_UART_CONFIG_DEFAULT() \
{                                             \
    .channel = 0,                             \
    .baud_rate = 115200,                      \
    .tx_gpio_num = -1,                        \
    .rx_gpio_num = -1,                        \
}

typedef int (*esp_console_cmd_func_t)(int argc, char **argv);
typedef int (*esp_console_cmd_func_with_context_t)(void *context, int argc, char **argv);

typedef struct {
    const char *command;
    const char *help;
    const char *hint;
    esp_console_cmd_func_t func;
    void *argtable;
    esp_console_cmd_func_with_context_t func_w_context;
    void *context;
} esp_console_cmd_t;

typedef struct esp_console_repl_s esp_console_repl_t;
struct esp_console_repl_s {
    esp_err_t (*del)(esp_console_repl_t *repl);
};

esp_err_t esp_console_cmd_register(const esp_console_cmd_t *cmd);
esp_err_t esp_console_run(const char *cmdline, int *cmd_ret);
esp_err_t esp_console_register_help_command(void);
esp_err_t esp_console_new_repl_uart(const esp_console_dev_uart_config_t *dev_config,
                                    const esp_console_repl_config_t *repl_config,
                                    esp_console_repl_t **ret_repl);
esp_err_t esp_console_start_repl(esp_console_repl_t *repl);

#ifdef __cplusplus
}
#endif
