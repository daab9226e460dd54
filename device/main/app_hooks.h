/*
 * The reference app's side of the OTA agent: its callbacks (logged, so the HIL catalog can check the
 * order and arguments the component passes) and the self-test of a new image.
 */
#pragma once

#include "esp_err.h"
#include "ota_agent.h"

/* Fills callbacks with the app's hooks. */
void app_hooks_fill(ota_agent_callbacks_t *callbacks);
/* Registers the app's console commands: `hold on|off` (while on, on_check_start refuses updates, as a
   product would during a critical operation) and `selftest go` (ends the slow self-test of the test
   variant HIL_TEST_SELFTEST_DELAY_MS). */
esp_err_t app_hooks_register_console(void);
