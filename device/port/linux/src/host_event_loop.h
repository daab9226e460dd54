/* The host port's default event loop, beyond ESP-IDF's API (see esp_event.c). */
#pragma once

/* Waits up to timeout_ms for every event posted so far to be handled: on a chip the loop task's
   priority has it handle them before a lower-priority poster goes on to restart. */
void host_event_loop_settle(int timeout_ms);
