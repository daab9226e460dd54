#include <stdatomic.h>
#include "mqtt_link.h"
#include "ota_events.h"

static atomic_uint s_seq; /* per boot, so a test sees lost, repeated or reordered events */

cJSON *ota_event_new(const char *request_id, const char *state)
{
    cJSON *event = cJSON_CreateObject();
    cJSON_AddStringToObject(event, "id", request_id != NULL ? request_id : "");
    cJSON_AddNumberToObject(event, "seq", (double)(atomic_fetch_add(&s_seq, 1) + 1));
    cJSON_AddStringToObject(event, "state", state);
    return event;
}

void ota_event_send(cJSON *event)
{
    mqtt_link_publish_json("ota", event, false);
    cJSON_Delete(event);
}

void ota_event_send_reason(const char *request_id, const char *state, const char *reason)
{
    cJSON *event = ota_event_new(request_id, state);
    cJSON_AddStringToObject(event, "reason", reason);
    ota_event_send(event);
}
