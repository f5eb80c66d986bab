/* isbn.c - ISBN-10/ISBN-13 parsing, check digits and conversion. */
#include "isbn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *isbn_strerror(isbn_err err)
{
    switch (err) {
    case ISBN_OK:
        return "ok";
    case ISBN_ERR_EMPTY:
        return "empty";
    case ISBN_ERR_CHAR:
        return "bad character";
    case ISBN_ERR_LENGTH:
        return "wrong length";
    case ISBN_ERR_CHECK:
        return "bad check digit";
    case ISBN_ERR_PREFIX:
        return "bad prefix";
    }
    return "unknown";
}

static char isbn10_check(const char *d9)
{
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (d9[i] - '0') * (10 - i);
    int c = (11 - sum % 11) % 11;
    return c == 10 ? 'X' : (char)('0' + c);
}

static char isbn13_check(const char *d12)
{
    int sum = 0;
    for (int i = 0; i < 12; i++)
        sum += (d12[i] - '0') * (i % 2 ? 3 : 1);
    return (char)('0' + (10 - sum % 10) % 10);
}

static isbn_err fail(isbn_err err, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static isbn_err fail(isbn_err err, char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
        if (n < 0)
            why[0] = '\0';
    }
    return err;
}

isbn_err isbn_parse_explain(const char *in, size_t len, isbn *out, char *why, size_t whylen)
{
    char digits[14];
    size_t n = 0, seen = 0;

    if (why && whylen)
        why[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '-' || c == ' ' || c == '\t')
            continue;
        seen++;
        if (c >= '0' && c <= '9') {
            if (n < sizeof digits - 1)
                digits[n] = (char)c;
            n++;
        } else if (c == 'x' || c == 'X') {
            if (n != 9)
                return fail(ISBN_ERR_CHAR, why, whylen,
                            "bad character: 'X' is only allowed as the last digit of an ISBN-10");
            digits[n++] = 'X';
        } else if (c >= 0x20 && c < 0x7f) {
            return fail(ISBN_ERR_CHAR, why, whylen, "bad character '%c' at position %zu", c, i + 1);
        } else {
            return fail(ISBN_ERR_CHAR, why, whylen, "bad character (byte 0x%02x) at position %zu",
                        c, i + 1);
        }
    }
    if (seen == 0)
        return fail(ISBN_ERR_EMPTY, why, whylen, "empty: no digits");
    if (n != 10 && n != 13)
        return fail(ISBN_ERR_LENGTH, why, whylen, "wrong length: %zu digits, an ISBN has 10 or 13",
                    n);
    if (n == 13 && memchr(digits, 'X', 13)) /* an X typed as 10th of 13 digits too */
        return fail(ISBN_ERR_CHAR, why, whylen,
                    "bad character: 'X' is only allowed as the last digit of an ISBN-10");
    digits[n] = '\0';

    isbn res;
    memset(&res, 0, sizeof res);
    if (n == 10) {
        char want = isbn10_check(digits);
        if (digits[9] != want)
            return fail(ISBN_ERR_CHECK, why, whylen, "bad check digit: expected %c, got %c", want,
                        digits[9]);
        memcpy(res.isbn10, digits, 10);
        memcpy(res.isbn13, "978", 3);
        memcpy(res.isbn13 + 3, digits, 9);
        res.isbn13[12] = isbn13_check(res.isbn13);
    } else {
        if (memcmp(digits, "978", 3) != 0 && memcmp(digits, "979", 3) != 0)
            return fail(ISBN_ERR_PREFIX, why, whylen,
                        "bad prefix: an ISBN-13 starts with 978 or 979, not %.3s", digits);
        char want = isbn13_check(digits);
        if (digits[12] != want)
            return fail(ISBN_ERR_CHECK, why, whylen, "bad check digit: expected %c, got %c", want,
                        digits[12]);
        memcpy(res.isbn13, digits, 13);
        if (memcmp(digits, "978", 3) == 0) {
            memcpy(res.isbn10, digits + 3, 9);
            res.isbn10[9] = isbn10_check(res.isbn10);
        }
    }
    if (out)
        *out = res;
    return ISBN_OK;
}

isbn_err isbn_parse(const char *in, size_t len, isbn *out)
{
    return isbn_parse_explain(in, len, out, NULL, 0);
}
