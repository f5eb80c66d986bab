/* log.c - stderr logging with a UTC timestamp and level. */
#include "log.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic int current_level = LOG_INFO;
static int log_fd = STDERR_FILENO; /* set once by log_open_file, before threads */
static char log_path[4096];        /* "" = stderr */

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open_file(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof log_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open_log(path);
    if (fd < 0)
        return -1;
    memcpy(log_path, path, n + 1);
    log_fd = fd;
    return 0;
}

int log_reopen(void)
{
    if (!log_path[0])
        return 0;
    int fd = open_log(log_path);
    if (fd < 0)
        return -1;
    int rc = dup2(fd, log_fd) < 0 ? -1 : 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

void log_set_level(log_level level)
{
    atomic_store(&current_level, (int)level);
}
log_level log_get_level(void)
{
    return (log_level)atomic_load(&current_level);
}

int log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void log_msg(log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"debug", "info", "warn", "error", "off"};
    if ((int)level < atomic_load(&current_level))
        return;
    char line[2048], stamp[32];
    time_format_iso(time_now_ms(), stamp, sizeof stamp);
    int n = snprintf(line, sizeof line, "%s %s ", stamp, tags[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(log_fd, line, len);
    (void)w;
}
