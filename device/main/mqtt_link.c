/*
 * MQTT session on esp-mqtt. Incoming commands are copied and queued so that the esp-mqtt task
 * never runs OTA work, and a long payload split over several DATA events is reassembled (or
 * refused when it is over MQTT_LINK_MAX_COMMAND_LEN).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_bit_defs.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "mqtt_client.h"
#include "app_config.h"
#include "mqtt_link.h"

static const char *TAG = "mqtt_link";

#define CONNECTED_BIT BIT0
#define FLUSHED_BIT   BIT1
#define TOPIC_MAX 128
#define COMMAND_QUEUE_LEN 8

typedef struct {
    char *payload; /* NUL-terminated copy; NULL marks an over-long payload */
    int len;
} command_t;

static esp_mqtt_client_handle_t s_client;
static EventGroupHandle_t s_events;
static QueueHandle_t s_commands;
static mqtt_link_command_cb_t s_on_command;
static char s_topic_cmd[TOPIC_MAX];
static char s_topic_all[TOPIC_MAX];
static char s_topic_online[TOPIC_MAX];
static volatile int s_last_msg_id;

/* Reassembly of a message that esp-mqtt delivers in several DATA events. */
static char *s_partial;
static int s_partial_len;

static void make_topic(char *out, const char *device_id, const char *kind)
{
    snprintf(out, TOPIC_MAX, "%s/%s/%s", app_config_get()->topic_prefix, device_id, kind);
}

static void queue_command(char *payload, int len)
{
    command_t cmd = {payload, len};
    if (xQueueSend(s_commands, &cmd, 0) != pdPASS) {
        ESP_LOGW(TAG, "command queue full, dropping a command");
        free(payload);
    }
}

static bool is_command_topic(const esp_mqtt_event_t *event)
{
    return (event->topic_len == (int)strlen(s_topic_cmd) && memcmp(event->topic, s_topic_cmd, event->topic_len) == 0) ||
           (event->topic_len == (int)strlen(s_topic_all) && memcmp(event->topic, s_topic_all, event->topic_len) == 0);
}

static void on_data(const esp_mqtt_event_t *event)
{
    if (event->current_data_offset == 0) {
        free(s_partial);
        s_partial = NULL;
        s_partial_len = 0;
        if (!is_command_topic(event)) {
            return;
        }
        if (event->total_data_len > MQTT_LINK_MAX_COMMAND_LEN) {
            queue_command(NULL, event->total_data_len);
            return;
        }
        s_partial = malloc((size_t)event->total_data_len + 1);
        if (s_partial == NULL) {
            ESP_LOGE(TAG, "no memory for a %d byte command", event->total_data_len);
            return;
        }
    }
    if (s_partial == NULL) {
        return; /* the rest of a refused or foreign message */
    }
    memcpy(s_partial + event->current_data_offset, event->data, (size_t)event->data_len);
    s_partial_len = event->current_data_offset + event->data_len;
    if (s_partial_len >= event->total_data_len) {
        s_partial[s_partial_len] = '\0';
        queue_command(s_partial, s_partial_len);
        s_partial = NULL;
    }
}

static void on_connected(void)
{
    ESP_LOGI(TAG, "connected to the broker");
    esp_mqtt_client_publish(s_client, s_topic_online, "online", 0, 1, 1);
    esp_mqtt_client_subscribe(s_client, s_topic_cmd, 1);
    esp_mqtt_client_subscribe(s_client, s_topic_all, 1);
    xEventGroupSetBits(s_events, CONNECTED_BIT);
}

static void mqtt_event_handler(void *arg, esp_event_base_t base, int32_t event_id, void *event_data)
{
    (void)arg;
    (void)base;
    esp_mqtt_event_handle_t event = event_data;
    switch ((esp_mqtt_event_id_t)event_id) {
    case MQTT_EVENT_CONNECTED:
        on_connected();
        break;
    case MQTT_EVENT_DISCONNECTED:
        ESP_LOGW(TAG, "disconnected from the broker");
        xEventGroupClearBits(s_events, CONNECTED_BIT);
        break;
    case MQTT_EVENT_PUBLISHED:
        if (event->msg_id == s_last_msg_id) {
            xEventGroupSetBits(s_events, FLUSHED_BIT);
        }
        break;
    case MQTT_EVENT_DATA:
        on_data(event);
        break;
    case MQTT_EVENT_ERROR:
        ESP_LOGW(TAG, "MQTT error event");
        break;
    default:
        break;
    }
}

static void command_task(void *arg)
{
    (void)arg;
    command_t cmd;
    for (;;) {
        if (xQueueReceive(s_commands, &cmd, portMAX_DELAY) == pdPASS) {
            s_on_command(cmd.payload, cmd.len);
            free(cmd.payload);
        }
    }
}

esp_err_t mqtt_link_start(mqtt_link_command_cb_t on_command)
{
    const app_config_t *cfg = app_config_get();
    s_on_command = on_command;
    s_events = xEventGroupCreate();
    s_commands = xQueueCreate(COMMAND_QUEUE_LEN, sizeof(command_t));
    if (s_events == NULL || s_commands == NULL) {
        return ESP_ERR_NO_MEM;
    }
    make_topic(s_topic_cmd, cfg->device_id, "cmd");
    make_topic(s_topic_all, "all", "cmd");
    make_topic(s_topic_online, cfg->device_id, "online");

    esp_mqtt_client_config_t mqtt_cfg = {
        .broker.address.uri = cfg->broker_url,
        .credentials.client_id = cfg->device_id,
        .credentials.username = cfg->broker_username[0] ? cfg->broker_username : NULL,
        .credentials.authentication.password = cfg->broker_password[0] ? cfg->broker_password : NULL,
        .session.last_will = {.topic = s_topic_online, .msg = "offline", .qos = 1, .retain = 1},
        .session.keepalive = 15,
        .network.reconnect_timeout_ms = 1000,
    };
    s_client = esp_mqtt_client_init(&mqtt_cfg);
    if (s_client == NULL) {
        ESP_LOGE(TAG, "esp_mqtt_client_init failed (check broker_url)");
        return ESP_FAIL;
    }
    esp_err_t err = esp_mqtt_client_register_event(s_client, ESP_EVENT_ANY_ID, mqtt_event_handler, NULL);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_mqtt_client_register_event failed: %s", esp_err_to_name(err));
        return err;
    }
    if (xTaskCreate(command_task, "commands", 8192, NULL, 5, NULL) != pdPASS) {
        return ESP_ERR_NO_MEM;
    }
    err = esp_mqtt_client_start(s_client);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_mqtt_client_start failed: %s", esp_err_to_name(err));
    }
    return err;
}

/* pdMS_TO_TICKS() multiplies in TickType_t (32 bits) and overflows for long waits. */
static TickType_t ms_to_ticks(int timeout_ms)
{
    if (timeout_ms < 0) {
        return portMAX_DELAY;
    }
    uint64_t ticks = (uint64_t)timeout_ms * configTICK_RATE_HZ / 1000;
    return ticks < portMAX_DELAY ? (TickType_t)ticks : portMAX_DELAY - 1;
}

bool mqtt_link_wait_connected(int timeout_ms)
{
    if (s_events == NULL) {
        return false; /* mqtt_link_start() was not called: there is no broker to wait for */
    }
    EventBits_t bits = xEventGroupWaitBits(s_events, CONNECTED_BIT, pdFALSE, pdTRUE, ms_to_ticks(timeout_ms));
    return (bits & CONNECTED_BIT) != 0;
}

bool mqtt_link_is_connected(void)
{
    return s_events != NULL && (xEventGroupGetBits(s_events) & CONNECTED_BIT) != 0;
}

int mqtt_link_publish_json(const char *kind, const cJSON *json, bool retain)
{
    if (s_client == NULL) {
        return -1; /* no broker configured: nothing can be published */
    }
    char topic[TOPIC_MAX];
    make_topic(topic, app_config_get()->device_id, kind);
    char *text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        return -1;
    }
    xEventGroupClearBits(s_events, FLUSHED_BIT);
    int msg_id = esp_mqtt_client_publish(s_client, topic, text, 0, 1, retain ? 1 : 0);
    if (msg_id > 0) {
        s_last_msg_id = msg_id;
    } else {
        ESP_LOGW(TAG, "publish to %s failed (%d)", topic, msg_id);
    }
    cJSON_free(text);
    return msg_id;
}

bool mqtt_link_flush(int timeout_ms)
{
    if (s_events == NULL) {
        return false;
    }
    EventBits_t bits = xEventGroupWaitBits(s_events, FLUSHED_BIT, pdFALSE, pdTRUE, ms_to_ticks(timeout_ms));
    return (bits & FLUSHED_BIT) != 0;
}
