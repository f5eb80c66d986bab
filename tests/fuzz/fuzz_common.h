/*
 * fuzz_common.h - what the fuzz targets (tests/fuzz/fuzz_*.c) share: reporting a broken
 * invariant, and checks used by more than one target (ISBNs, book ids).
 *
 * Each target is one static function `fuzz_NAME(data, size)`. Built by tests/fuzz/run.sh with
 * clang and libFuzzer, the target file also defines LLVMFuzzerTestOneInput and a broken invariant
 * aborts (libFuzzer then saves the input). Built with FUZZ_REPLAY defined (the target files are
 * #included by tests/unit/test_fuzz_regressions.c, plain gcc), no libFuzzer is involved: the first
 * broken invariant is recorded in fuzz_failure and the target goes on, so that it still frees
 * what it allocated, and the test reports it as "not ok".
 */
#ifndef BOOKRANK_FUZZ_COMMON_H
#define BOOKRANK_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/isbn.h"

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

/* The first broken invariant of the current input (replay builds only; "" when none). */
static char fuzz_failure[512];

static inline void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
#ifdef FUZZ_REPLAY
    if (fuzz_failure[0])
        return;
    va_start(ap, fmt);
    vsnprintf(fuzz_failure, sizeof fuzz_failure, fmt, ap);
    va_end(ap);
#else
    fputs("fuzz: invariant broken: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
#endif
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* A NUL-terminated malloc'd copy of the input up to its first NUL (aborts when out of memory:
 * a fuzz run has no use for a half-checked input). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    size_t n = nul ? (size_t)(nul - data) : size;
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static inline int fuzz_valid_utf8(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len;
        uint32_t v, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, v = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, v = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, v = c & 0x07u, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            v = (v << 6) | (s[i + k] & 0x3fu);
        }
        if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* Check digits computed independently of common/isbn.c. */
static inline char fuzz_isbn10_check(const char *d)
{
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (d[i] - '0') * (10 - i);
    int c = (11 - sum % 11) % 11;
    return c == 10 ? 'X' : (char)('0' + c);
}

static inline char fuzz_isbn13_check(const char *d)
{
    int sum = 0;
    for (int i = 0; i < 12; i++)
        sum += (d[i] - '0') * (i % 2 ? 3 : 1);
    return (char)('0' + (10 - sum % 10) % 10);
}

static inline int fuzz_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/*
 * The invariants of a parsed ISBN: 13 digits with a 978/979 prefix and a valid check digit; the
 * ISBN-10 of a 978 number (same nine digits, valid check), none for 979; and both forms parse
 * back to the same value. `what` names the caller in the message.
 */
static inline void fuzz_check_isbn(const isbn *b, const char *what)
{
    const char *d13 = b->isbn13;
    int ok13 = memchr(d13, '\0', sizeof b->isbn13) && strlen(d13) == 13 && fuzz_all_digits(d13, 13);
    FUZZ_CHECK(ok13, "%s: isbn13 is not 13 digits", what);
    if (!ok13)
        return;
    FUZZ_CHECK(memcmp(d13, "978", 3) == 0 || memcmp(d13, "979", 3) == 0,
               "%s: isbn13 %s has a bad prefix", what, d13);
    FUZZ_CHECK(d13[12] == fuzz_isbn13_check(d13), "%s: isbn13 %s has a bad check digit", what, d13);
    const char *d10 = b->isbn10;
    FUZZ_CHECK(memchr(d10, '\0', sizeof b->isbn10) != NULL, "%s: isbn10 not terminated", what);
    if (!memchr(d10, '\0', sizeof b->isbn10))
        return;
    if (memcmp(d13, "979", 3) == 0) {
        FUZZ_CHECK(d10[0] == '\0', "%s: 979 number %s has an ISBN-10", what, d13);
    } else {
        int ok10 = strlen(d10) == 10 && fuzz_all_digits(d10, 9) && memcmp(d10, d13 + 3, 9) == 0 &&
                   d10[9] == fuzz_isbn10_check(d10);
        FUZZ_CHECK(ok10, "%s: isbn10 '%s' does not belong to %s", what, d10, d13);
    }
    isbn again;
    isbn_err e = isbn_parse(d13, 13, &again);
    FUZZ_CHECK(e == ISBN_OK && memcmp(&again, b, sizeof again) == 0,
               "%s: %s does not re-parse to itself", what, d13);
    if (d10[0]) {
        e = isbn_parse(d10, strlen(d10), &again);
        FUZZ_CHECK(e == ISBN_OK && memcmp(&again, b, sizeof again) == 0,
                   "%s: ISBN-10 %s does not parse to %s", what, d10, d13);
    }
}

/* 1 when s is an ASIN as stored, checked independently of common/ids.c: "B" and nine upper-case
 * letters or digits. */
static inline int fuzz_asin_form(const char *s)
{
    if (strlen(s) != 10 || s[0] != 'B')
        return 0;
    for (size_t i = 1; i < 10; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

/*
 * The invariants of a parsed book id (common/ids.h): an ISBN's id is its ISBN-13 and its ISBN
 * forms hold fuzz_check_isbn; an ASIN's id is an ASIN as stored, with no ISBN-13 or ISBN-10;
 * any other kind is wrong. Either way the id (and an ISBN's ISBN-10) parses back to the same
 * book_id. `what` names the caller in the message.
 */
static inline void fuzz_check_id(const book_id *b, const char *what)
{
    int terminated = memchr(b->id, '\0', sizeof b->id) &&
                     memchr(b->isbn13, '\0', sizeof b->isbn13) &&
                     memchr(b->isbn10, '\0', sizeof b->isbn10);
    FUZZ_CHECK(terminated, "%s: a field of the id is not terminated", what);
    if (!terminated)
        return;
    if (b->kind == ID_KIND_ISBN) {
        FUZZ_CHECK(strcmp(b->id, b->isbn13) == 0, "%s: the id %s of an ISBN is not its ISBN-13 %s",
                   what, b->id, b->isbn13);
        isbn forms;
        memset(&forms, 0, sizeof forms);
        memcpy(forms.isbn13, b->isbn13, sizeof forms.isbn13);
        memcpy(forms.isbn10, b->isbn10, sizeof forms.isbn10);
        fuzz_check_isbn(&forms, what);
    } else if (b->kind == ID_KIND_ASIN) {
        FUZZ_CHECK(fuzz_asin_form(b->id), "%s: ASIN id '%s' is not B and nine letters or digits",
                   what, b->id);
        FUZZ_CHECK(asin_valid(b->id, strlen(b->id)), "%s: asin_valid refuses the ASIN id %s", what,
                   b->id);
        FUZZ_CHECK(b->isbn13[0] == '\0' && b->isbn10[0] == '\0', "%s: ASIN %s has an ISBN", what,
                   b->id);
    } else {
        FUZZ_CHECK(0, "%s: id %s of unknown kind %d", what, b->id, (int)b->kind);
        return;
    }
    book_id again;
    id_err e = id_parse(b->id, strlen(b->id), &again, NULL, 0);
    FUZZ_CHECK(e == ID_OK && memcmp(&again, b, sizeof again) == 0,
               "%s: the id %s does not re-parse to itself", what, b->id);
    if (b->isbn10[0]) {
        e = id_parse(b->isbn10, strlen(b->isbn10), &again, NULL, 0);
        FUZZ_CHECK(e == ID_OK && memcmp(&again, b, sizeof again) == 0,
                   "%s: ISBN-10 %s does not parse to the id %s", what, b->isbn10, b->id);
    }
}

#endif
