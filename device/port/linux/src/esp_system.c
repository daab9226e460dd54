/*
 * Restart, reset reason, heap figures and the panic handler for the virtual board.
 * A restart ends the process with an exit code the board reads to choose the next reset
 * reason; a crash prints the lines a real ESP32's panic handler prints.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "esp_log.h"
#include "esp_system.h"
#include "host_board.h"

/* A classic ESP32 has about 300 KB of heap after start-up; the host reports that budget minus
   what the firmware has allocated, so leaks show in status reports as they would on a chip. */
#define HOST_HEAP_BUDGET (320 * 1024)

static uint32_t s_min_free_heap = HOST_HEAP_BUDGET;

void esp_restart(void)
{
    fflush(stdout);
    _exit(HOST_EXIT_RESTART);
}

esp_reset_reason_t esp_reset_reason(void)
{
    const char *reason = getenv(HOST_ENV_RESET_REASON);
    return reason != NULL ? (esp_reset_reason_t)atoi(reason) : ESP_RST_POWERON;
}

uint32_t esp_get_free_heap_size(void)
{
    struct mallinfo2 info = mallinfo2();
    uint32_t used = info.uordblks > HOST_HEAP_BUDGET ? HOST_HEAP_BUDGET : (uint32_t)info.uordblks;
    uint32_t free_heap = HOST_HEAP_BUDGET - used;
    if (free_heap < s_min_free_heap) {
        s_min_free_heap = free_heap;
    }
    return free_heap;
}

uint32_t esp_get_minimum_free_heap_size(void)
{
    esp_get_free_heap_size();
    return s_min_free_heap;
}

static void write_str(const char *s)
{
    /* write(2) only: this runs inside signal handlers. */
    ssize_t ignored = write(STDOUT_FILENO, s, strlen(s));
    (void)ignored;
}

void host_panic_tail_and_exit(int exit_code)
{
    write_str("\n\nBacktrace: 0x400d1234:0x3ffb5e00 0x40086e3a:0x3ffb5e20\n\n\n\n");
    write_str("ELF file SHA256: 0000000000000000\n\n");
    write_str("Rebooting...\n");
    _exit(exit_code);
}

static void __attribute__((noreturn)) panic_tail_and_exit(void)
{
    host_panic_tail_and_exit(HOST_EXIT_PANIC);
}

/* What an Xtensa panic prints after the Guru Meditation line (the values are placeholders). */
static void register_dump(void)
{
    write_str("\nCore  0 register dump:\n");
    write_str("PC      : 0x400d1234  PS      : 0x00060030  A0      : 0x800d5678  A1      : 0x3ffb5e00  \n");
    write_str("EXCCAUSE: 0x0000001c  EXCVADDR: 0x00000000  LBEG    : 0x4000c2e0  LEND    : 0x4000c2f6  \n");
}

static const char *exception_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "LoadProhibited";
    case SIGBUS: return "StoreProhibited";
    case SIGILL: return "IllegalInstruction";
    case SIGFPE: return "IntegerDivideByZero";
    default: return "Unhandled debug exception";
    }
}

static void on_fatal_signal(int sig)
{
    fflush(stdout);
    if (sig == SIGABRT) {
        /* newlib's abort() on the chip prints this line, with no Guru Meditation line. */
        write_str("\nabort() was called at PC 0x400d1234 on core 0\n");
    } else {
        write_str("Guru Meditation Error: Core  0 panic'ed (");
        write_str(exception_name(sig));
        write_str("). Exception was unhandled.\n");
        register_dump();
    }
    panic_tail_and_exit();
}

void esp_system_abort(const char *details)
{
    fflush(stdout);
    write_str("\n");
    write_str(details);
    write_str("\n");
    panic_tail_and_exit();
}

void host_install_panic_handler(void)
{
    const int signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        signal(signals[i], on_fatal_signal);
    }
}
