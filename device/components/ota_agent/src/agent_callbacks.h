/*
 * The application's callbacks (ota_agent.h), each called from here: an unset callback means "go
 * ahead" for those that may refuse, and a refusal is logged (tag "ota_agent_cb") so a field log
 * says why an update did not start.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include "ota_agent.h"
#include "ota_reason.h"
#include "ota_request.h"

void agent_callbacks_set(const ota_agent_callbacks_t *callbacks);

bool agent_cb_check_start(const char *id, const char *url, const char *version);
bool agent_cb_suspend_tasks(void);
void agent_cb_started(const ota_request_t *req);
void agent_cb_progress(int64_t current, int64_t total);
void agent_cb_finished(const ota_request_t *req);
/* An update (or manifest check) that ended without a reboot: on_up_to_date (with the running version)
   for same_version, else on_failed; then on_resume_tasks. */
void agent_cb_ended(ota_reason_t reason, const char *detail);
void agent_cb_resume_tasks(void);
bool agent_cb_selftest(void);
bool agent_cb_has_install(void);
esp_err_t agent_cb_install(const ota_request_t *req, const char *ca_cert_pem, ota_agent_install_result_t *result);
