/*
 * fuzz_isbn.c - fuzz target: isbn_parse_explain() on arbitrary bytes (what people paste, what
 * request bodies and path segments carry).
 *
 * Invariants: the result is one of the isbn_err codes and isbn_parse agrees; `why` is always
 * terminated within whylen (also for tiny buffers, whose text is a prefix of the full one), empty
 * on success and starting with isbn_strerror() on failure; a parsed ISBN is well formed, holds
 * the input's digits, and re-parses to itself (fuzz_check_isbn).
 */
#include "fuzz_common.h"

static void fuzz_isbn(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char why[160];
    isbn got;
    memset(&got, 0x5a, sizeof got);
    isbn_err err = isbn_parse_explain(in, size, &got, why, sizeof why);
    FUZZ_CHECK(err >= ISBN_OK && err <= ISBN_ERR_PREFIX, "unknown isbn_err %d", (int)err);
    FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL, "why is not terminated");

    isbn plain;
    FUZZ_CHECK(isbn_parse(in, size, &plain) == err, "isbn_parse and isbn_parse_explain disagree");
    FUZZ_CHECK(isbn_parse_explain(in, size, NULL, NULL, 0) == err, "result depends on out/why");

    /* A small why buffer of exactly whylen bytes, so that ASan sees any write past it. */
    size_t whylen = size ? data[0] % 12u : 0;
    char *small = whylen ? malloc(whylen) : NULL;
    if (whylen && !small)
        abort();
    isbn_parse_explain(in, size, NULL, small, whylen);
    if (small) {
        FUZZ_CHECK(memchr(small, '\0', whylen) != NULL, "small why (%zu) is not terminated",
                   whylen);
        FUZZ_CHECK(strncmp(small, why, whylen - 1) == 0, "small why is not a prefix of why");
        free(small);
    }

    if (err != ISBN_OK) {
        const char *reason = isbn_strerror(err);
        FUZZ_CHECK(strncmp(why, reason, strlen(reason)) == 0, "why '%s' does not start with '%s'",
                   why, reason);
        return;
    }
    FUZZ_CHECK(why[0] == '\0', "why '%s' set on success", why);
    FUZZ_CHECK(memcmp(&plain, &got, sizeof got) == 0, "isbn_parse gave another value");
    fuzz_check_isbn(&got, "isbn");

    /* The digits typed (separators dropped) are the ISBN-13 or the ISBN-10, upper-case X. */
    char typed[16];
    size_t n = 0;
    for (size_t i = 0; i < size && n < sizeof typed - 1; i++) {
        char c = in[i];
        if ((c >= '0' && c <= '9') || c == 'X' || c == 'x')
            typed[n++] = c == 'x' ? 'X' : c;
    }
    typed[n] = '\0';
    FUZZ_CHECK(strcmp(typed, n == 13 ? got.isbn13 : got.isbn10) == 0,
               "typed digits %s are not those of %s / %s", typed, got.isbn13, got.isbn10);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_isbn(data, size);
    return 0;
}
#endif
