/*
 * observation.h - one fetch of one book from one source (SPEC §1), the record that flows from
 * the scraper through the store to JSON, CSV and HTML.
 *
 * An observation owns every pointer in it; obs_clear() frees them. It belongs to one thread at
 * a time: the worker that filled it hands it over (with ownership) to whoever it reports to.
 */
#ifndef BOOKRANK_OBSERVATION_H
#define BOOKRANK_OBSERVATION_H

#include <stddef.h>
#include <stdint.h>

/* How many sources one process reads at most (the command line's --source list, the metrics'
 * per-source table). */
#define OBS_MAX_SOURCES 32

typedef enum obs_status {
    OBS_OK = 0,
    OBS_NO_RANK,
    OBS_NOT_FOUND,
    OBS_BLOCKED,
    OBS_ERROR,
    OBS_STATUS_COUNT
} obs_status;

/* An edition's format, as a page says it or a user sets it. */
typedef enum obs_format {
    OBS_FORMAT_UNKNOWN = 0,
    OBS_FORMAT_PAPERBACK,
    OBS_FORMAT_HARDCOVER,
    OBS_FORMAT_KINDLE,
    OBS_FORMAT_AUDIOBOOK,
    OBS_FORMAT_OTHER,
    OBS_FORMAT_COUNT
} obs_format;

/* "paperback", "hardcover", "kindle", "audiobook", "other"; NULL for OBS_FORMAT_UNKNOWN. */
const char *obs_format_name(obs_format format);
/* The format for a name, or -1 when unknown. */
int obs_format_parse(const char *name);

/* "ok", "no_rank", "not_found", "blocked", "error". */
const char *obs_status_name(obs_status status);
/* The status for a name, or -1 when unknown. */
int obs_status_parse(const char *name);

typedef struct obs_category {
    int64_t rank;
    char *category; /* owned */
} obs_category;

typedef struct observation {
    char book_id[14];      /* the book's id: its ISBN-13, or its ASIN */
    char *source;          /* owned: source name, e.g. "amazon.com" */
    int64_t fetched_at_ms; /* UTC, ms since the epoch */
    obs_status status;
    int64_t rank;             /* -1 when none */
    char *rank_category;      /* owned, NULL when none */
    obs_category *categories; /* owned array, page order */
    size_t ncategories;
    char *title;     /* owned, NULL when none seen */
    int http_status; /* 0 when no HTTP answer */
    int attempts;
    int64_t duration_ms;
    char *error;           /* owned, NULL unless status is error (or a blocked/not_found note) */
    int64_t previous_rank; /* only set by store reads: the rank before this one, -1 when none */
    /* Only set by store reads of a book's latest observations, when this one is not ok: the
     * last good one of the same book and source (rank -1 when there never was one). */
    int64_t last_ok_rank;
    char *last_ok_category; /* owned */
    int64_t last_ok_at_ms;
    int rank_free;     /* the rank is on a free list ("Free in Kindle Store"): never
                                compared with paid ranks */
    obs_format format; /* what the page says the edition is; UNKNOWN when it does not say */
} observation;

/* A zeroed observation with rank, previous_rank and last_ok_rank at -1. */
void obs_init(observation *obs);
/* Frees every owned member and re-initialises. NULL is a no-op. */
void obs_clear(observation *obs);
/* Appends a category rank (the text is copied, len bytes). 0 or -1 when out of memory. */
int obs_add_category(observation *obs, int64_t rank, const char *category, size_t len);
/* Replaces *field with a copy of s (NULL clears it). 0 or -1 when out of memory. */
int obs_set_str(char **field, const char *s);
/* Deep copy; 0 or -1 when out of memory (dst is left initialised). */
int obs_copy(observation *dst, const observation *src);

#endif
