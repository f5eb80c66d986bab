/*
 * ids.h - a book's id from whatever people paste (SPEC §1), and the one rule for splitting a
 * pasted list into entries.
 *
 * A book's id is its ISBN-13, or its ASIN when it has no ISBN (Kindle e-books, audiobooks, other
 * products). Accepted input:
 *  - ISBN-10 or ISBN-13 as isbn.h reads them (hyphens, spaces, a lower- or upper-case x), also
 *    with Unicode dashes (U+2010-U+2015, U+2212) or no-break spaces as separators and an "ISBN",
 *    "ISBN-10:" or "ISBN-13:" prefix in any case;
 *  - an ASIN in any case ("B" and nine letters or digits), stored upper-case; a 10-character
 *    input that is a valid ISBN-10 is that ISBN (a print book's ASIN is its ISBN-10);
 *  - an Amazon product URL of any storefront (/dp/ID, /gp/product/ID, /gp/aw/d/ID, /-/de/dp/ID,
 *    with or without a title slug, ref= segments and a query); the id is taken from it.
 * Short share links (a.co/d/..., amzn.eu/d/..., amzn.to/...) cannot be resolved without
 * fetching them and are refused with a message that asks for the product page URL.
 *
 * Pure functions, no allocation: any thread.
 */
#ifndef BOOKRANK_IDS_H
#define BOOKRANK_IDS_H

#include <stddef.h>

#include "compiler.h"
#include "isbn.h"

typedef enum id_err {
    ID_OK = 0,
    ID_ERR_EMPTY,      /* nothing but blank space and separators */
    ID_ERR_INVALID,    /* neither an ISBN nor an ASIN (why says what is wrong) */
    ID_ERR_SHORT_LINK, /* a short share link */
    ID_ERR_URL         /* a URL that is not an Amazon product page */
} id_err;

typedef enum id_kind { ID_KIND_ISBN = 1, ID_KIND_ASIN = 2 } id_kind;

#define ID_MAX 13 /* longest id: an ISBN-13 */
#define ASIN_LEN 10

typedef struct book_id {
    char id[ID_MAX + 1]; /* the key: the ISBN-13, or the ASIN */
    char isbn13[14];     /* "" for an ASIN */
    char isbn10[11];     /* "" for an ASIN and for 979-prefixed ISBNs */
    id_kind kind;
} book_id;

/* Parses len bytes of in (need not be NUL-terminated). On ID_OK fills *out; otherwise writes a
 * precise human-readable reason into why[0..whylen) (why may be NULL). */
BR_MUST_CHECK id_err id_parse(const char *in, size_t len, book_id *out, char *why, size_t whylen);

/* A short stable description of an error code. */
const char *id_strerror(id_err err);

/* Whether s[0..len) is an ASIN as stored: "B" and nine upper-case letters or digits. */
int asin_valid(const char *s, size_t len);
/* Normalises an ASIN typed in any case into out (ASIN_LEN + 1 bytes): 1 when valid, else 0. */
int asin_normalize(const char *s, size_t len, char out[ASIN_LEN + 1]);

/*
 * Splits a pasted list into entries (SPEC §1): newlines, commas and semicolons separate; a piece
 * that is not one valid id as a whole ("978 0 13 226993 3" and "ISBN 978-..." are one id) is
 * split at blank space. An Amazon URL is never split at a comma or semicolon in its query. Calls
 * fn for every non-empty entry, in order, with its index (0, 1, ...) and its bytes (not
 * NUL-terminated, borrowed from text); stops early when fn returns non-zero. Returns the number
 * of entries seen.
 */
typedef int (*id_entry_fn)(void *ctx, size_t index, const char *entry, size_t len);
size_t id_list_split(const char *text, size_t len, id_entry_fn fn, void *ctx);

#endif
