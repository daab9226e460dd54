#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "agent_config.h"
#include "ota_deadline.h"
#include "ota_download.h"
#include "ota_inflate.h"
#include "ota_progress.h"
#include "wifi_sta.h"

static const char *TAG = "ota_download";

#define READ_CHUNK 4096
#define POLL_MS 250            /* read timeout: how often deadlines and cancel are checked */
#define HEADERS_POLL_MS 1000   /* wait for the response headers, between deadline checks */
#define CONNECT_MAX_MS 10000   /* longest connect (TCP + TLS handshake): cancel is not seen during it */
#define MAX_REDIRECTS 10
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 4000

typedef struct {
    const ota_request_t *req;
    ota_outcome_t out;
    ota_image_t image;         /* the slot being written; its total is -1 while unknown (chunked) */
    ota_inflate_t stream;      /* the body as it arrives: a plain image, or gzip/zlib inflated into image */
    int64_t wire_received;     /* body bytes taken so far (the Range offset of a resume) */
    int64_t wire_total;        /* the body's length, -1 while unknown */
    ota_deadline_t deadline;
    ota_progress_t progress;
    int attempt;
} job_t;

/* Result of one HTTP attempt. */
typedef enum { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FATAL } attempt_t;

static attempt_t fatal(job_t *job, const char *state, ota_reason_t reason, const char *detail)
{
    ota_outcome_fail(&job->out, state, reason, detail);
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

/* Takes freshly downloaded bytes into the image, inflated if the body is compressed (ota_image.c checks
   the head before erasing). The decompressor consumes every byte, so wire_received is where a resume
   with Range goes on, with the decompressor's state as it was. */
static attempt_t accept_bytes(job_t *job, const uint8_t *data, size_t len)
{
    if (!ota_inflate_write(&job->stream, &job->image, data, len, &job->out)) {
        return ATTEMPT_FATAL;
    }
    job->wire_received += (int64_t)len;
    return ATTEMPT_DONE;
}

/* A `downloading` event: bytes of the body (of its length, or of the command's size for a plain image
   of unknown length), and for a compressed body the decompressed bytes written. */
static void report_progress(job_t *job, bool force)
{
    bool compressed = ota_inflate_compressed(&job->stream);
    int64_t total = job->wire_total >= 0 ? job->wire_total : compressed ? -1 : job->image.total;
    if (compressed) {
        ota_progress_report_written(&job->progress, job->wire_received, total, job->image.received, force);
    } else {
        ota_progress_report(&job->progress, job->wire_received, total, force);
    }
}

/* Back to byte 0 of the body and of the slot (a server that ignored Range). */
static void restart_from_zero(job_t *job)
{
    ota_image_restart(&job->image);
    ota_inflate_restart(&job->stream);
    job->wire_received = 0;
    job->wire_total = -1;
}

static attempt_t check_deadlines(job_t *job)
{
    return ota_deadline_check(&job->deadline, true, "no data received within idle_timeout_s", &job->out)
               ? ATTEMPT_DONE : ATTEMPT_FATAL;
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
            ota_deadline_restart_idle(&job->deadline);
            if (accept_bytes(job, buf, (size_t)n) == ATTEMPT_FATAL) {
                return ATTEMPT_FATAL;
            }
            report_progress(job, job->wire_received == n || job->wire_received == job->wire_total);
        } else if (n == -ESP_ERR_HTTP_EAGAIN) {
            continue; /* no data within POLL_MS: check deadlines again */
        } else if (esp_http_client_is_complete_data_received(http)) {
            if (!ota_progress_reported(&job->progress, job->wire_received)) {
                /* the last one, when no length said which read was last */
                report_progress(job, true);
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
    int64_t left_ms = ota_deadline_left_us(&job->deadline) / 1000;
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
        if (job->wire_received > 0) {
            snprintf(range, sizeof(range), "bytes=%" PRId64 "-", job->wire_received);
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
            if (job->wire_total < 0 && length > 0) {
                job->wire_total = job->wire_received + length;
            }
            if (!ota_inflate_compressed(&job->stream) && job->image.total < 0 && length > 0) {
                job->image.total = job->wire_total;
            }
            return ATTEMPT_DONE;
        }
        if (status != 200) {
            esp_http_client_close(http);
            return fatal(job, "failed", OTA_REASON_HTTP_STATUS, "unexpected HTTP status");
        }
        job->out.http_status = 0;
        if (job->wire_received > 0) {
            ESP_LOGW(TAG, "server ignored Range; restarting the download from zero");
            restart_from_zero(job);
        }
        /* Chunked: no Content-Length, but the command's size (if any) is the length to expect, so
           an image that cannot fit is still refused before esp_ota_begin() erases the slot. A compressed
           body sets the image's total to the command's size itself (ota_inflate.c) once detected. */
        job->wire_total = length > 0 ? length : -1;
        if (!ota_inflate_compressed(&job->stream)) {
            job->image.total = length > 0 ? length : job->req->size;
        }
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

/* Off its access point the station has no route: a retry would fail at once and use up the retries while
   Wi-Fi reconnects. So the retry waits for the IP address first, as long as the idle deadline allows
   (failed/idle_timeout after that), then resumes with Range where the connection dropped. */
static attempt_t wait_for_network(job_t *job)
{
    bool waited = false;
    while (!wifi_sta_wait_connected(POLL_MS)) {
        if (!waited) {
            ESP_LOGW(TAG, "no IP address (Wi-Fi reconnecting); the retry waits for it");
            waited = true;
        }
        if (!ota_deadline_check(&job->deadline, true, "no network within idle_timeout_s", &job->out)) {
            return ATTEMPT_FATAL;
        }
    }
    return ATTEMPT_RETRY;
}

/* Sleeps for the backoff before a retry, still honouring cancel and the deadline. */
static attempt_t backoff(job_t *job)
{
    int delay_ms = BACKOFF_FIRST_MS << (job->attempt < 5 ? job->attempt : 5);
    delay_ms = delay_ms < BACKOFF_MAX_MS ? delay_ms : BACKOFF_MAX_MS;
    int64_t until = esp_timer_get_time() + (int64_t)delay_ms * 1000;
    while (esp_timer_get_time() < until) {
        if (!ota_deadline_check(&job->deadline, false, NULL, &job->out)) {
            return ATTEMPT_FATAL;
        }
        vTaskDelay(pdMS_TO_TICKS(50));
    }
    ota_deadline_restart_idle(&job->deadline); /* the idle clock restarts with each attempt */
    return wait_for_network(job);
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

ota_outcome_t ota_download_and_switch(const ota_request_t *req, bool (*cancelled)(void))
{
    static job_t job;
    memset(&job, 0, sizeof(job));
    job.req = req;
    ota_progress_init(&job.progress, req->id);
    ota_deadline_start(&job.deadline, req, cancelled);
    ota_inflate_init(&job.stream);
    job.wire_total = -1;
    if (ota_image_init(&job.image, req, req->size >= 0 ? req->size : -1, &job.out)) {
        ESP_LOGI(TAG, "downloading %s into %s", req->url, job.image.target->label);
        if (download(&job) == ATTEMPT_DONE && ota_inflate_finish(&job.stream, &job.image, &job.out)) {
            ota_image_finish(&job.image, &job.out);
        }
    }
    if (ota_inflate_compressed(&job.stream)) {
        ESP_LOGI(TAG, "%s stream: %" PRId64 " bytes downloaded, %" PRId64 " written", ota_inflate_encoding_name(&job.stream),
                 job.wire_received, job.image.received);
        job.out.compressed = true;
        job.out.written = job.image.slot_opened ? job.image.received : 0; /* the head alone is not written */
    }
    ota_inflate_free(&job.stream);
    ota_image_free(&job.image);
    return job.out;
}
