/* test_body.c - server/body: the JSON and text/plain ISBN lists of POST /api/books and
 * /api/refresh, every error code, the details of bad entries (index, echoed input, reason) and
 * how render_error shows them, the cap for both types, invalid UTF-8 and NUL bytes in entries,
 * the refresh flag's types, media types. No libmicrohttpd involved. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../../server/body.h"
#include "../lib/check.h"

#define JSON "application/json"
#define TEXT "text/plain"

typedef struct parsed {
    body_err rc;
    body_list l;
    char why[160];
} parsed;

static void parse_n(parsed *p, const char *type, const char *body, size_t len, size_t cap)
{
    memset(p, 0, sizeof *p);
    p->rc = body_parse(type, body, len, cap, &p->l, p->why, sizeof p->why);
}

static void parse(parsed *p, const char *type, const char *body, size_t cap)
{
    parse_n(p, type, body, strlen(body), cap);
}

/* The list's ISBN-13s joined by spaces. */
static const char *items(const parsed *p)
{
    static char out[512];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->l.n && n + 15 < sizeof out; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? " " : "", p->l.items[i].isbn13);
    return out;
}

typedef struct err_case {
    const char *what;
    const char *type;
    const char *body;
    body_err rc;
    const char *why; /* NULL: any non-empty message */
} err_case;

static const err_case err_cases[] = {
    {"not JSON", JSON, "{not json", BODY_INVALID_JSON, NULL},
    {"empty JSON body", JSON, "", BODY_INVALID_JSON, NULL},
    {"a bare number is not a JSON text here", JSON, "42", BODY_INVALID_JSON, NULL},
    {"null", JSON, "null", BODY_INVALID_JSON, NULL},
    {"duplicate keys", JSON, "{\"isbns\": [\"0132269937\"], \"isbns\": []}", BODY_INVALID_JSON,
     NULL},
    {"trailing garbage", JSON, "{\"isbns\": []} <script>", BODY_INVALID_JSON, NULL},
    {"\\u0000 in a string", JSON, "{\"isbns\": [\"978\\u00000132269933\"]}", BODY_INVALID_JSON,
     NULL},
    {"invalid UTF-8 in JSON", JSON, "{\"isbns\": [\"\xff\xfe\"]}", BODY_INVALID_JSON, NULL},
    {"lone surrogate", JSON, "{\"isbns\": [\"\\ud800\"]}", BODY_INVALID_JSON, NULL},
    {"1e400", JSON, "{\"isbns\": [1e400]}", BODY_INVALID_JSON, NULL},
    {"an array body", JSON, "[\"0132269937\"]", BODY_INVALID,
     "the body must be a JSON object like {\"isbns\": [...]}"},
    {"isbns missing", JSON, "{}", BODY_INVALID, "\"isbns\" must be an array of strings"},
    {"isbns a string", JSON, "{\"isbns\": \"0132269937\"}", BODY_INVALID,
     "\"isbns\" must be an array of strings"},
    {"isbns an object", JSON, "{\"isbns\": {\"0\": \"0132269937\"}}", BODY_INVALID,
     "\"isbns\" must be an array of strings"},
    {"isbns null", JSON, "{\"isbns\": null}", BODY_INVALID,
     "\"isbns\" must be an array of strings"},
    {"refresh 1", JSON, "{\"isbns\": [\"0132269937\"], \"refresh\": 1}", BODY_INVALID,
     "\"refresh\" must be true or false"},
    {"refresh \"true\"", JSON, "{\"isbns\": [\"0132269937\"], \"refresh\": \"true\"}", BODY_INVALID,
     "\"refresh\" must be true or false"},
    {"refresh null", JSON, "{\"isbns\": [\"0132269937\"], \"refresh\": null}", BODY_INVALID,
     "\"refresh\" must be true or false"},
    {"refresh 2^70", JSON, "{\"isbns\": [], \"refresh\": 1180591620717411303424}",
     BODY_INVALID_JSON, NULL},
    {"XML", "application/xml", "<isbns/>", BODY_UNSUPPORTED_TYPE,
     "send application/json or text/plain"},
    {"no content type", NULL, "0132269937", BODY_UNSUPPORTED_TYPE,
     "send application/json or text/plain"},
    {"empty content type", "", "0132269937", BODY_UNSUPPORTED_TYPE, NULL},
    {"a form", "application/x-www-form-urlencoded", "isbns=0132269937", BODY_UNSUPPORTED_TYPE,
     NULL},
    {"json-seq is not json", "application/json-seq", "{}", BODY_UNSUPPORTED_TYPE, NULL},
    {"a type cut by a NUL", "text/pl", "0132269937", BODY_UNSUPPORTED_TYPE, NULL},
    {"one bad text entry", TEXT, "0132269938", BODY_INVALID_ISBN,
     "1 invalid entry; nothing was changed"},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const err_case *c = &err_cases[i];
        parsed p;
        parse(&p, c->type, c->body, 100);
        char what[200];
        snprintf(what, sizeof what, "%s -> %s", c->what, body_strerror(c->rc));
        if (!CHECK(p.rc == c->rc, what))
            printf("#   got %s: %s\n", body_strerror(p.rc), p.why);
        snprintf(what, sizeof what, "%s: message", c->what);
        if (c->why)
            CHECK_STR(p.why, c->why, what);
        else
            CHECK(p.why[0] != '\0', what);
        snprintf(what, sizeof what, "%s: details only for invalid ISBNs", c->what);
        CHECK((p.l.ndetails > 0) == (c->rc == BODY_INVALID_ISBN), what);
        body_list_free(&p.l);
    }
    for (int e = BODY_OK; e <= BODY_NOMEM; e++)
        CHECK(strcmp(body_strerror((body_err)e), "unknown error") != 0, "every error has a name");
    parsed p;
    memset(&p, 0, sizeof p);
    p.rc = body_parse(JSON, "{", 1, 10, &p.l, NULL, 0);
    CHECK(p.rc == BODY_INVALID_JSON, "why may be NULL");
    body_list_free(&p.l);
}

static void test_json(void)
{
    parsed p;
    parse(&p, JSON, "{\"isbns\": [\"978-0-13-226993-3\", \"0131103628\", \"080442957x\"]}", 100);
    CHECK(p.rc == BODY_OK, "JSON list parses");
    CHECK_STR(items(&p), "9780132269933 9780131103627 9780804429573", "JSON entries in order");
    CHECK_STR(p.l.items[1].isbn10, "0131103628", "ISBN-10 kept beside the ISBN-13");
    CHECK(p.l.refresh == 0 && p.l.ndetails == 0 && p.l.details == NULL, "no refresh, no details");
    CHECK(p.why[0] == '\0', "no message on success");
    body_list_free(&p.l);

    parse(&p, JSON, "{\"refresh\": true, \"isbns\": [\"0132269937\"], \"other\": 1}", 100);
    CHECK(p.rc == BODY_OK && p.l.refresh == 1 && p.l.n == 1,
          "refresh: true (unknown keys ignored)");
    body_list_free(&p.l);
    parse(&p, JSON, "{\"isbns\": [\"0132269937\"], \"refresh\": false}", 100);
    CHECK(p.rc == BODY_OK && p.l.refresh == 0, "refresh: false");
    body_list_free(&p.l);

    parse(&p, "Application/JSON ; charset=utf-8", "{\"isbns\": [\"0132269937\"]}", 100);
    CHECK(p.rc == BODY_OK && p.l.n == 1, "media type: case, blanks and parameters ignored");
    body_list_free(&p.l);

    parse(&p, JSON, "{\"isbns\": []}", 100);
    CHECK(p.rc == BODY_OK && p.l.n == 0, "an empty list parses (the handler refuses it)");
    body_list_free(&p.l);

    parse(&p, JSON, "{\"isbns\": [\"0132269937\", \"0132269937\"]}", 100);
    CHECK(p.rc == BODY_OK && p.l.n == 2, "repeats are kept (the store reports them)");
    body_list_free(&p.l);
}

static void test_text(void)
{
    parsed p;
    parse(&p, TEXT, "0132269937\n9780131103627, 080442957X\n\n", 100);
    CHECK(p.rc == BODY_OK, "text list parses");
    CHECK_STR(items(&p), "9780132269933 9780131103627 9780804429573", "lines and commas separate");
    CHECK(p.l.refresh == 0, "text has no refresh flag");
    body_list_free(&p.l);

    parse(&p, "text/plain; charset=utf-8", " \t0132269937\r\n ,, \r\n 978-0-13-110362-7 \t", 100);
    CHECK(p.rc == BODY_OK, "blank space and CRLF trimmed, empty entries skipped");
    CHECK_STR(items(&p), "9780132269933 9780131103627", "two entries");
    body_list_free(&p.l);

    parse(&p, TEXT, "", 100);
    CHECK(p.rc == BODY_OK && p.l.n == 0, "an empty text body is an empty list");
    body_list_free(&p.l);
    parse_n(&p, TEXT, NULL, 0, 100);
    CHECK(p.rc == BODY_OK && p.l.n == 0, "no body at all");
    body_list_free(&p.l);

    /* Not NUL-terminated: the parser reads len bytes only. */
    char exact[10];
    memcpy(exact, "0132269937", 10);
    parse_n(&p, TEXT, exact, sizeof exact, 100);
    CHECK(p.rc == BODY_OK && p.l.n == 1, "a body without a terminator");
    body_list_free(&p.l);
}

/* The details as render_error shows them, parsed back. */
static json_t *rendered_details(const parsed *p)
{
    buf out;
    buf_init(&out, 1 << 20);
    json_t *doc = NULL;
    if (render_error(&out, "invalid_isbn", p->why, p->l.details, p->l.ndetails) == BUF_OK)
        doc = json_loadb(out.data, out.len, JSON_ALLOW_NUL, NULL);
    buf_free(&out);
    json_t *details = json_incref(json_object_get(json_object_get(doc, "error"), "details"));
    json_decref(doc);
    return details;
}

static void test_details(void)
{
    parsed p;
    parse(&p, JSON,
          "{\"isbns\": [\"9780132269933\", \"0132269938\", \"abc\", 42, null, {\"a\": [1]}, "
          "\"0131103628\", \"\"]}",
          100);
    CHECK(p.rc == BODY_INVALID_ISBN, "JSON with bad entries -> invalid ISBN");
    CHECK_STR(p.why, "6 invalid entries; nothing was changed", "the message counts them");
    CHECK_INT(p.l.ndetails, 6, "one detail per bad entry");
    static const size_t want_index[] = {1, 2, 3, 4, 5, 7};
    for (size_t i = 0; i < 6 && i < p.l.ndetails; i++)
        CHECK_INT(p.l.details[i].index, want_index[i], "details name the entry's index");
    if (p.l.ndetails == 6) {
        const render_detail *d = p.l.details;
        CHECK(d[0].input_len == 10 && memcmp(d[0].input, "0132269938", 10) == 0,
              "a bad string is echoed");
        CHECK(strstr(d[0].reason, "check digit") != NULL, "the reason says what is wrong");
        CHECK(d[1].input_len == 3 && memcmp(d[1].input, "abc", 3) == 0, "second echo");
        CHECK(d[2].input == NULL && d[3].input == NULL && d[4].input == NULL,
              "entries that are not text echo nothing");
        CHECK_STR(d[2].reason, "not a string", "and say so");
        CHECK(d[5].input != NULL && d[5].input_len == 0, "an empty string is echoed as empty");
    }
    json_t *shown = rendered_details(&p);
    CHECK(json_array_size(shown) == 6, "render_error shows every detail");
    CHECK_STR(json_string_value(json_object_get(json_array_get(shown, 0), "input")), "0132269938",
              "rendered: the echo");
    CHECK(json_is_null(json_object_get(json_array_get(shown, 2), "input")),
          "rendered: a number entry has input null");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(shown, 5), "index")), 7,
              "rendered: the index");
    json_decref(shown);
    body_list_free(&p.l);

    /* text: indexes count non-empty entries */
    parse(&p, TEXT, "x,,\n 12345 ,0132269937", 100);
    CHECK(p.rc == BODY_INVALID_ISBN && p.l.ndetails == 2, "text with two bad entries");
    if (p.l.ndetails == 2) {
        CHECK(p.l.details[0].index == 0 && p.l.details[1].index == 1,
              "text indexes skip empty entries");
        CHECK(p.l.details[1].input_len == 5 && memcmp(p.l.details[1].input, "12345", 5) == 0,
              "the trimmed entry is echoed");
    }
    body_list_free(&p.l);

    /* invalid UTF-8 and NUL bytes: kept as bytes here, made valid by render_error */
    static const char bad[] = "\xff\xfe\xed\xa0\x80\n0132269937\x00\n0132269937";
    parse_n(&p, TEXT, bad, sizeof bad - 1, 100);
    CHECK(p.rc == BODY_INVALID_ISBN && p.l.ndetails == 2, "invalid UTF-8 and NUL entries are bad");
    if (p.l.ndetails == 2) {
        CHECK(p.l.details[0].input_len == 5 && memcmp(p.l.details[0].input, bad, 5) == 0,
              "invalid UTF-8 echoed as sent");
        CHECK(strstr(p.l.details[0].reason, "0xff") != NULL, "the reason names the byte");
        CHECK(p.l.details[1].input_len == 11 && p.l.details[1].input[10] == '\0',
              "an entry with a NUL keeps its whole length");
    }
    shown = rendered_details(&p);
    const char *echo = json_string_value(json_object_get(json_array_get(shown, 0), "input"));
    CHECK_STR(echo, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
              "rendered: one U+FFFD per bad byte");
    json_t *nul = json_object_get(json_array_get(shown, 1), "input");
    CHECK(json_string_length(nul) == 11 && json_string_value(nul)[10] == '\0',
          "rendered: the NUL survives as \\u0000");
    json_decref(shown);
    body_list_free(&p.l);

    /* a long entry: at most RENDER_ECHO_MAX bytes shown, cut on a character boundary */
    char longer[200];
    memset(longer, 'a', 63);
    memcpy(longer + 63, "\xc3\xa9", 2); /* é across the 64-byte mark */
    memset(longer + 65, '7', 100);
    longer[165] = '\0';
    parse(&p, TEXT, longer, 100);
    CHECK(p.rc == BODY_INVALID_ISBN && p.l.ndetails == 1, "a long bad entry");
    CHECK(p.l.ndetails == 1 && p.l.details[0].input_len == RENDER_ECHO_MAX + 1,
          "one byte past the echo limit is kept");
    shown = rendered_details(&p);
    echo = json_string_value(json_object_get(json_array_get(shown, 0), "input"));
    CHECK(echo && strlen(echo) == 63 && echo[62] == 'a',
          "rendered: cut before the character that would not fit");
    json_decref(shown);
    body_list_free(&p.l);
}

static void test_cap(void)
{
    parsed p;
    parse(&p, JSON, "{\"isbns\": [\"0132269937\", \"0131103628\", \"080442957X\"]}", 3);
    CHECK(p.rc == BODY_OK && p.l.n == 3, "JSON: exactly the cap");
    body_list_free(&p.l);
    parse(&p, JSON, "{\"isbns\": [\"0132269937\", \"0131103628\", \"080442957X\"]}", 2);
    CHECK(p.rc == BODY_TOO_MANY && p.l.n == 0, "JSON: one over the cap");
    CHECK_STR(p.why, "too many ISBNs in one request", "too many: message");
    body_list_free(&p.l);
    parse(&p, JSON, "{\"isbns\": [\"x\", \"y\", \"z\"]}", 2);
    CHECK(p.rc == BODY_TOO_MANY && p.l.ndetails == 0, "JSON: too many wins over bad entries");
    body_list_free(&p.l);
    parse(&p, JSON, "{\"isbns\": [\"0132269937\"]}", 0);
    CHECK(p.rc == BODY_TOO_MANY, "JSON: cap 0");
    body_list_free(&p.l);

    parse(&p, TEXT, "0132269937\n0131103628\n080442957X", 3);
    CHECK(p.rc == BODY_OK && p.l.n == 3, "text: exactly the cap");
    body_list_free(&p.l);
    parse(&p, TEXT, "0132269937\n0131103628\n080442957X", 2);
    CHECK(p.rc == BODY_TOO_MANY, "text: one over the cap");
    body_list_free(&p.l);
    parse(&p, TEXT, "x\ny\n0132269937", 2);
    CHECK(p.rc == BODY_TOO_MANY && p.l.ndetails == 0 && p.l.details == NULL,
          "text: too many wins over the bad entries seen before");
    body_list_free(&p.l);
    parse(&p, TEXT, "0132269937,,,,\n\n, ,0131103628", 2);
    CHECK(p.rc == BODY_OK && p.l.n == 2, "text: empty entries do not count");
    body_list_free(&p.l);
}

static void test_helpers(void)
{
    char type[16];
    body_media_type(" Text/Plain ; charset=utf-8", type, sizeof type);
    CHECK_STR(type, "text/plain", "media type: lower case, no blanks, no parameters");
    body_media_type(NULL, type, sizeof type);
    CHECK_STR(type, "", "media type of no header");
    body_media_type("application/json-patch+json", type, sizeof type);
    CHECK_STR(type, "application/jso", "media type cut to fit");

    CHECK(body_is_blank("", 0) && body_is_blank(NULL, 0), "blank: empty");
    CHECK(body_is_blank(" \r\n\t", 4), "blank: blank space");
    CHECK(!body_is_blank(" x ", 3), "not blank");
    CHECK(!body_is_blank("\0", 1), "a NUL is not blank");

    body_list l;
    memset(&l, 0, sizeof l);
    body_list_free(&l);
    body_list_free(NULL);
    CHECK(l.items == NULL && l.n == 0, "freeing an empty list is a no-op");
    parsed p;
    parse(&p, TEXT, "x", 10);
    body_list_free(&p.l);
    CHECK(p.l.details == NULL && p.l.ndetails == 0 && p.l.text == NULL, "free empties the list");
    body_list_free(&p.l);
}

/* POST /api/alerts: the rule's fields, and a reason naming the key for every refusal. */
static void test_alert(void)
{
    static const struct {
        const char *type, *body;
        body_err want;
        const char *in_why;
    } cases[] = {
        {"application/json",
         "{\"kind\": \"new_best\", \"notify\": [\"webhook:https://h.example/x\"]}", BODY_OK, ""},
        {"application/json; charset=utf-8",
         "{\"kind\": \"trouble\", \"value\": 3, \"book\": null, \"source\": null, "
         "\"notify\": [\"mailto:a@b.example\"]}",
         BODY_OK, ""},
        {"text/plain", "{}", BODY_UNSUPPORTED_TYPE, "application/json"},
        {NULL, "{}", BODY_UNSUPPORTED_TYPE, "application/json"},
        {"application/json", "{\"kind\": ", BODY_INVALID_JSON, ""},
        {"application/json", "[1]", BODY_INVALID, "object"},
        {"application/json", "{\"kind\": \"best\", \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"kind\""},
        {"application/json", "{\"kind\": 3, \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"kind\""},
        {"application/json", "{\"kind\": \"trouble\", \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"value\""},
        {"application/json",
         "{\"kind\": \"trouble\", \"value\": \"3\", \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"value\""},
        {"application/json",
         "{\"kind\": \"new_best\", \"value\": 1, \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"value\""},
        {"application/json", "{\"kind\": \"new_best\", \"notify\": []}", BODY_INVALID,
         "\"notify\""},
        {"application/json", "{\"kind\": \"new_best\", \"notify\": \"webhook:https://h.example\"}",
         BODY_INVALID, "\"notify\""},
        {"application/json",
         "{\"kind\": \"new_best\", \"notify\": [\"webhook:https://h.example\", \"sms:1\"]}",
         BODY_INVALID, "\"notify\"[1]"},
        /* jansson refuses a NUL inside a string: no target can hide one */
        {"application/json",
         "{\"kind\": \"new_best\", \"notify\": [\"webhook:https://h.example/\\u0000x\"]}",
         BODY_INVALID_JSON, ""},
        {"application/json",
         "{\"kind\": \"new_best\", \"source\": \"a b\", \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"source\""},
        {"application/json",
         "{\"kind\": \"new_best\", \"book\": \"0132269938\", \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID_ISBN, "\"book\""},
        {"application/json",
         "{\"kind\": \"new_best\", \"book\": [], \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"book\""},
        {"application/json",
         "{\"kind\": \"new_best\", \"when\": 1, \"notify\": [\"webhook:https://h.example\"]}",
         BODY_INVALID, "\"when\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body_alert a;
        char why[300], what[200];
        body_err e = body_parse_alert(cases[i].type, cases[i].body, strlen(cases[i].body), &a, why,
                                      sizeof why);
        snprintf(what, sizeof what, "alert body %zu: %s", i, body_strerror(cases[i].want));
        if (!CHECK(e == cases[i].want, what))
            printf("#   got %s: %s\n", body_strerror(e), why);
        snprintf(what, sizeof what, "alert body %zu: the reason names %s", i, cases[i].in_why);
        CHECK(e == BODY_OK || strstr(why, cases[i].in_why), what);
        body_alert_free(&a);
    }

    body_alert a;
    const char *full =
        "{\"kind\": \"rank_better_than\", \"value\": 1000, \"book\": \"0-13-226993-7\", "
        "\"source\": \"amazon.de\", \"notify\": [\"webhook:https://h.example/x\", "
        "\"mailto:a@b.example\"]}";
    CHECK(body_parse_alert("application/json", full, strlen(full), &a, NULL, 0) == BODY_OK,
          "a full alert body parses");
    CHECK_STR(a.rule.kind, "rank_better_than", "its kind");
    CHECK(a.rule.has_value && a.rule.value == 1000, "its value");
    CHECK(a.has_book && strcmp(a.book.id, "9780132269933") == 0 && a.rule.book_id[0] == 0,
          "its book, parsed but not resolved");
    CHECK_STR(a.rule.source, "amazon.de", "its source");
    CHECK(a.rule.ntargets == 2 && strcmp(a.rule.targets[1], "mailto:a@b.example") == 0,
          "its targets, in order");
    body_alert_free(&a);
    body_alert_free(NULL);

    const char *bad_book =
        "{\"kind\": \"new_best\", \"book\": \"97801\", \"notify\": [\"ntfy:https://n.example/t\"]}";
    CHECK(body_parse_alert("application/json", bad_book, strlen(bad_book), &a, NULL, 0) ==
                  BODY_INVALID_ISBN &&
              a.detail.input_len == 5 && memcmp(a.detail.input, "97801", 5) == 0 &&
              a.detail.reason && a.detail.reason[0],
          "a bad book is kept in the detail, with its reason");
    body_alert_free(&a);
}

int main(void)
{
    test_errors();
    test_json();
    test_text();
    test_details();
    test_cap();
    test_helpers();
    test_alert();
    return check_done();
}
