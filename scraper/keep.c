/*
 * keep.c - pages kept for `bookrank extract` (see keep.h).
 */
#include "keep.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/timeutil.h"

struct scr_keep {
    char *dir;
    int max;
    pthread_mutex_t lock;
    unsigned seq; /* lock: tells apart pages kept in the same millisecond */
    int warned;   /* lock: a write failure was logged */
};

scr_keep *scr_keep_new(const char *dir, int max_pages, char **err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        if (err)
            *err = buf_strdup_printf("--keep-pages: cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    scr_keep *k = calloc(1, sizeof *k);
    if (!k || !(k->dir = strdup(dir))) {
        free(k);
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    k->max = max_pages;
    pthread_mutex_init(&k->lock, NULL);
    return k;
}

void scr_keep_free(scr_keep *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->lock);
    free(k->dir);
    free(k);
}

/* Letters, digits and . - only: a source name or id never makes a path. */
static void safe_copy(char *out, size_t outlen, const char *in)
{
    size_t n = 0;
    for (; in && *in && n + 1 < outlen; in++) {
        char c = *in;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
        out[n++] = ok ? c : '-';
    }
    out[n] = '\0';
}

static int kept_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 5 && e->d_name[0] != '.' && strcmp(e->d_name + n - 5, ".html") == 0;
}

/* Removes the oldest kept pages beyond the cap. Lock held. */
static void prune_locked(scr_keep *k)
{
    struct dirent **names = NULL;
    int n = scandir(k->dir, &names, kept_name, alphasort);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        if (i < n - k->max) {
            char path[4096];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", k->dir, names[i]->d_name) <
                sizeof path)
                (void)unlink(path);
        }
        free(names[i]);
    }
    free(names);
}

void scr_keep_page(scr_keep *k, const char *source, const char *id, obs_status status,
                   int http_status, const char *page, size_t len)
{
    char src[64], bid[16], when[32], name[200], tmp[4300], path[4300];
    safe_copy(src, sizeof src, source);
    safe_copy(bid, sizeof bid, id);
    int64_t now = time_now_ms();
    time_format_iso(now, when, sizeof when); /* 2026-12-02T13:00:00Z */
    for (char *c = when; *c; c++)
        if (*c == ':')
            *c = '-';
    pthread_mutex_lock(&k->lock);
    unsigned seq = k->seq++;
    snprintf(name, sizeof name, "%s.%03d.%06u_%s_%s_%s_%d.html", when, (int)(now % 1000),
             seq % 1000000u, src, bid, obs_status_name(status), http_status);
    int ok = (size_t)snprintf(path, sizeof path, "%s/%s", k->dir, name) < sizeof path &&
             (size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp", k->dir, name) < sizeof tmp;
    FILE *f = ok ? fopen(tmp, "wb") : NULL;
    if (f) {
        ok = (len == 0 || fwrite(page, 1, len, f) == len);
        ok = fclose(f) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok)
            (void)unlink(tmp);
    } else {
        ok = 0;
    }
    if (ok)
        prune_locked(k);
    else if (!k->warned) {
        k->warned = 1;
        log_warn("--keep-pages: cannot write pages into %s: %s", k->dir, strerror(errno));
    }
    pthread_mutex_unlock(&k->lock);
}
