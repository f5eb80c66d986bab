/* progress.c - the refresh progress line (see internal.h). */
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

void progress_init(progress *p, int enabled)
{
    p->enabled = enabled;
    atomic_store(&p->total, 0);
    atomic_store(&p->seen, 0);
}

void progress_set_total(progress *p, int64_t total)
{
    atomic_store(&p->total, total);
}

static void write_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void progress_clear(const progress *p)
{
    if (p->enabled)
        write_all("\r\033[K", 4);
}

void progress_step(progress *p)
{
    int64_t seen = atomic_fetch_add(&p->seen, 1) + 1;
    if (!p->enabled)
        return;
    int64_t total = atomic_load(&p->total);
    enum { WIDTH = 30 };
    int filled = total > 0 ? (int)(seen * WIDTH / (total > seen ? total : seen)) : 0;
    char line[128];
    int n = snprintf(line, sizeof line, "\r[%.*s%*s] %lld/%lld", filled,
                     "##############################", WIDTH - filled, "", (long long)seen,
                     (long long)total);
    if (n > 0 && (size_t)n < sizeof line)
        write_all(line, (size_t)n);
}
