/*
 * buf.h - growable byte buffer with a hard cap.
 *
 * Every buffer that grows from outside input (HTTP bodies, fetched pages, rendered output) is a
 * buf with a maximum size; appending past it fails with BUF_TOOBIG and leaves the content as it
 * was. The data is always NUL-terminated (the terminator is not counted in len).
 * A buf belongs to one thread at a time.
 */
#ifndef BOOKRANK_BUF_H
#define BOOKRANK_BUF_H

#include <stddef.h>

enum { BUF_OK = 0, BUF_NOMEM = -1, BUF_TOOBIG = -2 };

typedef struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len */
} buf;

void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *data, size_t len);
int buf_append_str(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf *b); /* len = 0, keeps the memory */
/* Hands the data to the caller (who frees it) and leaves b empty; never NULL unless out of
 * memory. */
char *buf_steal(buf *b, size_t *len);
void buf_free(buf *b);

/* Formats a reason into a caller's why[0..whylen) buffer (why may be NULL or whylen 0: nothing
 * is written); always terminated. The one helper for the "why, whylen" convention. */
void why_printf(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new malloc'd formatted string (caller frees), for error messages; NULL when out of memory. */
char *buf_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
