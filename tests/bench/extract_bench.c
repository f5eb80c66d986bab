/*
 * extract_bench.c - how fast scr_extract() reads real store pages, in-process, on one core.
 *
 *   extract_bench [--seconds S] [--rounds R] DIR
 *
 * Loads every *.html page of DIR into memory once (file I/O is not timed), then runs R rounds;
 * each round extracts every page repeatedly for about S seconds on this one thread and records
 * bytes per CPU second (CLOCK_THREAD_CPUTIME_ID, so time the scheduler gives to others on a
 * shared machine is not counted) and the time per page. Prints one JSON object:
 *   {"mb_s": median MB/s (10^6 bytes), "rounds_mb_s": [...], "pages": [{"file", "bytes",
 *    "status", "us": median microseconds per extraction}, ...]}
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/observation.h"
#include "scraper/scraper.h"
#include "tests/bench/median.h"

#define MAX_PAGES 64
#define MAX_ROUNDS 32

typedef struct page {
    char name[256];
    char *data;
    size_t len;
    const scr_source *src;
    int status;
    double us[MAX_ROUNDS];
} page;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(data, cap);
            if (!p) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    *len = n;
    return data;
}

/* The preset a fixture belongs to, from its name: amazon_co_uk_... -> amazon.co.uk. */
static const char *preset_for(const char *name)
{
    static const struct {
        const char *prefix, *preset;
    } map[] = {
        {"amazon_co_uk_", "amazon.co.uk"}, {"amazon_com_au_", "amazon.com.au"},
        {"amazon_com_", "amazon.com"},     {"amazon_de_", "amazon.de"},
        {"amazon_fr_", "amazon.fr"},       {"amazon_ca_", "amazon.ca"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(name, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].preset;
    return "amazon.com";
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const page *)a)->name, ((const page *)b)->name);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    int rounds = 5;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (int)strtol(argv[++i], NULL, 10);
        else
            dir = argv[i];
    }
    if (!dir || rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0) {
        fprintf(stderr, "usage: extract_bench [--seconds S] [--rounds R<=%d] DIR\n", MAX_ROUNDS);
        return 2;
    }
    if (scr_global_init() != 0)
        return 1;

    static page pages[MAX_PAGES];
    int npages = 0;
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) && npages < MAX_PAGES) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".html") != 0 || nl >= sizeof pages[0].name)
            continue;
        memcpy(pages[npages].name, e->d_name, nl + 1);
        npages++;
    }
    closedir(d);
    qsort(pages, (size_t)npages, sizeof pages[0], by_name);

    const char *names[8];
    scr_source *srcs[8];
    int nsrcs = 0;
    size_t total = 0;
    for (int i = 0; i < npages; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, pages[i].name) >= (int)sizeof path) {
            fprintf(stderr, "path too long: %s\n", dir);
            return 1;
        }
        pages[i].data = read_file(path, &pages[i].len);
        if (!pages[i].data) {
            perror(path);
            return 1;
        }
        total += pages[i].len;
        const char *preset = preset_for(pages[i].name);
        int k = 0;
        while (k < nsrcs && strcmp(names[k], preset) != 0)
            k++;
        if (k == nsrcs) {
            char *err = NULL;
            srcs[k] = scr_source_new_preset(preset, NULL, &err);
            if (!srcs[k]) {
                fprintf(stderr, "%s: %s\n", preset, err ? err : "?");
                return 1;
            }
            names[k] = preset;
            nsrcs++;
        }
        pages[i].src = srcs[k];
    }
    if (npages == 0) {
        fprintf(stderr, "no .html pages in %s\n", dir);
        return 1;
    }

    observation obs;
    obs_init(&obs);
    /* Warm-up: JIT stacks, caches, page faults. */
    for (int i = 0; i < npages; i++) {
        if (scr_extract(pages[i].src, 200, pages[i].data, pages[i].len, &obs) != 0)
            return 1;
        pages[i].status = (int)obs.status;
    }

    double rate[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        double page_time[MAX_PAGES] = {0};
        long page_runs[MAX_PAGES] = {0};
        double start = cpu_now(), now = start;
        size_t bytes = 0;
        while (now - start < seconds) {
            for (int i = 0; i < npages; i++) {
                double t0 = cpu_now();
                scr_extract(pages[i].src, 200, pages[i].data, pages[i].len, &obs);
                double t1 = cpu_now();
                page_time[i] += t1 - t0;
                page_runs[i]++;
                bytes += pages[i].len;
            }
            now = cpu_now();
        }
        rate[r] = (double)bytes / (now - start) / 1e6;
        for (int i = 0; i < npages; i++)
            pages[i].us[r] = page_time[i] / (double)page_runs[i] * 1e6;
    }
    obs_clear(&obs);

    printf("{\"total_bytes\": %zu, \"rounds_mb_s\": [", total);
    for (int r = 0; r < rounds; r++)
        printf("%s%.1f", r ? ", " : "", rate[r]);
    printf("], \"mb_s\": %.1f, \"pages\": [", median(rate, rounds));
    for (int i = 0; i < npages; i++) {
        printf("%s\n  {\"file\": \"%s\", \"bytes\": %zu, \"status\": \"%s\", \"us\": %.1f}",
               i ? "," : "", pages[i].name, pages[i].len,
               obs_status_name((obs_status)pages[i].status), median(pages[i].us, rounds));
        free(pages[i].data);
    }
    printf("]}\n");
    for (int k = 0; k < nsrcs; k++)
        scr_source_free(srcs[k]);
    scr_global_cleanup();
    return 0;
}
