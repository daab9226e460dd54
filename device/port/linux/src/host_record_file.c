/*
 * Following a board's record file (host_record_file.h). Written once for the access point and the BLE air,
 * which had each their own copy of it.
 */
#include "host_record_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "esp_log.h"

static void take(host_record_file_t *f, const char *data, size_t len)
{
    size_t room = f->line_max < sizeof(f->line) - 1 ? f->line_max : sizeof(f->line) - 1;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (f->line_len < room) {
                f->line[f->line_len++] = data[i];
            } else {
                f->too_long = true;
            }
            continue;
        }
        f->line[f->line_len] = '\0';
        if (f->too_long) {
            ESP_LOGW(f->tag, "record longer than %u bytes ignored", (unsigned)room);
        } else if (f->line_len > 0) {
            f->apply(f->line);
        }
        f->line_len = 0;
        f->too_long = false;
    }
}

bool host_record_file_update(host_record_file_t *f)
{
    char buf[4096];
    /* Drain the notifications first: a write after this read is notified again. */
    while (f->notify >= 0 && read(f->notify, buf, sizeof(buf)) > 0) {
    }
    ssize_t n;
    bool read_any = false;
    while (f->file >= 0 && (n = read(f->file, buf, sizeof(buf))) > 0) {
        take(f, buf, (size_t)n);
        read_any = true;
    }
    return read_any;
}

bool host_record_file_polled(const host_record_file_t *f)
{
    return f->polled;
}

static void close_both(host_record_file_t *f)
{
    if (f->file >= 0) {
        close(f->file);
        f->file = -1;
    }
    if (f->notify >= 0) {
        close(f->notify);
        f->notify = -1;
    }
}

int host_record_file_open(host_record_file_t *f, const char *path)
{
    f->notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int notify_errno = errno;
    f->file = open(path, O_RDONLY | O_CLOEXEC);
    if (f->file >= 0 && f->notify < 0 && (notify_errno == EMFILE || notify_errno == ENFILE)) {
        ESP_LOGW(f->tag, "no inotify instance left (%s): reading %s every %d ms instead", strerror(notify_errno),
                 path, HOST_RECORD_POLL_MS);
        f->polled = true;
        host_record_file_update(f);
        return -1;
    }
    if (f->file < 0 || f->notify < 0 || inotify_add_watch(f->notify, path, IN_MODIFY) < 0) {
        ESP_LOGE(f->tag, "cannot follow %s: %s", path, strerror(errno));
        close_both(f);
        return -1;
    }
    host_record_file_update(f);
    return f->notify;
}
