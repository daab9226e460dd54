#include <stddef.h>
#include <string.h>
#include "cJSON.h"
#include "commands.h"
#include "manifest.h"
#include "mqtt_link.h"
#include "ota_updater.h"
#include "ota_reason.h"
#include "ota_request.h"
#include "status.h"

typedef struct {
    const char *type;                        /* the command's "type" */
    void (*handle)(const cJSON *command);    /* called with the parsed command object */
} command_entry_t;

static void handle_status(const cJSON *command)
{
    (void)command;
    status_publish();
}

static void handle_check(const cJSON *command)
{
    (void)command;
    manifest_request_check();
}

static const command_entry_t COMMANDS[] = {
    {"ota", ota_updater_handle_ota},
    {"ota_trigger", ota_updater_handle_ota}, /* the seed systems' name for the same command */
    {"push", ota_updater_handle_push},
    {"cancel", ota_updater_handle_cancel},
    {"status", handle_status},
    {"reboot", ota_updater_handle_reboot},
    {"check", handle_check},
    {"mesh_ota", ota_updater_handle_mesh_rx}, /* from a mesh root: an image through the mesh (mesh_dist.c) */
};

static const command_entry_t *find(const char *type)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
        if (strcmp(COMMANDS[i].type, type) == 0) {
            return &COMMANDS[i];
        }
    }
    return NULL;
}

void commands_handle(const mqtt_link_command_t *cmd)
{
    if (cmd->kind == MQTT_LINK_COMMAND_QUEUE_FULL) {
        ota_updater_reject(cmd->id, OTA_REASON_BUSY, "command queue full; send it again later");
        return;
    }
    if (cmd->kind == MQTT_LINK_COMMAND_TOO_LONG) {
        ota_updater_reject("", OTA_REASON_BAD_COMMAND, "command longer than 4096 bytes");
        return;
    }
    if (!ota_json_depth_ok(cmd->payload, (size_t)cmd->len, OTA_JSON_MAX_DEPTH)) {
        ota_updater_reject("", OTA_REASON_BAD_COMMAND, "JSON nested too deeply for a command");
        return;
    }
    cJSON *command = cJSON_ParseWithLength(cmd->payload, (size_t)cmd->len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(command, "type");
    if (command == NULL || !cJSON_IsObject(command) || !cJSON_IsString(type)) {
        ota_updater_reject("", OTA_REASON_BAD_COMMAND, "not a JSON object with a string \"type\"");
    } else {
        const command_entry_t *entry = find(type->valuestring);
        if (entry != NULL) {
            entry->handle(command);
        } else {
            ota_updater_reject("", OTA_REASON_BAD_COMMAND, "unknown command type");
        }
    }
    cJSON_Delete(command);
}
