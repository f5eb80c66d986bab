/*
 * render.h - the wire format: every JSON and CSV shape the API and the command line print
 * (SPEC §3), written into a caller's buf. Nothing outside render/ assembles JSON or CSV.
 *
 * JSON comes from one writer (json.c) that escapes in one place: quotes, backslashes, control
 * bytes, and '<' '>' '&' U+2028 U+2029 as \u escapes (so a JSON answer is never read as HTML or
 * breaks a script), with invalid UTF-8 replaced by U+FFFD (common/utf8). Numbers are integers
 * unless a shape says otherwise. Shapes are compact; the CLI asks for indented output with
 * RENDER_PRETTY.
 *
 * Every function appends to out and returns BUF_OK or a BUF_* error; on an error out may hold a
 * partial value, which the caller discards. Scraped text (titles, categories, errors) is
 * untrusted and always goes through the escaper. Pure functions: any thread, one buf per thread.
 */
#ifndef BOOKRANK_RENDER_H
#define BOOKRANK_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/compiler.h"
#include "../common/observation.h"
#include "../db/db.h"

/* Layout flags for the shapes that take them. */
enum { RENDER_COMPACT = 0, RENDER_PRETTY = 1 };

/* ---- the JSON writer (prefix jw_: jansson owns json_) ---------------------------------------
 * Commas and nesting are tracked by the writer, errors are sticky: a sequence of calls ends with
 * jw_end(), which says whether all of them succeeded. Used by render/ itself and by tests;
 * other modules call the shapes below. */
typedef struct jw {
    buf *out;
    int rc; /* first BUF_* error, sticky */
    int pretty;
    unsigned depth;
    uint64_t has_items; /* bit d: the container at depth d already holds a value */
    int after_key;      /* the next value completes a "key": pair */
} jw;

#define JW_MAX_DEPTH 64

void jw_begin(jw *w, buf *out, int flags);
BR_MUST_CHECK int jw_end(jw *w);
void jw_object_open(jw *w);
void jw_object_close(jw *w);
void jw_array_open(jw *w);
void jw_array_close(jw *w);
void jw_key(jw *w, const char *key);
void jw_string(jw *w, const char *s); /* NULL writes null */
void jw_string_n(jw *w, const char *s, size_t n);
void jw_int(jw *w, int64_t v);
void jw_rank(jw *w, int64_t rank); /* rank < 0 writes null */
void jw_double(jw *w, double v);   /* finite, %.3f-like shortest form */
void jw_bool(jw *w, int v);
void jw_null(jw *w);
void jw_time(jw *w, int64_t ms); /* ISO 8601 UTC "...Z", null for <= 0 */

/* ---- shapes ---------------------------------------------------------------------------------- */

/* [{"rank": n, "category": "..."}, ...] */
void render_category_list(jw *w, const obs_category *cats, size_t n);
/* One observation as it appears in a book's "latest" and in a history: source, status, rank,
 * rank_category, categories, fetched_at, previous_rank, error, title, http_status, attempts,
 * duration_ms. */
void render_observation(jw *w, const observation *obs);
/* A book object (SPEC §3). */
void render_book(jw *w, const db_book *book);
/* A job: id, state, total, done, counts {status: n}, all_books, created_at, started_at,
 * finished_at. */
void render_job(jw *w, const db_job *job);

/* [book, ...] */
BR_MUST_CHECK int render_books(buf *out, const db_book *books, size_t n, int flags);
/* One book object. */
BR_MUST_CHECK int render_book_doc(buf *out, const db_book *book, int flags);
/* {"id": ..., "isbn13": ... or null, "observations": [...]} - the history of one book, newest
 * first. */
BR_MUST_CHECK int render_history(buf *out, const char *id, const char *isbn13,
                                 const observation *obs, size_t n, int flags);
/* {"job": {...}} and, when joined >= 0, "joined": bool. */
BR_MUST_CHECK int render_job_doc(buf *out, const db_job *job, int joined);
/* {"job": {... "failed": [{"id", "source", "status", "error", "fetched_at"}]}} - a job with the
 * fetches that did not yield a rank (failed[0..n), as stored). */
BR_MUST_CHECK int render_job_detail(buf *out, const db_job *job, const observation *failed,
                                    size_t n);
/* {"jobs": [job...], "next_scheduled_at": time or null} - newest first. */
BR_MUST_CHECK int render_jobs(buf *out, const db_job *jobs, size_t n, int64_t next_scheduled_ms);
/* {"added": [id...], "already_tracked": [...]} plus "job" when job is not NULL. added[i]
 * says which list ids[i] goes to. */
BR_MUST_CHECK int render_books_added(buf *out, const char *const *ids, const int *added, size_t n,
                                     const db_job *job);
/* {"status": status} (and "reason" when not NULL). */
BR_MUST_CHECK int render_health(buf *out, const char *status, const char *reason);
/* {"auth_required": bool, "version": ..., "sources": [...]} */
BR_MUST_CHECK int render_config(buf *out, int auth_required, const char *version,
                                const char *const *sources, size_t nsources);

/* What `bookrank extract` prints: status, rank, rank_category, categories, title, error. */
BR_MUST_CHECK int render_extract(buf *out, const observation *obs, int flags);
/* What `bookrank refresh --json` prints: {"job": {...}, "results": [observation with the book's
 * "id"], "wall_seconds": s}. */
BR_MUST_CHECK int render_refresh(buf *out, const db_job *job, const observation *results, size_t n,
                                 double wall_seconds, int flags);

/* One entry of an error's details: {"index", "input", "reason"}; input is echoed as at most
 * RENDER_ECHO_MAX bytes (cut on a character boundary). */
typedef struct render_detail {
    size_t index;
    const char *input; /* NULL writes null (an entry that was not text) */
    size_t input_len;
    const char *reason;
} render_detail;
#define RENDER_ECHO_MAX 64

/* {"error": {"code", "message", "details": [...]}} */
BR_MUST_CHECK int render_error(buf *out, const char *code, const char *message,
                               const render_detail *details, size_t ndetails);

/* {key: text} - a chat message (Slack's "text", Discord's "content"); text is cut at max bytes
 * on a character boundary, with "…" at the end. */
BR_MUST_CHECK int render_text_payload(buf *out, const char *key, const char *text, size_t max);

/* ---- alerts (render/alerts.c) -----------------------------------------------------------------
 * A rule: {"n", "kind", "value" (null for new_best), "book" (id or null), "source" (or null),
 * "notify": [targets], "from_config": bool, "created_at"}. */
void render_alert_rule(jw *w, const db_alert_rule *rule);
/* [rule, ...] */
BR_MUST_CHECK int render_alert_rules(buf *out, const db_alert_rule *rules, size_t n);
/* {"alert": rule} (POST /api/alerts' answer) */
BR_MUST_CHECK int render_alert_rule_doc(buf *out, const db_alert_rule *rule);
/* Recent deliveries, newest first: [{"id" (event id), "row", "kind", "rule", "book", "source",
 * "target", "state", "attempts", "message", "created_at", "next_attempt_at", "sent_at",
 * "last_error"}]. */
BR_MUST_CHECK int render_alert_events(buf *out, const db_alert_event *events, size_t n);
/* The event JSON of SPEC §5: {"id", "kind", "alert": rule, "book": book object, "source",
 * "observation": {...}, "previous_rank", "message", "fired_at"}. */
BR_MUST_CHECK int render_alert_event_body(buf *out, const char *event_id, const db_alert_rule *rule,
                                          const db_book *book, const observation *obs,
                                          int64_t previous_rank, const char *message,
                                          int64_t fired_at_ms);
/* {"batch": true, "events": [body, ...]}: several events for one target in one message; each
 * body is an event JSON as stored. */
BR_MUST_CHECK int render_alert_batch(buf *out, const char *const *bodies, size_t n);

/* ---- CSV (RFC 4180) ---------------------------------------------------------------------------
 * Observations: isbn13,source,fetched_at,status,rank,rank_category,http_status,error,id (the
 * first columns of SPEC §3's export; isbn13 empty for a book without an ISBN). Every text field
 * is quoted; a field that a spreadsheet would run as a formula (starting with
 * = + - @, tab or CR) is prefixed with a '. Lines end with CRLF. */
BR_MUST_CHECK int render_csv_header(buf *out);
BR_MUST_CHECK int render_csv_row(buf *out, const observation *obs);
/* The book list as CSV (`bookrank list --csv`): one row per book and source of its latest
 * observations (a book without any: one row with the observation's fields empty):
 * id,isbn13,asin,title,format,work,tags,source,status,rank,rank_category,fetched_at,
 * last_ok_rank,last_ok_at (tags joined by |). */
BR_MUST_CHECK int render_books_csv_header(buf *out);
BR_MUST_CHECK int render_books_csv_row(buf *out, const db_book *book);

/* ---- the stored form of category ranks ------------------------------------------------------
 * The store keeps an observation's category ranks as a compact JSON array
 * [{"rank": n, "category": "..."}] (the same text the export's categories column will carry). */
BR_MUST_CHECK int render_categories(buf *out, const obs_category *cats, size_t n);
/* Appends the category ranks held in text[0..len) to obs. A value this writer never produced
 * (not an array, entries without an integer rank and a string category) is skipped, not an
 * error: 0, or -1 only when out of memory. */
BR_MUST_CHECK int render_categories_parse(observation *obs, const char *text, size_t len);

#endif
