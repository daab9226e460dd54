/*
 * Restart, reset reason, heap figures and the panic handler for the virtual board.
 * A restart ends the process with an exit code the board reads to choose the next reset
 * reason; a crash prints the lines a real ESP32's panic handler prints.
 *
 * Known differences from the chip:
 *  - The `Backtrace:` line is the host call stack of the thread that panicked, by glibc's
 *    backtrace() (the unwinder of libgcc_s, through the signal frame), not a walk of Xtensa
 *    windows. Each PC is a return address minus 1 (the chip subtracts 3: both land on the call
 *    instruction) and relative to the executable's load address: the firmware is a PIE linked at
 *    0, so `addr2line -e <elf>` and esp-idf-panic-decoder read these PCs as they read a chip's.
 *    Frames outside the executable (libc, libpthread) are left out; the SPs are placeholders in
 *    the chip's DRAM range (the host stack is not the chip's). Like the chip's, the trace starts
 *    in the panic handler itself (host_panic_tail_and_exit, on_fatal_signal).
 *  - backtrace() is not async-signal-safe on its first call (it loads libgcc_s), so
 *    host_install_panic_handler() calls it once at start-up; after that it only reads unwind
 *    tables. A crash inside the dynamic loader or with a corrupt stack may print fewer frames.
 *  - The frame a fatal signal interrupted is shown at the faulting instruction itself, read from
 *    the signal's context on x86-64 and AArch64 hosts; on others it is shown at its PC minus 1 like
 *    a return address, which can name the line before the fault.
 *  - The register dump, the PC of `abort() was called at PC` and the ELF SHA256 of the panic
 *    tail are placeholders.
 */
#include <execinfo.h>
#include <link.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include "esp_log.h"
#include "esp_system.h"
#include "host_board.h"
#include "host_event_loop.h"

/* A classic ESP32 has about 300 KB of heap after start-up; the host reports that budget minus
   what the firmware has allocated, so leaks show in status reports as they would on a chip. */
#define HOST_HEAP_BUDGET (320 * 1024)

static uint32_t s_min_free_heap = HOST_HEAP_BUDGET;

void esp_restart(void)
{
    host_event_loop_settle(100); /* what sys_evt would have handled first on a chip (esp_event.c) */
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

/* "0x%08x" without printf, which is not async-signal-safe. */
static void write_hex32(uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    char text[11] = "0x";
    for (int i = 0; i < 8; i++) {
        text[2 + i] = digits[(value >> (28 - 4 * i)) & 0xF];
    }
    text[10] = '\0';
    write_str(text);
}

#define BACKTRACE_MAX_FRAMES 32
/* Where the chip's stacks are (DRAM): a placeholder SP for each PC, as the chip prints PC:SP pairs. */
#define BACKTRACE_PLACEHOLDER_SP 0x3ffb5e00u
#define BACKTRACE_PLACEHOLDER_FRAME_SIZE 0x20u

/* From the linker's default script: the first byte of the executable's image and the end of its
   code, at their run-time addresses. */
extern char __executable_start[];
extern char __etext[];

/* What to subtract from a run-time address to get the ELF's (link-time) address: the PIE's load
   address, or 0 for an executable linked without -pie. Found once at start-up (dl_iterate_phdr()
   is not async-signal-safe). */
static uintptr_t s_load_bias;

/* The instruction a fatal signal interrupted (0: none): not a return address, so not moved back. */
static volatile uintptr_t s_interrupted_pc;

static int take_executable_bias(struct dl_phdr_info *info, size_t size, void *data)
{
    /* dl_iterate_phdr() reports the executable first */
    *(uintptr_t *)data = info->dlpi_addr;
    return 1;
}

static void write_backtrace(void)
{
    void *frames[BACKTRACE_MAX_FRAMES];
    int count = backtrace(frames, BACKTRACE_MAX_FRAMES);
    uint32_t sp = BACKTRACE_PLACEHOLDER_SP;
    write_str("\n\nBacktrace:");
    for (int i = 0; i < count; i++) {
        uintptr_t pc = (uintptr_t)frames[i];
        /* a return address is the instruction after the call: minus 1 is inside the call */
        uintptr_t at = pc == s_interrupted_pc ? pc : pc - 1;
        if (at < (uintptr_t)__executable_start || at >= (uintptr_t)__etext) {
            continue; /* libc, libpthread, the signal trampoline: not in the firmware's ELF */
        }
        write_str(" ");
        write_hex32((uint32_t)(at - s_load_bias));
        write_str(":");
        write_hex32(sp);
        sp += BACKTRACE_PLACEHOLDER_FRAME_SIZE;
    }
    write_str("\n\n\n\n");
}

void host_panic_tail_and_exit(int exit_code)
{
    write_backtrace();
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

static uintptr_t interrupted_pc(const void *context)
{
    const ucontext_t *uc = context;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

static void on_fatal_signal(int sig, siginfo_t *info, void *context)
{
    s_interrupted_pc = interrupted_pc(context);
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
    /* backtrace()'s first call loads libgcc_s (dlopen, malloc): done here, so that the call in the
       panic handler only unwinds. */
    void *frame;
    backtrace(&frame, 1);
    dl_iterate_phdr(take_executable_bias, &s_load_bias);
    /* SA_SIGINFO: the handler gets the interrupted context, for the faulting PC */
    struct sigaction action = {.sa_sigaction = on_fatal_signal, .sa_flags = SA_SIGINFO};
    sigemptyset(&action.sa_mask);
    const int signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        sigaction(signals[i], &action, NULL);
    }
}
