/*
 * ota_agent: an MQTT-commanded OTA agent with rollback, as an ESP-IDF component.
 *
 * The agent owns the device's MQTT link (commands in, OTA events and status out, docs/protocol.md),
 * downloads updates over HTTP(S) into the passive OTA slot, reboots into them, and runs the new
 * image's self-test, which confirms it or rolls it back. It tells the application what it does
 * through the callbacks below, modelled on the manifest OTA library in the project's reference
 * systems (onCheckStart ... onResumeTasks). See this component's README.md.
 *
 * Typical use, from app_main (after nvs_flash_init() and esp_event_loop_create_default()):
 *
 *     ota_agent_config_t config = OTA_AGENT_CONFIG_DEFAULT();
 *     config.callbacks.on_suspend_tasks = pause_my_tasks;
 *     config.callbacks.on_resume_tasks = resume_my_tasks;
 *     config.callbacks.selftest = my_selftest;
 *     ESP_ERROR_CHECK(ota_agent_init(&config));
 *     ESP_ERROR_CHECK(ota_agent_start());
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The update a callback is about. Strings stay valid for the duration of the call only. */
typedef struct {
    const char *id;      /* the request id of the command ("manifest" for manifest mode) */
    const char *url;     /* where the image is downloaded from; "" for a push (the image comes through the broker) */
    const char *version; /* the version the request or manifest announced; "" when it gave none */
    const char *ca_cert_pem; /* the provisioned CA for https downloads (`config set ota_ca_cert`), or NULL */
} ota_agent_update_t;

/*
 * Called on the agent's tasks (never from an ISR), one at a time; keep them short: the agent waits.
 * Any of them may be NULL. user_ctx is ota_agent_callbacks_t.user_ctx.
 *
 * An update that runs:    on_check_start, on_suspend_tasks, on_started, on_progress..., on_finished, reboot.
 * An update that fails:   on_check_start, on_suspend_tasks, on_started, on_progress..., on_failed, on_resume_tasks.
 * Nothing newer to take:  on_check_start, on_suspend_tasks, on_up_to_date, on_resume_tasks for a manifest
 *                         check; a command learns the version from the image header, so there on_started
 *                         (and maybe on_progress) come before on_up_to_date.
 * Refused (on_check_start false): nothing else; the request is answered `rejected`/`busy`.
 * After the reboot, the new image calls selftest (see below) before it confirms itself.
 */
/* How an application's own installer failed (ota_agent_callbacks_t.install). */
typedef struct {
    const char *reason; /* the protocol reason ("http_status", "wrong_chip", "same_version", ... as in
                           docs/protocol.md); NULL: the agent derives it from the returned error */
    int http_status;    /* the server's status code for "http_status", else 0 */
    const char *detail; /* a sentence for the event, or NULL for the error's name */
} ota_agent_install_result_t;

typedef struct {
    /* An update is about to start (a command arrived, or a manifest check is due). Return false to
       refuse it: the request is answered `rejected` with reason `busy`, and nothing else is called. */
    bool (*on_check_start)(const ota_agent_update_t *update, void *user_ctx);
    /* Pause what must not run during a download. Return false if that failed: the update is refused as
       by on_check_start, after on_resume_tasks (so a partial suspension can be undone). */
    bool (*on_suspend_tasks)(void *user_ctx);
    /* The download starts (after the `accepted` event). */
    void (*on_started)(const ota_agent_update_t *update, void *user_ctx);
    /* Bytes received so far and the image size; total is 0 while the size is unknown (chunked
       transfer without a size in the request). Called with each `downloading` event. */
    void (*on_progress)(size_t current, size_t total, void *user_ctx);
    /* The image is written, verified and set to boot; the device reboots right after this returns. */
    void (*on_finished)(const ota_agent_update_t *update, void *user_ctx);
    /* The update ended without a reboot: reason is the event's reason name (docs/protocol.md, e.g.
       "http_status", "sha256_mismatch", "cancelled"), detail a sentence or "". */
    void (*on_failed)(const char *reason, const char *detail, void *user_ctx);
    /* The offered version is the one running (or, for a manifest, not newer): nothing to do. */
    void (*on_up_to_date)(const char *version, void *user_ctx);
    /* Undo on_suspend_tasks: called after on_failed, on_up_to_date and a failed on_suspend_tasks. */
    void (*on_resume_tasks)(void *user_ctx);
    /* The application's part of a new image's self-test, called on its first boot once the broker is
       reachable: return true to confirm the image (esp_ota_mark_app_valid_cancel_rollback), false to
       roll back to the previous one (esp_ota_mark_app_invalid_rollback_and_reboot). NULL: confirm. */
    bool (*selftest)(void *user_ctx);
    /* Optional: the application installs the image itself (e.g. with esp_https_ota) instead of the
       agent's downloader; the agent still answers the command, reports, reboots and runs the self-test.
       Called on the update task after on_started. Write the image to esp_ota_get_next_update_partition()
       and set it to boot (esp_https_ota_finish() does both), calling ota_agent_report_progress() as data
       arrives and giving up when ota_agent_cancel_requested(); return ESP_OK, or the error with
       result->reason set where the error alone does not say why (see ota_agent_install_result_t).
       The agent's own checks (sha256, size, retries, deadlines) do not apply to such an install.
       A `push` (the image through the broker) never calls it: the agent writes a pushed image itself. */
    esp_err_t (*install)(const ota_agent_update_t *update, ota_agent_install_result_t *result, void *user_ctx);
    void *user_ctx;
} ota_agent_callbacks_t;

typedef struct {
    ota_agent_callbacks_t callbacks;
} ota_agent_config_t;

#define OTA_AGENT_CONFIG_DEFAULT() {.callbacks = {0}}

/*
 * Loads the agent's settings from NVS (device id, Wi-Fi, broker, manifest: `config set` on the
 * serial console, or the Kconfig defaults) and starts the console REPL with the agent's commands.
 * Needs nvs_flash_init() and esp_event_loop_create_default() first. Call once.
 */
esp_err_t ota_agent_init(const ota_agent_config_t *config);

/*
 * Connects (Wi-Fi when CONFIG_OTA_AGENT_MANAGE_WIFI, then the broker), starts the update task and the
 * manifest checks, and settles the boot: a new image runs its self-test and confirms itself or rolls
 * back (this call then does not return), a confirmed one reports how the last update ended. Returns
 * ESP_ERR_INVALID_STATE when no broker_url is configured (the console stays up for provisioning).
 */
esp_err_t ota_agent_start(void);

/* The device id of the topics (`<prefix>/<device id>/...`). Valid after ota_agent_init(). */
const char *ota_agent_device_id(void);

/* Publishes payload (QoS 1, not retained) to `<prefix>/<device id>/<kind>` on the agent's MQTT link,
   for the application's own messages. While the link is down esp-mqtt keeps the message in its outbox
   and sends it on reconnection. ESP_ERR_INVALID_STATE before ota_agent_start() connected the link. */
esp_err_t ota_agent_publish(const char *kind, const char *payload);

/* For an application's installer: bytes written so far and the image size (0: unknown). Sends the
   `downloading` events (throttled as the agent's own) and calls on_progress. */
void ota_agent_report_progress(size_t current, size_t total);

/* For an application's installer: true once a `cancel` command asked to stop the running update. */
bool ota_agent_cancel_requested(void);

#ifdef __cplusplus
}
#endif
