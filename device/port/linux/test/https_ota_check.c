/*
 * port_check's esp_https_ota command: the host port's esp_https_ota driven as an app drives it,
 * against a real local server (tests_unit/test_host_port_https_ota.py). Results are key=value
 * lines; every ESP_HTTPS_OTA_EVENT is printed by a default-loop handler as it is dispatched:
 *
 *   ota_event=<NAME> [chip_id=<n> | min_chip_rev_full=<n> | written=<n> | subtype=<n>]
 *
 *   https_ota <url> [api=steps|oneshot] [partial=0|1] [max_req=<bytes>] [buf=<bytes>]
 *             [timeout=<ms>] [cert=<pem file>] [bulk=0|1] [resume=<bytes>] [end=finish|abort]
 *       oneshot: esp_https_ota(); prints ota=<err>.
 *       steps (default): esp_https_ota_begin (ota_begin=), esp_https_ota_get_img_desc (img_desc=
 *       version= project=), image_size= status_code=, esp_https_ota_perform until it returns
 *       anything but ESP_ERR_HTTPS_OTA_IN_PROGRESS (perform= perform_calls=), len_read= complete=
 *       (esp_https_ota_is_complete_data_received), then esp_https_ota_finish (ota_finish=) or,
 *       with end=abort, esp_https_ota_abort (ota_abort=). resume=<n> sets ota_resumption with
 *       ota_image_bytes_written=n.
 *   Both then wait until the loop has dispatched every event posted so far (a marker event sent
 *   after them comes back), print boot=<esp_ota_get_boot_partition() label> and ota_done.
 *   Built with CONFIG_ESP_HTTPS_OTA_DECRYPT_CB, the config has a pass-through decrypt_cb and
 *   decrypt_calls=<n> is printed too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_err.h"
#include "esp_event.h"
#include "esp_https_ota.h"
#include "esp_ota_ops.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "https_ota_check.h"

ESP_EVENT_DEFINE_BASE(PORT_CHECK_DRAIN_EVENT);

#define DRAIN_TIMEOUT_MS 10000

static QueueHandle_t s_drained;

typedef struct {
    char url[256];
    bool oneshot;
    bool partial;
    int max_req;
    int buf;
    int timeout_ms;
    char cert_path[256];
    bool bulk;
    long resume;
    bool abort_at_end;
} ota_args_t;

static const char *ota_event_name(int32_t id)
{
    switch (id) {
    case ESP_HTTPS_OTA_START: return "START";
    case ESP_HTTPS_OTA_CONNECTED: return "CONNECTED";
    case ESP_HTTPS_OTA_GET_IMG_DESC: return "GET_IMG_DESC";
    case ESP_HTTPS_OTA_VERIFY_CHIP_ID: return "VERIFY_CHIP_ID";
    case ESP_HTTPS_OTA_VERIFY_CHIP_REVISION: return "VERIFY_CHIP_REVISION";
    case ESP_HTTPS_OTA_DECRYPT_CB: return "DECRYPT_CB";
    case ESP_HTTPS_OTA_WRITE_FLASH: return "WRITE_FLASH";
    case ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION: return "UPDATE_BOOT_PARTITION";
    case ESP_HTTPS_OTA_FINISH: return "FINISH";
    case ESP_HTTPS_OTA_ABORT: return "ABORT";
    }
    return "?";
}

/* Runs on the event loop task, in posting order; the data is what the component posted. */
static void ota_event_handler(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    switch (id) {
    case ESP_HTTPS_OTA_VERIFY_CHIP_ID:
        printf("ota_event=%s chip_id=%d\n", ota_event_name(id), (int)*(esp_chip_id_t *)data);
        break;
    case ESP_HTTPS_OTA_VERIFY_CHIP_REVISION:
        printf("ota_event=%s min_chip_rev_full=%u\n", ota_event_name(id), (unsigned)*(uint16_t *)data);
        break;
    case ESP_HTTPS_OTA_WRITE_FLASH:
        printf("ota_event=%s written=%d\n", ota_event_name(id), *(int *)data);
        break;
    case ESP_HTTPS_OTA_UPDATE_BOOT_PARTITION:
        printf("ota_event=%s subtype=%d\n", ota_event_name(id), (int)*(esp_partition_subtype_t *)data);
        break;
    default:
        printf("ota_event=%s%s\n", ota_event_name(id), data == NULL ? "" : " data=unexpected");
        break;
    }
}

#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
/* A pass-through "decryption", so a build with the option runs the callback path on a plain image. */
static esp_err_t identity_decrypt(decrypt_cb_arg_t *args, void *user_ctx)
{
    args->data_out = malloc(args->data_in_len);
    if (args->data_out == NULL) {
        return ESP_ERR_NO_MEM;
    }
    memcpy(args->data_out, args->data_in, args->data_in_len);
    args->data_out_len = args->data_in_len;
    (*(int *)user_ctx)++;
    return ESP_OK;
}
#endif

static void drain_handler(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    int token = 1;
    xQueueSend(s_drained, &token, 0);
}

static void ensure_handlers(void)
{
    if (s_drained != NULL) {
        return;
    }
    esp_event_loop_create_default(); /* ESP_ERR_INVALID_STATE when net_check made it already */
    s_drained = xQueueCreate(1, sizeof(int));
    esp_event_handler_register(ESP_HTTPS_OTA_EVENT, ESP_EVENT_ANY_ID, ota_event_handler, NULL);
    esp_event_handler_register(PORT_CHECK_DRAIN_EVENT, ESP_EVENT_ANY_ID, drain_handler, NULL);
}

/* The loop is FIFO: once the marker comes back, every event posted before it has been printed. */
static void wait_for_events(void)
{
    int token;
    if (esp_event_post(PORT_CHECK_DRAIN_EVENT, 0, NULL, 0, portMAX_DELAY) != ESP_OK ||
        xQueueReceive(s_drained, &token, pdMS_TO_TICKS(DRAIN_TIMEOUT_MS)) != pdPASS) {
        printf("drain=timeout\n");
    }
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

static bool parse_args(const char *line, ota_args_t *args)
{
    *args = (ota_args_t){.timeout_ms = 5000};
    char rest[512] = "";
    if (sscanf(line, "https_ota %255s %511[^\n]", args->url, rest) < 1) {
        return false;
    }
    for (char *tok = strtok(rest, " "); tok != NULL; tok = strtok(NULL, " ")) {
        int flag = 0;
        if (strcmp(tok, "api=oneshot") == 0) {
            args->oneshot = true;
        } else if (strcmp(tok, "end=abort") == 0) {
            args->abort_at_end = true;
        } else if (sscanf(tok, "partial=%d", &flag) == 1) {
            args->partial = flag != 0;
        } else if (sscanf(tok, "bulk=%d", &flag) == 1) {
            args->bulk = flag != 0;
        } else if (sscanf(tok, "max_req=%d", &args->max_req) != 1 && sscanf(tok, "buf=%d", &args->buf) != 1 &&
                   sscanf(tok, "timeout=%d", &args->timeout_ms) != 1 && sscanf(tok, "resume=%ld", &args->resume) != 1 &&
                   sscanf(tok, "cert=%255s", args->cert_path) != 1 && strcmp(tok, "api=steps") != 0 &&
                   strcmp(tok, "end=finish") != 0) {
            return false;   /* a typo in a test must not run some other configuration */
        }
    }
    return true;
}

static void run_steps(const esp_https_ota_config_t *config, bool abort_at_end)
{
    esp_https_ota_handle_t handle = NULL;
    esp_err_t err = esp_https_ota_begin(config, &handle);
    printf("ota_begin=%s handle_null=%d\n", esp_err_to_name(err), handle == NULL);
    if (err != ESP_OK) {
        return;
    }
    esp_app_desc_t desc;
    err = esp_https_ota_get_img_desc(handle, &desc);
    printf("img_desc=%s version=%s project=%s\n", esp_err_to_name(err), err == ESP_OK ? desc.version : "-",
           err == ESP_OK ? desc.project_name : "-");
    printf("image_size=%d status_code=%d\n", esp_https_ota_get_image_size(handle),
           esp_https_ota_get_status_code(handle));
    int calls = 0;
    do {
        err = esp_https_ota_perform(handle);
        calls++;
    } while (err == ESP_ERR_HTTPS_OTA_IN_PROGRESS);
    printf("perform=%s perform_calls=%d\n", esp_err_to_name(err), calls);
    printf("len_read=%d complete=%d\n", esp_https_ota_get_image_len_read(handle),
           (int)esp_https_ota_is_complete_data_received(handle));
    if (abort_at_end) {
        printf("ota_abort=%s\n", esp_err_to_name(esp_https_ota_abort(handle)));
    } else {
        printf("ota_finish=%s\n", esp_err_to_name(esp_https_ota_finish(handle)));
    }
}

static void run_https_ota(const ota_args_t *args)
{
    ensure_handlers();
    char *cert = args->cert_path[0] ? read_file(args->cert_path) : NULL;
    if (args->cert_path[0] && cert == NULL) {
        printf("cert=unreadable\n");
        return;
    }
    const esp_http_client_config_t http_config = {
        .url = args->url,
        .cert_pem = cert,
        .timeout_ms = args->timeout_ms,
        .buffer_size = args->buf,
        .keep_alive_enable = true,
    };
    esp_https_ota_config_t config = {
        .http_config = &http_config,
        .bulk_flash_erase = args->bulk,
        .partial_http_download = args->partial,
        .max_http_request_size = args->max_req,
        .ota_resumption = args->resume > 0,
        .ota_image_bytes_written = (size_t)args->resume,
    };
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    int decrypt_calls = 0;
    config.decrypt_cb = identity_decrypt;
    config.decrypt_user_ctx = &decrypt_calls;
#endif
    if (args->oneshot) {
        printf("ota=%s\n", esp_err_to_name(esp_https_ota(&config)));
    } else {
        run_steps(&config, args->abort_at_end);
    }
    wait_for_events();
#if CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
    printf("decrypt_calls=%d\n", decrypt_calls);
#endif
    const esp_partition_t *boot = esp_ota_get_boot_partition();
    printf("boot=%s\n", boot ? boot->label : "none");
    printf("ota_done\n");
    free(cert);
}

bool https_ota_check_command(const char *line)
{
    if (strncmp(line, "https_ota ", 10) != 0) {
        return false;
    }
    ota_args_t args;
    if (!parse_args(line, &args)) {
        printf("https_ota=bad_arguments\n");
        return true;
    }
    run_https_ota(&args);
    return true;
}
