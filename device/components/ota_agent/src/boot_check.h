/*
 * What happens after every boot, before normal operation: a new image (PENDING_VERIFY) runs
 * its self-test and confirms itself or asks for rollback; an old image that came back after a
 * failed update reports the request as rolled_back.
 */
#pragma once

#include <stdbool.h>
#include "ota_record.h"

/* True when the running image still has to prove itself (first boot after an update). */
bool boot_check_pending_verify(void);
/* True when it has nothing left to prove: confirmed earlier, or its self-test passed and `succeeded` was sent
   (the partition turns valid a little before that). */
bool boot_check_confirmed(void);
/* Runs the self-test of a new image: confirms it and reports succeeded, or marks it invalid
   and reboots into the previous image (this call then does not return). Once the broker answers, the
   outcomes still queued from earlier updates go first (boot_check_report_unreported). */
void boot_check_run_selftest(void);
/* On a confirmed image, before anything can start a new update (whose own record must not be taken for it):
   the update that was in flight before this boot. One that did not stick gets its outcome decided and
   queued for boot_check_report_unreported (false); true when it did stick but its report was lost. */
bool boot_check_take_previous_update(ota_pending_t *previous);
/* Reports that update as succeeded (it runs, confirmed) and clears its record (unless a new update has
   saved its own since). */
void boot_check_report_previous_update(const ota_pending_t *previous);
/* Sends the queued outcomes of updates that did not stick (this or an earlier boot decided them), oldest
   first, once the broker is reachable within `wait_ms` (MQTT_LINK_WAIT_FOREVER: however long it takes; 0:
   only if it is now), then the status; they leave the queue once the broker has acknowledged them (a later
   call in the same boot only waits for that, without sending them again). */
void boot_check_report_unreported(int wait_ms);
