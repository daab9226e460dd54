/*
 * esp_console for the host port. The REPL reads lines from stdin, which the virtual board
 * feeds from its serial console, and prints the same messages as ESP-IDF's REPL
 * (components/console/esp_console_repl_internal.c) for unknown commands and errors.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_console.h"
#include "esp_log.h"
#include "freertos/task.h"

#define MAX_COMMANDS 32
#define MAX_ARGS 16
#define DEFAULT_MAX_LINE 256
#define MAX_CMDLINE 4096

typedef struct {
    esp_console_repl_t repl;
    char prompt[32];
    size_t max_line;
} host_repl_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static esp_console_cmd_t s_commands[MAX_COMMANDS];
static size_t s_command_count;

esp_err_t esp_console_cmd_register(const esp_console_cmd_t *cmd)
{
    if (cmd == NULL || cmd->command == NULL || strchr(cmd->command, ' ') != NULL ||
        (cmd->func == NULL && cmd->func_w_context == NULL)) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s_lock);
    esp_err_t err = ESP_OK;
    if (s_command_count == MAX_COMMANDS) {
        err = ESP_ERR_NO_MEM;
    } else {
        s_commands[s_command_count++] = *cmd;
    }
    pthread_mutex_unlock(&s_lock);
    return err;
}

static const esp_console_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; i < s_command_count; i++) {
        if (strcmp(s_commands[i].command, name) == 0) {
            return &s_commands[i];
        }
    }
    return NULL;
}

/* Splits on spaces, honouring double quotes, as esp_console_split_argv does. */
static int split_argv(char *line, char **argv, int max_args)
{
    int argc = 0;
    char *p = line;
    while (*p != '\0' && argc < max_args) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        char quote = (*p == '"') ? *p++ : 0;
        argv[argc++] = p;
        while (*p != '\0' && (quote ? *p != quote : (*p != ' ' && *p != '\t'))) {
            p++;
        }
        if (*p != '\0') {
            *p++ = '\0';
        }
    }
    return argc;
}

esp_err_t esp_console_run(const char *cmdline, int *cmd_ret)
{
    char buf[MAX_CMDLINE];
    if (strlen(cmdline) >= sizeof(buf)) {
        return ESP_ERR_INVALID_ARG;
    }
    strcpy(buf, cmdline);
    char *argv[MAX_ARGS];
    int argc = split_argv(buf, argv, MAX_ARGS);
    if (argc == 0) {
        return ESP_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s_lock);
    const esp_console_cmd_t *cmd = find_command(argv[0]);
    esp_console_cmd_t copy = cmd != NULL ? *cmd : (esp_console_cmd_t){0};
    pthread_mutex_unlock(&s_lock);
    if (cmd == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    *cmd_ret = copy.func != NULL ? copy.func(argc, argv) : copy.func_w_context(copy.context, argc, argv);
    return ESP_OK;
}

static int help_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_command_count; i++) {
        printf("%s %s\n  %s\n\n", s_commands[i].command, s_commands[i].hint ? s_commands[i].hint : "",
               s_commands[i].help ? s_commands[i].help : "");
    }
    pthread_mutex_unlock(&s_lock);
    return 0;
}

esp_err_t esp_console_register_help_command(void)
{
    const esp_console_cmd_t help = {
        .command = "help",
        .help = "Print the summary of all registered commands",
        .func = help_command,
    };
    return esp_console_cmd_register(&help);
}

static void run_line(char *line)
{
    int ret = 0;
    esp_err_t err = esp_console_run(line, &ret);
    if (err == ESP_ERR_NOT_FOUND) {
        printf("Unrecognized command\n");
    } else if (err == ESP_ERR_INVALID_ARG) {
        /* an empty line: nothing to do */
    } else if (err == ESP_OK && ret != ESP_OK) {
        printf("Command returned non-zero error code: 0x%x (%s)\n", ret, esp_err_to_name(ret));
    } else if (err != ESP_OK) {
        printf("Internal error: %s\n", esp_err_to_name(err));
    }
    fflush(stdout);
}

/* Reads one line; an over-long line is discarded whole and reported, never split into two. */
static bool read_line(char *line, size_t size, bool *too_long)
{
    *too_long = false;
    if (fgets(line, (int)size, stdin) == NULL) {
        return false;
    }
    while (strchr(line, '\n') == NULL && !feof(stdin)) {
        *too_long = true;
        if (fgets(line, (int)size, stdin) == NULL) {
            break;
        }
    }
    line[strcspn(line, "\r\n")] = '\0';
    return true;
}

static void repl_task(void *arg)
{
    host_repl_t *repl = arg;
    char *line = malloc(repl->max_line + 2);
    bool too_long;
    printf("%s\n", repl->prompt);
    fflush(stdout);
    while (line != NULL && read_line(line, repl->max_line + 2, &too_long)) {
        if (too_long) {
            printf("Command line too long (max %zu characters)\n", repl->max_line);
        } else {
            run_line(line);
        }
        printf("%s\n", repl->prompt);
        fflush(stdout);
    }
    free(line);
    vTaskDelete(NULL); /* stdin closed: the board is shutting this chip down */
}

static esp_err_t repl_delete(esp_console_repl_t *repl)
{
    (void)repl;
    return ESP_ERR_NOT_SUPPORTED;
}

esp_err_t esp_console_new_repl_uart(const esp_console_dev_uart_config_t *dev_config,
                                    const esp_console_repl_config_t *repl_config,
                                    esp_console_repl_t **ret_repl)
{
    (void)dev_config;
    if (repl_config == NULL || ret_repl == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    host_repl_t *repl = calloc(1, sizeof(*repl));
    if (repl == NULL) {
        return ESP_ERR_NO_MEM;
    }
    snprintf(repl->prompt, sizeof(repl->prompt), "%s", repl_config->prompt ? repl_config->prompt : "esp> ");
    repl->max_line = repl_config->max_cmdline_length ? repl_config->max_cmdline_length : DEFAULT_MAX_LINE;
    repl->repl.del = repl_delete;
    *ret_repl = &repl->repl;
    return ESP_OK;
}

esp_err_t esp_console_start_repl(esp_console_repl_t *repl)
{
    if (repl == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    return xTaskCreate(repl_task, "console_repl", 4096, repl, 2, NULL) == pdPASS ? ESP_OK : ESP_FAIL;
}
