/*
 * Serial console (esp_console REPL). Provisioning happens here: `config set` stores a value in
 * NVS and `reboot` applies it. Secrets are never printed back.
 */
#include <stdio.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_console.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "sdkconfig.h"
#include "agent_config.h"
#include "agent_console.h"
#include "mqtt_link.h"
#include "status.h"

static const char *TAG = "console";

static void print_key(const char *key, void *ctx)
{
    (void)ctx;
    char value[AGENT_CONFIG_CA_MAX];
    agent_config_get_value(key, value, sizeof(value), true);
    printf("%s=%s\n", key, value);
}

static int config_command(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "show") == 0 && argc == 2) {
        agent_config_for_each_key(print_key, NULL);
        return 0;
    }
    if (strcmp(sub, "reset") == 0 && argc == 2) {
        esp_err_t err = agent_config_reset();
        printf(err == ESP_OK ? "OK config reset; reboot to apply\n" : "ERROR config reset failed: %s\n",
               esp_err_to_name(err));
        return err == ESP_OK ? 0 : 1;
    }
    if (strcmp(sub, "get") == 0 && argc == 3) {
        char value[AGENT_CONFIG_CA_MAX];
        if (agent_config_get_value(argv[2], value, sizeof(value), true) != ESP_OK) {
            printf("ERROR unknown key '%s' (see 'config show')\n", argv[2]);
            return 1;
        }
        printf("%s=%s\n", argv[2], value);
        return 0;
    }
    if (strcmp(sub, "set") == 0 && argc == 4) {
        esp_err_t err = agent_config_set(argv[2], argv[3]);
        if (err == ESP_ERR_NOT_FOUND) {
            printf("ERROR unknown key '%s' (see 'config show')\n", argv[2]);
        } else if (err == ESP_ERR_INVALID_ARG) {
            char expected[96];
            agent_config_describe(argv[2], expected, sizeof(expected));
            printf("ERROR invalid value for '%s': expected %s\n", argv[2], expected);
        } else if (err != ESP_OK) {
            printf("ERROR saving '%s' failed: %s\n", argv[2], esp_err_to_name(err));
        } else {
            printf("OK %s set; reboot to apply\n", argv[2]);
        }
        return err == ESP_OK ? 0 : 1;
    }
    printf("ERROR usage: config set <key> <value> | config get <key> | config show | config reset\n");
    return 1;
}

static int status_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const esp_partition_t *running = esp_ota_get_running_partition();
    printf("version=%s partition=%s ota_state=%s reset_reason=%s mqtt=%s\n", esp_app_get_description()->version,
           running != NULL ? running->label : "?", status_ota_state_name(), status_reset_reason_name(),
           mqtt_link_is_connected() ? "connected" : "disconnected");
    return 0;
}

static int reboot_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ESP_LOGI(TAG, "rebooting on console request");
    esp_restart();
}

esp_err_t agent_console_start(void)
{
    const esp_console_cmd_t commands[] = {
        {.command = "config", .help = "Device configuration (persisted in NVS)",
         .hint = "set <key> <value> | get <key> | show | reset", .func = config_command},
        {.command = "status", .help = "Print version, partition, OTA state and connection", .func = status_command},
        {.command = "reboot", .help = "Restart the device", .func = reboot_command},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        esp_err_t err = esp_console_cmd_register(&commands[i]);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "registering '%s' failed: %s", commands[i].command, esp_err_to_name(err));
            return err;
        }
    }
    esp_err_t err = esp_console_register_help_command();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "registering 'help' failed: %s", esp_err_to_name(err));
        return err;
    }
    esp_console_repl_t *repl = NULL;
    esp_console_repl_config_t repl_config = ESP_CONSOLE_REPL_CONFIG_DEFAULT();
    repl_config.prompt = "hil>";
    repl_config.max_cmdline_length = AGENT_CONFIG_CA_MAX + 64; /* room for `config set ota_ca_cert <base64>` */
    repl_config.task_stack_size = 8192; /* commands handle ~1 KB values; the default 4096 is tight */
    /* esp_console_new_repl_uart() exists only with the console on a UART (ESP_CONSOLE_UART_DEFAULT
       or _CUSTOM, the ESP32 default); other console choices have their own constructor. */
#if CONFIG_ESP_CONSOLE_UART_DEFAULT || CONFIG_ESP_CONSOLE_UART_CUSTOM || CONFIG_IDF_TARGET_LINUX
    esp_console_dev_uart_config_t uart_config = ESP_CONSOLE_DEV_UART_CONFIG_DEFAULT();
    err = esp_console_new_repl_uart(&uart_config, &repl_config, &repl);
#elif CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG
    esp_console_dev_usb_serial_jtag_config_t jtag_config = ESP_CONSOLE_DEV_USB_SERIAL_JTAG_CONFIG_DEFAULT();
    err = esp_console_new_repl_usb_serial_jtag(&jtag_config, &repl_config, &repl);
#elif CONFIG_ESP_CONSOLE_USB_CDC
    esp_console_dev_usb_cdc_config_t cdc_config = ESP_CONSOLE_DEV_CDC_CONFIG_DEFAULT();
    err = esp_console_new_repl_usb_cdc(&cdc_config, &repl_config, &repl);
#else
#error "The serial console is how this firmware is provisioned: enable a console (ESP_CONSOLE_UART_DEFAULT)"
#endif
    if (err == ESP_OK) {
        err = esp_console_start_repl(repl);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "console REPL failed to start: %s", esp_err_to_name(err));
    }
    return err;
}
