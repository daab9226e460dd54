/*
 * Host port of esp-mqtt (see mqtt_client.c): the outbox. QoS>0 publishes live here until
 * acknowledged, like esp-mqtt's outbox (lib/mqtt_outbox.c): queued while disconnected, marked
 * transmitted once handed to libmosquitto, sent again after a reconnect, dropped after
 * OUTBOX_EXPIRED_TIMEOUT_MS. Message ids are the client's own, shared with the SUBSCRIBE and
 * UNSUBSCRIBE requests waiting for their acknowledgement.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "mqtt_client_priv.h"

static const char *TAG = MQTT_CLIENT_TAG;

int outbox_get_size_locked(esp_mqtt_client_handle_t client)
{
    int size = 0;
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        size += it->len + (int)strlen(it->topic) + 4;   /* roughly the PUBLISH packet length */
    }
    return size;
}

static bool msg_id_in_use(esp_mqtt_client_handle_t client, int id)
{
    for (outbox_item_t *it = client->outbox; it; it = it->next) {
        if (it->msg_id == id) {
            return true;
        }
    }
    for (pending_req_t *p = client->pending; p; p = p->next) {
        if (p->msg_id == id) {
            return true;
        }
    }
    return false;
}

int new_msg_id(esp_mqtt_client_handle_t client)
{
    for (;;) {
        client->next_msg_id = client->next_msg_id % 65535 + 1;
        if (!msg_id_in_use(client, client->next_msg_id)) {
            return client->next_msg_id;
        }
    }
}

outbox_item_t *outbox_enqueue(esp_mqtt_client_handle_t client, const char *topic, const char *data,
                              int len, int qos, int retain, int msg_id, pending_state_t pending)
{
    outbox_item_t *item = calloc(1, sizeof(*item));
    if (item == NULL) {
        return NULL;
    }
    item->topic = strdup(topic);
    item->payload = malloc(len > 0 ? (size_t)len : 1);
    if (item->topic == NULL || item->payload == NULL) {
        free(item->topic);
        free(item->payload);
        free(item);
        return NULL;
    }
    if (len > 0) {
        memcpy(item->payload, data, (size_t)len);
    }
    item->len = len;
    item->qos = qos;
    item->retain = retain != 0;
    item->msg_id = msg_id;
    item->pending = pending;
    item->tick = platform_tick_get_ms();
    outbox_item_t **link = &client->outbox;
    while (*link) {
        link = &(*link)->next;
    }
    *link = item;
    ESP_LOGD(TAG, "mqtt_enqueue id: %d, type=%d successful", msg_id, 3);
    return item;
}

static void outbox_free_item(outbox_item_t *item)
{
    free(item->topic);
    free(item->payload);
    free(item);
}

void outbox_delete_item(esp_mqtt_client_handle_t client, outbox_item_t *item)
{
    for (outbox_item_t **link = &client->outbox; *link; link = &(*link)->next) {
        if (*link == item) {
            *link = item->next;
            outbox_free_item(item);
            return;
        }
    }
}

void outbox_delete_all_items(esp_mqtt_client_handle_t client)
{
    while (client->outbox) {
        outbox_item_t *it = client->outbox;
        client->outbox = it->next;
        outbox_free_item(it);
    }
}

/* esp-mqtt's mqtt_delete_expired_messages() without MQTT_REPORT_DELETED_MESSAGES. */
void mqtt_delete_expired_messages(esp_mqtt_client_handle_t client)
{
    int64_t now = platform_tick_get_ms();
    pthread_mutex_lock(&client->lock);
    outbox_item_t **link = &client->outbox;
    while (*link) {
        outbox_item_t *it = *link;
        if (now - it->tick > OUTBOX_EXPIRED_TIMEOUT_MS) {
            *link = it->next;
            outbox_free_item(it);
        } else {
            link = &it->next;
        }
    }
    pthread_mutex_unlock(&client->lock);
}

/* ---------------------------------------------------------------- pending (UN)SUBSCRIBE requests */

void pending_clear(esp_mqtt_client_handle_t client)
{
    while (client->pending) {
        pending_req_t *p = client->pending;
        client->pending = p->next;
        free(p);
    }
}

int pending_add(esp_mqtt_client_handle_t client, int mosq_mid, bool subscribe)
{
    pending_req_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return -1;
    }
    p->msg_id = new_msg_id(client);
    p->mosq_mid = mosq_mid;
    p->subscribe = subscribe;
    p->next = client->pending;
    client->pending = p;
    return p->msg_id;
}

int take_pending(esp_mqtt_client_handle_t client, int mid, bool subscribe)
{
    int msg_id = -1;
    pthread_mutex_lock(&client->lock);
    for (pending_req_t **link = &client->pending; *link; link = &(*link)->next) {
        pending_req_t *p = *link;
        if (p->mosq_mid == mid && p->subscribe == subscribe) {
            msg_id = p->msg_id;
            *link = p->next;
            free(p);
            break;
        }
    }
    pthread_mutex_unlock(&client->lock);
    return msg_id;
}
