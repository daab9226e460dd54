/*
 * The three ways an update stops on its own, whatever carries it (ota_download.c, ota_push.c): a
 * `cancel` command, the request's overall deadline (timeout_s), and its idle deadline (idle_timeout_s
 * without data).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "ota_image.h"
#include "ota_request.h"

typedef struct {
    bool (*cancelled)(void);
    int64_t deadline_us; /* esp_timer time the whole update must end by */
    int64_t last_data_us;
    int64_t idle_us;
} ota_deadline_t;

/* Starts both clocks for req; cancelled() says whether a cancel command came. */
void ota_deadline_start(ota_deadline_t *deadline, const ota_request_t *req, bool (*cancelled)(void));
/* Data arrived (or a new attempt starts): the idle clock starts again. */
void ota_deadline_restart_idle(ota_deadline_t *deadline);
/* Microseconds left of the overall deadline (negative once passed). */
int64_t ota_deadline_left_us(const ota_deadline_t *deadline);
/* False, with *out set (cancelled, timeout, or idle_timeout with idle_detail), when the update must
   stop; check_idle false leaves the idle deadline out (while waiting between attempts). */
bool ota_deadline_check(const ota_deadline_t *deadline, bool check_idle, const char *idle_detail, ota_outcome_t *out);
