/*
 * utf8.h - the one place that decides what valid UTF-8 is and what replaces what is not.
 *
 * Text from outside (store pages, request bodies, query strings, the database written by older
 * releases) may hold any bytes. Wherever such text must become valid UTF-8 (JSON, the dashboard,
 * titles and category names), every byte that does not start a valid sequence is replaced by
 * U+FFFD, one replacement per byte: the same input always gives the same output, everywhere.
 * Valid means RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
 *
 * Pure functions: any thread.
 */
#ifndef BOOKRANK_UTF8_H
#define BOOKRANK_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "compiler.h"

/* The replacement character U+FFFD as UTF-8. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* Length (1-4) of the valid sequence at s[0..avail), with its code point in *cp (may be NULL);
 * 0 when s does not start a valid sequence (or avail is 0). */
size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp);

/* Writes cp (which must be <= U+10FFFF and not a surrogate) into out; returns 1-4. */
size_t utf8_encode(unsigned char out[4], uint32_t cp);

/* Whether s[0..n) is entirely valid UTF-8. */
int utf8_valid(const char *s, size_t n);

/* Appends s[0..n) to out with every invalid byte replaced by U+FFFD. 0 or a BUF_* error (out
 * keeps what it had before the call). */
BR_MUST_CHECK int utf8_sanitize_append(buf *out, const char *s, size_t n);

/* A malloc'd NUL-terminated copy of s[0..n) with invalid bytes replaced (caller frees); NULL
 * when out of memory. */
BR_MUST_CHECK char *utf8_sanitize_dup(const char *s, size_t n);

/* Whether s[0..n) is valid UTF-8 without control characters (DEL included); with lines, newlines
 * and tabs are allowed (a note). For user-set text fields: the API and the store check the same. */
int utf8_plain_text(const char *s, size_t n, int lines);

/* The longest prefix of s[0..n) that ends on a character boundary and is at most max bytes. */
size_t utf8_truncate(const char *s, size_t n, size_t max);

#endif
