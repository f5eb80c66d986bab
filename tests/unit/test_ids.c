/* test_ids.c - every id form of SPEC §1 (ISBNs with any separators and prefixes, ASINs, product
 * URLs of every storefront, short links refused) and the list-splitting rule, as tables. */
#include <stdio.h>
#include <string.h>

#include "../../common/ids.h"
#include "../lib/check.h"

static const struct {
    const char *in;
    id_err err;
    const char *id, *isbn10;
    const char *why; /* a part of the reason, for errors */
} cases[] = {
    {"978-0-13-226993-3", ID_OK, "9780132269933", "0132269937", NULL},
    {"0132269937", ID_OK, "9780132269933", "0132269937", NULL},
    {"  978 0 13 226993 3 ", ID_OK, "9780132269933", "0132269937", NULL},
    {"978\xe2\x80\x90"
     "0\xe2\x80\x91"
     "13\xe2\x80\x92"
     "226993\xe2\x80\x93"
     "3",
     ID_OK, "9780132269933", "0132269937", NULL},
    {"978\xe2\x80\x94"
     "0\xe2\x80\x95"
     "13\xe2\x88\x92"
     "226993-3",
     ID_OK, "9780132269933", "0132269937", NULL},
    {"978\xc2\xa0"
     "0132269933",
     ID_OK, "9780132269933", "0132269937", NULL},
    {"ISBN 978-0-13-226993-3", ID_OK, "9780132269933", "0132269937", NULL},
    {"ISBN-13: 978-0-13-226993-3", ID_OK, "9780132269933", "0132269937", NULL},
    {"isbn10:0132269937", ID_OK, "9780132269933", "0132269937", NULL},
    {"ISBN-10 080442957x", ID_OK, "9780804429573", "080442957X", NULL},
    {"9791090636071", ID_OK, "9791090636071", "", NULL},
    {"B01LW7X0JJ", ID_OK, "B01LW7X0JJ", "", NULL},
    {"b01lw7x0jj", ID_OK, "B01LW7X0JJ", "", NULL},
    {" B004VHAZH6\n", ID_OK, "B004VHAZH6", "", NULL},
    {"https://www.amazon.com/dp/B01LW7X0JJ", ID_OK, "B01LW7X0JJ", "", NULL},
    {"https://www.amazon.de/-/en/dp/0131103628/ref=sr_1_1?keywords=c+programming&qid=1", ID_OK,
     "9780131103627", "0131103628", NULL},
    {"https://www.amazon.co.jp/%E3%81%9F%E3%82%86%E3%81%9F%E3%81%84/dp/4198643822/", ID_OK,
     "9784198643829", "4198643822", NULL},
    {"http://amazon.co.uk/Vegetable-Perfection/dp/1849757097?tag=x", ID_OK, "9781849757096",
     "1849757097", NULL},
    {"https://www.amazon.fr/gp/product/B004VHAZH6/ref=ppx_yo_dt", ID_OK, "B004VHAZH6", "", NULL},
    {"https://www.amazon.com.br/gp/aw/d/b004vhazh6", ID_OK, "B004VHAZH6", "", NULL},
    {"www.amazon.es/Rebeli%C3%B3n/dp/840827578X#reviews", ID_OK, "9788408275787", "840827578X",
     NULL},
    {"https://smile.amazon.com/dp/0132269937?ref_=a,b;c", ID_OK, "9780132269933", "0132269937",
     NULL},
    {"https://a.co/d/3xYzAbC", ID_ERR_SHORT_LINK, NULL, NULL, "product page"},
    {"https://amzn.eu/d/9Jk2", ID_ERR_SHORT_LINK, NULL, NULL, "/dp/"},
    {"amzn.to/3abc", ID_ERR_SHORT_LINK, NULL, NULL, "short share link"},
    {"https://www.example.com/dp/B01LW7X0JJ", ID_ERR_URL, NULL, NULL, "not an Amazon"},
    {"https://www.amazon.com/gp/bestsellers/books", ID_ERR_URL, NULL, NULL, "names no product"},
    {"https://www.amazon.com/dp/B01LW7X0J", ID_ERR_URL, NULL, NULL, "names no product"},
    {"https://www.amazon.com/dp/A01LW7X0JJ", ID_ERR_INVALID, NULL, NULL, "neither"},
    {"0132269938", ID_ERR_INVALID, NULL, NULL, "check digit"},
    {"B01LW7X0J!", ID_ERR_INVALID, NULL, NULL, "an ASIN is B"},
    {"12345", ID_ERR_INVALID, NULL, NULL, "digits"},
    {"", ID_ERR_EMPTY, NULL, NULL, "empty"},
    {" \xc2\xa0 ", ID_ERR_EMPTY, NULL, NULL, "empty"},
    {"ISBN", ID_ERR_INVALID, NULL, NULL, ""},
    {"978-0-13-226993-3 0131103628", ID_ERR_INVALID, NULL, NULL, ""},
};

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        book_id b;
        char why[200] = "untouched", what[300];
        id_err e = id_parse(cases[i].in, strlen(cases[i].in), &b, why, sizeof why);
        snprintf(what, sizeof what, "'%s' -> %s", cases[i].in, id_strerror(cases[i].err));
        if (!CHECK(e == cases[i].err, what)) {
            printf("#   got %s (%s)\n", id_strerror(e), why);
            continue;
        }
        if (e == ID_OK) {
            snprintf(what, sizeof what, "'%s' id", cases[i].in);
            CHECK_STR(b.id, cases[i].id, what);
            snprintf(what, sizeof what, "'%s' isbn10", cases[i].in);
            CHECK_STR(b.isbn10, cases[i].isbn10, what);
            CHECK_INT(b.kind, cases[i].id[0] == 'B' ? ID_KIND_ASIN : ID_KIND_ISBN, "kind");
            if (b.kind == ID_KIND_ASIN)
                CHECK_STR(b.isbn13, "", "an ASIN book has no ISBN-13");
        } else if (cases[i].why[0]) {
            snprintf(what, sizeof what, "'%s' says why (%s)", cases[i].in, cases[i].why);
            if (!CHECK(strstr(why, cases[i].why) != NULL, what))
                printf("#   why: %s\n", why);
        }
    }
    char asin[ASIN_LEN + 1];
    CHECK(asin_normalize("b0abcdefgh", 10, asin) && strcmp(asin, "B0ABCDEFGH") == 0,
          "asin_normalize");
    CHECK(!asin_valid("b0abcdefgh", 10), "a stored ASIN is upper-case");
    CHECK(!asin_normalize("B0ABCDEFG", 9, asin), "nine characters are no ASIN");
}

struct collected {
    char entries[32][128];
    size_t n;
};

static int collect(void *ctx, size_t index, const char *s, size_t len)
{
    struct collected *c = ctx;
    if (index != c->n || c->n >= 32)
        return 1;
    snprintf(c->entries[c->n++], 128, "%.*s", (int)len, s);
    return 0;
}

static void check_split(const char *text, const char *want, const char *what)
{
    struct collected c = {.n = 0};
    size_t n = id_list_split(text, strlen(text), collect, &c);
    char got[1024] = "";
    for (size_t i = 0; i < c.n; i++) {
        size_t used = strlen(got);
        snprintf(got + used, sizeof got - used, "%s%s", i ? "|" : "", c.entries[i]);
    }
    CHECK_STR(got, want, what);
    CHECK_INT(n, c.n, "the count returned is the entries seen");
}

static void test_split(void)
{
    check_split("0132269937\n9780131103627, 080442957X\n\n", "0132269937|9780131103627|080442957X",
                "lines and commas");
    check_split("0132269937;B01LW7X0JJ ; b004vhazh6", "0132269937|B01LW7X0JJ|b004vhazh6",
                "semicolons");
    check_split("978 0 13 226993 3\nISBN 978-0-13-226993-3",
                "978 0 13 226993 3|ISBN 978-0-13-226993-3",
                "a line that is one id as a whole stays one entry");
    check_split("0132269937 0131103628\tB01LW7X0JJ", "0132269937|0131103628|B01LW7X0JJ",
                "a line of several ids is split at blank space");
    check_split("0132269937\xc2\xa0"
                "0131103628",
                "0132269937|0131103628", "a no-break space separates too");
    check_split("https://www.amazon.com/dp/0132269937?a=1,2;3 B01LW7X0JJ,0131103628",
                "https://www.amazon.com/dp/0132269937?a=1,2;3|B01LW7X0JJ|0131103628",
                "a URL's query is not split at its commas");
    check_split("hello world, 12345", "hello|world|12345",
                "invalid words are entries of their own");
    check_split(" ,\n;\r\n  ", "", "separators only: no entries");
    check_split("0132269937\r\n0131103628\r\n", "0132269937|0131103628", "CRLF line ends");
    struct collected c = {.n = 0};
    char many[40 * 11 + 1] = "";
    for (int i = 0; i < 40; i++)
        memcpy(many + i * 11, "0132269937,", 12); /* the last copy ends at the terminator */
    CHECK_INT(id_list_split(many, strlen(many), collect, &c) <= 33, 1,
              "the callback can stop the split");
}

int main(void)
{
    test_parse();
    test_split();
    return check_done();
}
