/* test_isbn.c - the ISBN rules, table-driven. */
#include "common/isbn.h"
#include "../lib/check.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *in;
    isbn_err want;
    const char *isbn13, *isbn10; /* expected when valid */
    const char *why_has;         /* expected substring of the reason when invalid */
} cases[] = {
    {"0132269937", ISBN_OK, "9780132269933", "0132269937", NULL},
    {"978-0-13-226993-3", ISBN_OK, "9780132269933", "0132269937", NULL},
    {"  978 0 13 226993 3 ", ISBN_OK, "9780132269933", "0132269937", NULL},
    {"080442957X", ISBN_OK, "9780804429573", "080442957X", NULL},
    {"080442957x", ISBN_OK, "9780804429573", "080442957X", NULL},
    {"0-8044-2957-X", ISBN_OK, "9780804429573", "080442957X", NULL},
    {"9791090636071", ISBN_OK, "9791090636071", "", NULL},
    {"979-10-90636-07-1", ISBN_OK, "9791090636071", "", NULL},
    {"0131103628", ISBN_OK, "9780131103627", "0131103628", NULL},
    {"2266309846", ISBN_OK, "9782266309844", "2266309846", NULL},
    {"0132269938", ISBN_ERR_CHECK, NULL, NULL, "expected 7, got 8"},
    {"9780132269934", ISBN_ERR_CHECK, NULL, NULL, "expected 3, got 4"},
    {"978013226993X", ISBN_ERR_CHAR, NULL, NULL, "only allowed as the last digit of an ISBN-10"},
    {"X132269937", ISBN_ERR_CHAR, NULL, NULL, "'X'"},
    {"013226993", ISBN_ERR_LENGTH, NULL, NULL, "9 digits"},
    {"97801322699333", ISBN_ERR_LENGTH, NULL, NULL, "14 digits"},
    {"01322699370", ISBN_ERR_LENGTH, NULL, NULL, "11 digits"},
    {"9770132269933", ISBN_ERR_PREFIX, NULL, NULL, "977"},
    {"", ISBN_ERR_EMPTY, NULL, NULL, "empty"},
    {" - -", ISBN_ERR_EMPTY, NULL, NULL, "empty"},
    {"0132a69937", ISBN_ERR_CHAR, NULL, NULL, "'a' at position 5"},
    {"0132269937;", ISBN_ERR_CHAR, NULL, NULL, "';'"},
    {"01322\xc3\xa9"
     "69937",
     ISBN_ERR_CHAR, NULL, NULL, "byte 0xc3"},
    {"<script>", ISBN_ERR_CHAR, NULL, NULL, "'<'"},
};

int main(void)
{
    char what[256], why[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        isbn out;
        memset(&out, 0x55, sizeof out);
        isbn_err err = isbn_parse_explain(cases[i].in, strlen(cases[i].in), &out, why, sizeof why);
        snprintf(what, sizeof what, "'%s' -> %s", cases[i].in, isbn_strerror(cases[i].want));
        CHECK_INT(err, cases[i].want, what);
        if (cases[i].want == ISBN_OK && err == ISBN_OK) {
            CHECK_STR(out.isbn13, cases[i].isbn13, "  isbn13");
            CHECK_STR(out.isbn10, cases[i].isbn10, "  isbn10");
        } else if (cases[i].want != ISBN_OK) {
            if (!CHECK(strstr(why, cases[i].why_has) != NULL, "  reason is precise"))
                printf("#   reason was '%s'\n", why);
            CHECK(strncmp(why, isbn_strerror(err), strlen(isbn_strerror(err))) == 0,
                  "  reason starts with the error name");
        }
    }
    /* Not NUL-terminated input: only len bytes are read. */
    isbn out;
    CHECK_INT(isbn_parse("0132269937999", 10, &out), ISBN_OK, "reads only len bytes");
    CHECK_STR(out.isbn13, "9780132269933", "  and converts them");
    /* Round trip: every ISBN-10 converted to 13 and back gives itself. */
    int roundtrip_ok = 1;
    for (int n = 0; n < 2000 && roundtrip_ok; n++) {
        char ten[11];
        snprintf(ten, sizeof ten, "%09d", n * 4987 % 1000000000);
        int sum = 0;
        for (int k = 0; k < 9; k++)
            sum += (ten[k] - '0') * (10 - k);
        int c = (11 - sum % 11) % 11;
        ten[9] = c == 10 ? 'X' : (char)('0' + c);
        ten[10] = '\0';
        isbn a, b;
        if (isbn_parse(ten, 10, &a) != ISBN_OK || isbn_parse(a.isbn13, 13, &b) != ISBN_OK ||
            strcmp(b.isbn10, ten) != 0)
            roundtrip_ok = 0;
    }
    CHECK(roundtrip_ok, "ISBN-10 -> ISBN-13 -> ISBN-10 round trip over 2000 numbers");
    return check_done();
}
