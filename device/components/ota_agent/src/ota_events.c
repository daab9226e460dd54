#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "mqtt_link.h"
#include "ota_events.h"

/* Numbers events and publishes them in one step, so that events sent from several tasks (the
 * command task's rejections, the OTA task's progress) leave in the order of their seq. */
static SemaphoreHandle_t s_send_lock;
static unsigned s_seq; /* per boot, so a test sees lost, repeated or reordered events */

esp_err_t ota_events_init(void)
{
    s_send_lock = xSemaphoreCreateMutex();
    return s_send_lock != NULL ? ESP_OK : ESP_ERR_NO_MEM;
}

cJSON *ota_event_new(const char *request_id, const char *state)
{
    cJSON *event = cJSON_CreateObject();
    cJSON_AddStringToObject(event, "id", request_id != NULL ? request_id : "");
    cJSON_AddNumberToObject(event, "seq", 0); /* numbered when sent */
    cJSON_AddStringToObject(event, "state", state);
    return event;
}

int ota_event_send(cJSON *event)
{
    xSemaphoreTake(s_send_lock, portMAX_DELAY);
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(event, "seq"), (double)++s_seq);
    int msg_id = mqtt_link_publish_json("ota", event, false);
    xSemaphoreGive(s_send_lock);
    cJSON_Delete(event);
    return msg_id;
}

void ota_event_add_reason(cJSON *event, ota_reason_t reason)
{
    cJSON_AddStringToObject(event, "reason", ota_reason_name(reason));
}

void ota_event_send_reason(const char *request_id, const char *state, ota_reason_t reason)
{
    cJSON *event = ota_event_new(request_id, state);
    ota_event_add_reason(event, reason);
    ota_event_send(event);
}
