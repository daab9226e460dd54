/* The app's OTA download with esp_https_ota (https_installer.c), plugged into the ota_agent component. */
#pragma once

#include "esp_err.h"
#include "ota_agent.h"

/* Logs esp_https_ota's events (ESP_HTTPS_OTA_EVENT on the default loop). */
esp_err_t https_installer_init(void);
/* ota_agent_callbacks_t.install: downloads and installs update->url with esp_https_ota. */
esp_err_t https_installer_install(const ota_agent_update_t *update, ota_agent_install_result_t *result,
                                  void *user_ctx);
