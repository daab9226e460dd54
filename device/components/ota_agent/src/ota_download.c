#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_app_desc.h"
#include "esp_app_format.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "mbedtls/sha256.h"
#include "sdkconfig.h"
#include "agent_config.h"
#include "ota_download.h"
#include "ota_events.h"
#include "ota_progress.h"
#include "ota_record.h"

static const char *TAG = "ota_download";

/* Header, first segment header and app descriptor: all the version and chip checks need. */
#define IMAGE_HEAD_LEN (sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t) + sizeof(esp_app_desc_t))
/* esp_app_desc_t.version as a C string (the field itself need not be NUL-terminated). */
#define APP_VERSION_STR_LEN (sizeof(((esp_app_desc_t *)0)->version) + 1)
#define READ_CHUNK 4096
#define POLL_MS 250            /* read timeout: how often deadlines and cancel are checked */
#define HEADERS_POLL_MS 1000   /* wait for the response headers, between deadline checks */
#define CONNECT_MAX_MS 10000   /* longest connect (TCP + TLS handshake): cancel is not seen during it */
#define MAX_REDIRECTS 10
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 4000

typedef struct {
    const ota_request_t *req;
    bool (*cancelled)(void);
    ota_outcome_t out;
    const esp_partition_t *target;
    esp_ota_handle_t ota;
    bool ota_open;
    mbedtls_sha256_context sha;
    uint8_t head[IMAGE_HEAD_LEN];
    int64_t received;          /* image bytes accepted so far */
    int64_t total;             /* full image size, -1 when unknown (chunked) */
    int64_t deadline_us;
    int64_t last_data_us;
    ota_progress_t progress;
    int attempt;
} job_t;

/* Result of one HTTP attempt. */
typedef enum { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FATAL } attempt_t;

static attempt_t fatal(job_t *job, const char *state, ota_reason_t reason, const char *detail)
{
    job->out.state = state;
    job->out.reason = reason;
    snprintf(job->out.detail, sizeof(job->out.detail), "%s", detail);
    return ATTEMPT_FATAL;
}

static attempt_t retry(job_t *job, ota_reason_t reason, const char *detail)
{
    /* Remembered so that running out of retries reports the last cause. */
    job->out.state = "failed";
    job->out.reason = reason;
    snprintf(job->out.detail, sizeof(job->out.detail), "%s", detail);
    return ATTEMPT_RETRY;
}

static void reset_image(job_t *job)
{
    if (job->ota_open) {
        esp_ota_abort(job->ota);
        job->ota_open = false;
    }
    job->received = 0;
    mbedtls_sha256_free(&job->sha);
    mbedtls_sha256_init(&job->sha);
    mbedtls_sha256_starts(&job->sha, 0);
}

/* The app descriptor of the downloaded head, copied out: job->head is a byte buffer with no
   alignment guarantee (Xtensa faults on unaligned 32-bit loads), and version[] need not be
   NUL-terminated. version_out gets the version as a C string. */
static void head_app_desc(const job_t *job, esp_app_desc_t *desc, char version_out[APP_VERSION_STR_LEN])
{
    memcpy(desc, job->head + sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t), sizeof(*desc));
    memcpy(version_out, desc->version, sizeof(desc->version));
    version_out[sizeof(desc->version)] = '\0';
}

/* Checks the image head (first IMAGE_HEAD_LEN bytes) before anything is erased. */
static attempt_t check_head(job_t *job)
{
    esp_image_header_t header;
    memcpy(&header, job->head, sizeof(header));
    esp_app_desc_t desc;
    char version[APP_VERSION_STR_LEN];
    head_app_desc(job, &desc, version);
    char detail[96];
    if (header.magic != ESP_IMAGE_HEADER_MAGIC) {
        snprintf(detail, sizeof(detail), "invalid magic byte 0x%02x (expected 0xE9)", header.magic);
        return fatal(job, "failed", OTA_REASON_INVALID_IMAGE, detail);
    }
    if (header.chip_id != CONFIG_IDF_FIRMWARE_CHIP_ID) {
        snprintf(detail, sizeof(detail), "Mismatch chip id, expected %d, found %d",
                 CONFIG_IDF_FIRMWARE_CHIP_ID, (int)header.chip_id);
        return fatal(job, "failed", OTA_REASON_WRONG_CHIP, detail);
    }
    if (desc.magic_word != ESP_APP_DESC_MAGIC_WORD) {
        return fatal(job, "failed", OTA_REASON_INVALID_IMAGE, "Incorrect app descriptor magic");
    }
    const char *running = esp_app_get_description()->version;
    int order = ota_version_compare(version, running);
    if (!job->req->force && order == 0) {
        snprintf(detail, sizeof(detail), "image version %.31s is the running version", version);
        return fatal(job, "rejected", OTA_REASON_SAME_VERSION, detail);
    }
    if (!job->req->force && order < 0) {
        snprintf(detail, sizeof(detail), "image version %.31s is older than %.31s", version, running);
        return fatal(job, "rejected", OTA_REASON_DOWNGRADE, detail);
    }
    if (job->total > (int64_t)job->target->size) {
        snprintf(detail, sizeof(detail), "image of %" PRId64 " bytes does not fit %s (%" PRIu32 " bytes)",
                 job->total, job->target->label, job->target->size);
        return fatal(job, "rejected", OTA_REASON_TOO_LARGE, detail);
    }
    esp_err_t err = esp_ota_begin(job->target, OTA_WITH_SEQUENTIAL_WRITES, &job->ota);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_begin failed: %s", esp_err_to_name(err));
        return fatal(job, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
    }
    job->ota_open = true;
    err = esp_ota_write(job->ota, job->head, IMAGE_HEAD_LEN);
    return err == ESP_OK ? ATTEMPT_DONE : fatal(job, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
}

/* Takes freshly downloaded bytes: buffers the head, then writes through to flash. */
static attempt_t accept_bytes(job_t *job, const uint8_t *data, size_t len)
{
    mbedtls_sha256_update(&job->sha, data, len);
    if (job->received + (int64_t)len > (int64_t)job->target->size) {
        return fatal(job, "failed", OTA_REASON_TOO_LARGE, "image is larger than the OTA slot");
    }
    size_t used = 0;
    if (job->received < (int64_t)IMAGE_HEAD_LEN) {
        used = IMAGE_HEAD_LEN - (size_t)job->received;
        used = used < len ? used : len;
        memcpy(job->head + job->received, data, used);
        job->received += (int64_t)used;
        if (job->received == (int64_t)IMAGE_HEAD_LEN && check_head(job) == ATTEMPT_FATAL) {
            return ATTEMPT_FATAL;
        }
    }
    if (used < len) {
        esp_err_t err = esp_ota_write(job->ota, data + used, len - used);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_ota_write failed: %s", esp_err_to_name(err));
            return fatal(job, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
        }
        job->received += (int64_t)(len - used);
    }
    return ATTEMPT_DONE;
}

static attempt_t check_deadlines(job_t *job)
{
    int64_t now = esp_timer_get_time();
    if (job->cancelled()) {
        return fatal(job, "cancelled", OTA_REASON_CANCELLED, "cancelled by command");
    }
    if (now >= job->deadline_us) {
        return fatal(job, "failed", OTA_REASON_TIMEOUT, "overall deadline passed");
    }
    if (now - job->last_data_us >= (int64_t)job->req->idle_timeout_s * 1000000) {
        return fatal(job, "failed", OTA_REASON_IDLE_TIMEOUT, "no data received within idle_timeout_s");
    }
    return ATTEMPT_DONE;
}

/* Reads the body until it is complete, the connection drops, or a deadline passes. */
static attempt_t read_body(job_t *job, esp_http_client_handle_t http)
{
    static uint8_t buf[READ_CHUNK];
    for (;;) {
        attempt_t a = check_deadlines(job);
        if (a != ATTEMPT_DONE) {
            return a;
        }
        int n = esp_http_client_read(http, (char *)buf, sizeof(buf));
        if (n > 0) {
            job->last_data_us = esp_timer_get_time();
            if (accept_bytes(job, buf, (size_t)n) == ATTEMPT_FATAL) {
                return ATTEMPT_FATAL;
            }
            ota_progress_report(&job->progress, job->received, job->total,
                                job->received == n || job->received == job->total);
        } else if (n == -ESP_ERR_HTTP_EAGAIN) {
            continue; /* no data within POLL_MS: check deadlines again */
        } else if (esp_http_client_is_complete_data_received(http)) {
            if (!ota_progress_reported(&job->progress, job->received)) {
                /* the last one, when no length said which read was last */
                ota_progress_report(&job->progress, job->received, job->total, true);
            }
            return ATTEMPT_DONE;
        } else {
            return retry(job, OTA_REASON_CONNECT_FAILED, "connection closed before complete data was received");
        }
    }
}

/* A failed connection: a certificate that does not verify will not verify on a retry either.
   esp-tls also records plain TCP failures (DNS, refused, timeout) as its last error, with no
   mbedTLS code: only an https connection with an mbedTLS code or verify flags is a TLS failure. */
static attempt_t connect_error(job_t *job, esp_http_client_handle_t http, esp_err_t err)
{
    int tls_code = 0;
    int tls_flags = 0;
    esp_err_t last = esp_http_client_get_and_clear_last_tls_error(http, &tls_code, &tls_flags);
    bool https = esp_http_client_get_transport_type(http) == HTTP_TRANSPORT_OVER_SSL;
    char detail[96];
    if (https && tls_flags != 0) {
        snprintf(detail, sizeof(detail), "server certificate not trusted (verify flags 0x%x); check ota_ca_cert", tls_flags);
        return fatal(job, "failed", OTA_REASON_TLS_FAILED, detail);
    }
    if (https && tls_code != 0) {
        snprintf(detail, sizeof(detail), "TLS handshake failed: %s (0x%x)", esp_err_to_name(last), tls_code);
        return retry(job, OTA_REASON_TLS_FAILED, detail);
    }
    return retry(job, OTA_REASON_CONNECT_FAILED, esp_err_to_name(last != ESP_OK ? last : err));
}

/* The connect timeout. esp-tls must finish the TCP connect and the whole TLS handshake within
   the client's timeout_ms (esp_tls_conn_new_sync), which POLL_MS is far too short for. */
static int connect_timeout_ms(const job_t *job)
{
    int64_t ms = (int64_t)job->req->idle_timeout_s * 1000;
    int64_t left_ms = (job->deadline_us - esp_timer_get_time()) / 1000;
    ms = ms < left_ms ? ms : left_ms;
    ms = ms < CONNECT_MAX_MS ? ms : CONNECT_MAX_MS;
    return ms > POLL_MS ? (int)ms : POLL_MS;
}

/* esp_http_client keeps body bytes that arrived with the response headers and returns them from
   the next esp_http_client_read(), even after esp_http_client_close() and a new open (v5.5.0
   has no esp_http_client_clear_response_buffer()). Reads them out before the handle is reused. */
static void discard_body(esp_http_client_handle_t http)
{
    static char scrap[READ_CHUNK];
    (void)esp_http_client_read(http, scrap, sizeof(scrap));
}

/* Sends the request (with Range when resuming) and handles the response status. */
static attempt_t start_response(job_t *job, esp_http_client_handle_t http)
{
    char range[40];
    for (int hops = 0;; hops++) {
        if (job->received > 0) {
            snprintf(range, sizeof(range), "bytes=%" PRId64 "-", job->received);
            esp_http_client_set_header(http, "Range", range);
        } else {
            esp_http_client_delete_header(http, "Range");
        }
        esp_http_client_set_timeout_ms(http, connect_timeout_ms(job));
        esp_err_t err = esp_http_client_open(http, 0);
        if (err != ESP_OK) {
            ESP_LOGW(TAG, "esp_http_client_open failed: %s", esp_err_to_name(err));
            attempt_t a = connect_error(job, http, err);
            esp_http_client_close(http);
            return a;
        }
        /* Short waits from here on, so deadlines and cancel stay responsive. A slow server is
           waited for: fetch_headers() may be called again after -ESP_ERR_HTTP_EAGAIN. */
        esp_http_client_set_timeout_ms(http, HEADERS_POLL_MS);
        int64_t length;
        while ((length = esp_http_client_fetch_headers(http)) == -ESP_ERR_HTTP_EAGAIN) {
            attempt_t a = check_deadlines(job);
            if (a != ATTEMPT_DONE) {
                esp_http_client_close(http);
                return a;
            }
        }
        esp_http_client_set_timeout_ms(http, POLL_MS);
        if (length < 0) {
            esp_http_client_close(http);
            return retry(job, OTA_REASON_CONNECT_FAILED, "connection closed before the response headers");
        }
        int status = esp_http_client_get_status_code(http);
        if (status >= 300 && status < 400 && hops < MAX_REDIRECTS) {
            discard_body(http);
            err = esp_http_client_set_redirection(http);
            esp_http_client_close(http);
            if (err != ESP_OK) {
                job->out.http_status = status;
                return fatal(job, "failed", OTA_REASON_HTTP_STATUS, "redirect without a usable Location header");
            }
            continue;
        }
        job->out.http_status = status;
        if (status >= 500) {
            discard_body(http);
            esp_http_client_close(http);
            return retry(job, OTA_REASON_HTTP_STATUS, "server error");
        }
        if (status == 206) {
            job->out.http_status = 0;
            if (job->total < 0 && length > 0) {
                job->total = job->received + length;
            }
            return ATTEMPT_DONE;
        }
        if (status != 200) {
            esp_http_client_close(http);
            return fatal(job, "failed", OTA_REASON_HTTP_STATUS, "unexpected HTTP status");
        }
        job->out.http_status = 0;
        if (job->received > 0) {
            ESP_LOGW(TAG, "server ignored Range; restarting the download from zero");
            reset_image(job);
        }
        /* Chunked: no Content-Length, but the command's size (if any) is the length to expect, so
           an image that cannot fit is still refused before esp_ota_begin() erases the slot. */
        job->total = length > 0 ? length : job->req->size;
        return ATTEMPT_DONE;
    }
}

static attempt_t one_attempt(job_t *job, esp_http_client_handle_t http)
{
    attempt_t a = start_response(job, http);
    if (a == ATTEMPT_DONE) {
        a = read_body(job, http);
        esp_http_client_close(http);
    }
    return a;
}

/* Sleeps for the backoff before a retry, still honouring cancel and the deadline. */
static attempt_t backoff(job_t *job)
{
    int delay_ms = BACKOFF_FIRST_MS << (job->attempt < 5 ? job->attempt : 5);
    delay_ms = delay_ms < BACKOFF_MAX_MS ? delay_ms : BACKOFF_MAX_MS;
    int64_t until = esp_timer_get_time() + (int64_t)delay_ms * 1000;
    while (esp_timer_get_time() < until) {
        if (job->cancelled()) {
            return fatal(job, "cancelled", OTA_REASON_CANCELLED, "cancelled by command");
        }
        if (esp_timer_get_time() >= job->deadline_us) {
            return fatal(job, "failed", OTA_REASON_TIMEOUT, "overall deadline passed");
        }
        vTaskDelay(pdMS_TO_TICKS(50));
    }
    job->last_data_us = esp_timer_get_time(); /* the idle clock restarts with each attempt */
    return ATTEMPT_RETRY;
}

static attempt_t download(job_t *job)
{
    static char ca_pem[AGENT_CONFIG_CA_MAX + 128];
    bool https = strncmp(job->req->url, "https://", 8) == 0;
    if (https && !agent_config_ca_pem(ca_pem, sizeof(ca_pem))) {
        return fatal(job, "failed", OTA_REASON_TLS_FAILED, "https URL but no CA configured (config set ota_ca_cert <base64 DER>)");
    }
    esp_http_client_config_t config = {
        .url = job->req->url,
        .cert_pem = https ? ca_pem : NULL,
        .timeout_ms = POLL_MS,
        .keep_alive_enable = true,
        .buffer_size = READ_CHUNK,
        .disable_auto_redirect = true, /* start_response follows redirects itself */
    };
    esp_http_client_handle_t http = esp_http_client_init(&config);
    if (http == NULL) {
        return fatal(job, "failed", OTA_REASON_CONNECT_FAILED, "esp_http_client_init failed");
    }
    attempt_t a;
    for (job->attempt = 0;; job->attempt++) {
        /* A new attempt starts clean: the cause kept from a failed one (for the report when
           retries run out) must not turn a later success into a failure (reason not NONE). */
        job->out.reason = OTA_REASON_NONE;
        job->out.state = NULL;
        job->out.http_status = 0;
        job->out.detail[0] = '\0';
        a = one_attempt(job, http);
        if (a != ATTEMPT_RETRY || job->attempt >= job->req->retries) {
            break;
        }
        ESP_LOGW(TAG, "attempt %d failed (%s); retrying", job->attempt + 1, job->out.detail);
        a = backoff(job);
        if (a == ATTEMPT_FATAL) {
            break;
        }
    }
    esp_http_client_cleanup(http);
    return a;
}

/* The image is complete: size, SHA-256 and esp_ota_end's verification, then switch. */
static void finish(job_t *job)
{
    uint8_t digest[32];
    mbedtls_sha256_finish(&job->sha, digest);
    esp_ota_handle_t ota = job->ota;
    job->ota_open = false;
    if (job->received < (int64_t)IMAGE_HEAD_LEN) {
        /* check_head() never ran, so esp_ota_begin() was not called: no handle to abort */
        fatal(job, "failed", OTA_REASON_INVALID_IMAGE, "image shorter than its header and app descriptor");
        return;
    }
    if (job->req->size >= 0 && job->received != job->req->size) {
        esp_ota_abort(ota);
        fatal(job, "failed", OTA_REASON_SIZE_MISMATCH, "downloaded size differs from the command's size");
        return;
    }
    if (job->req->has_sha256 && memcmp(digest, job->req->sha256, sizeof(digest)) != 0) {
        esp_ota_abort(ota);
        fatal(job, "failed", OTA_REASON_SHA256_MISMATCH, "SHA-256 of the download differs from the command's");
        return;
    }
    ota_event_send(ota_event_new(job->req->id, "verifying"));
    esp_err_t err = esp_ota_end(ota);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "Image validation failed, image is corrupted (%s)", esp_err_to_name(err));
        fatal(job, "failed", err == ESP_ERR_OTA_VALIDATE_FAILED ? OTA_REASON_INVALID_IMAGE : OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
        return;
    }
    ota_pending_t pending = {.stage = OTA_RECORD_REBOOTING};
    snprintf(pending.id, sizeof(pending.id), "%s", job->req->id);
    esp_app_desc_t desc;
    char version[APP_VERSION_STR_LEN];
    head_app_desc(job, &desc, version);
    snprintf(pending.version, sizeof(pending.version), "%.31s", version);
    snprintf(pending.target, sizeof(pending.target), "%s", job->target->label);
    snprintf(pending.previous, sizeof(pending.previous), "%s", esp_ota_get_running_partition()->label);
    /* Persisted before the switch: whichever firmware boots next can name this request. */
    err = ota_record_save_pending(&pending);
    if (err == ESP_OK) {
        err = esp_ota_set_boot_partition(job->target);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_set_boot_partition failed: %s", esp_err_to_name(err));
        ota_record_clear_pending();
        fatal(job, "failed", OTA_REASON_FLASH_ERROR, esp_err_to_name(err));
    }
}

ota_outcome_t ota_download_and_switch(const ota_request_t *req, bool (*cancelled)(void))
{
    static job_t job;
    memset(&job, 0, sizeof(job));
    job.req = req;
    job.cancelled = cancelled;
    job.total = req->size >= 0 ? req->size : -1;
    ota_progress_init(&job.progress, req->id);
    job.deadline_us = esp_timer_get_time() + (int64_t)req->timeout_s * 1000000;
    job.last_data_us = esp_timer_get_time();
    job.target = esp_ota_get_next_update_partition(NULL);
    if (job.target == NULL) {
        fatal(&job, "failed", OTA_REASON_FLASH_ERROR, "no OTA slot to write");
        return job.out;
    }
    snprintf(job.out.target_label, sizeof(job.out.target_label), "%s", job.target->label);
    ESP_LOGI(TAG, "downloading %s into %s", req->url, job.target->label);
    mbedtls_sha256_init(&job.sha);
    mbedtls_sha256_starts(&job.sha, 0);

    if (download(&job) == ATTEMPT_DONE) {
        finish(&job);
    } else if (job.ota_open) {
        esp_ota_abort(job.ota);
    }
    mbedtls_sha256_free(&job.sha);
    return job.out;
}
