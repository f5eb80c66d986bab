/*
 * isbn.h - parse and normalise the ISBNs people paste.
 *
 * Accepts ISBN-10 and ISBN-13 with hyphens and spaces anywhere and a lower- or upper-case
 * 'x' check digit (ISBN-10 only). Both check digits are verified. Every valid input is
 * normalised to ISBN-13; 978-prefixed numbers also get their ISBN-10, 979-prefixed ones have none.
 *
 * Pure functions, no allocation: any thread.
 */
#ifndef BOOKRANK_ISBN_H
#define BOOKRANK_ISBN_H

#include <stddef.h>

typedef enum isbn_err {
    ISBN_OK = 0,
    ISBN_ERR_EMPTY,  /* nothing but separators */
    ISBN_ERR_CHAR,   /* a character that is not a digit, separator or final ISBN-10 X */
    ISBN_ERR_LENGTH, /* neither 10 nor 13 digits */
    ISBN_ERR_CHECK,  /* check digit does not match */
    ISBN_ERR_PREFIX  /* 13 digits not starting with 978 or 979 */
} isbn_err;

typedef struct isbn {
    char isbn13[14]; /* 13 digits, NUL-terminated */
    char isbn10[11]; /* 10 characters, or "" for 979-prefixed numbers */
} isbn;

/* Parse len bytes of in (need not be NUL-terminated). On ISBN_OK fills *out. */
isbn_err isbn_parse(const char *in, size_t len, isbn *out);

/* Like isbn_parse, but on error writes a precise human-readable reason into why
 * (e.g. "bad check digit: expected 7, got 8"); why may be NULL. */
isbn_err isbn_parse_explain(const char *in, size_t len, isbn *out, char *why, size_t whylen);

/* A short stable reason for an error code: "empty", "bad character", ... */
const char *isbn_strerror(isbn_err err);

#endif
