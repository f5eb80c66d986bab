/*
 * web.h - what clients get: the dashboard (HTML, CSS and JS embedded into the binary at build
 * time from the files in web/; no network or files needed at run time) and the JSON and CSV
 * forms of the store's records (SPEC §3), encoded here and nowhere else, with jansson.
 *
 * Read-only data and pure functions: any thread. A returned json_t * is a new reference owned by
 * the caller (json_decref it).
 */
#ifndef BOOKRANK_WEB_H
#define BOOKRANK_WEB_H

#include <jansson.h>
#include <stddef.h>

#include "../common/buf.h"
#include "../db/db.h"

typedef struct web_asset {
    const char *path;          /* "/", "/index.html", "/style.css", "/js/main.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} web_asset;

/* The asset served at path, or NULL. Each file of web/ is served at its path under web/
 * (web/js/main.js at "/js/main.js"); "/" is index.html too. */
const web_asset *web_asset_find(const char *path);

/* ISO 8601 UTC with Z, or JSON null for 0. */
json_t *web_json_time(int64_t ms);
/* One entry of a book's "latest" (and of a history): source, status, rank, rank_category,
 * categories, fetched_at, previous_rank, error (+ title, http_status, attempts, duration_ms). */
json_t *web_json_observation(const observation *obs);
/* A book object (SPEC §3). */
json_t *web_json_book(const db_book *book);
/* {"id", "state", "total", "done", "counts": {status: n}, "created_at", "started_at",
 *  "finished_at"} */
json_t *web_json_job(const db_job *job);
/* {"error": {"code", "message", "details"}}; details may be NULL (then []), and is stolen. */
json_t *web_json_error(const char *code, const char *message, json_t *details);

/* The CSV export: header line, then one line per observation (RFC 4180 quoting; fields that a
 * spreadsheet would run as a formula are prefixed with a quote). 0 or a BUF_* error. */
int web_csv_header(buf *out);
int web_csv_row(buf *out, const observation *obs);

/* Encodes compactly into out (appending). 0 or a BUF_* error. */
int web_json_dump(buf *out, const json_t *value);

#endif
