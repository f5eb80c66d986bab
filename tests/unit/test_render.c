/* test_render.c - the wire format: the JSON writer's escaping and structure, every shape parses
 * back to what went in (checked with jansson), hostile strings, CSV quoting. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/utf8.h"
#include "../../render/render.h"
#include "../lib/check.h"

/* Parses b as JSON; NULL (and a failed check) when it is not. */
static json_t *parse(const buf *b, const char *what)
{
    json_error_t e;
    json_t *v = json_loadb(b->data ? b->data : "", b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!CHECK(v != NULL, what))
        printf("#   %s: %.200s\n", e.text, b->data ? b->data : "");
    return v;
}

/* The string the writer makes of s, decoded back by jansson. */
static void check_string(const char *s, size_t n, const char *want, size_t want_len,
                         const char *what)
{
    buf b;
    buf_init(&b, 1 << 20);
    jw w;
    jw_begin(&w, &b, RENDER_COMPACT);
    jw_string_n(&w, s, n);
    CHECK_INT(jw_end(&w), BUF_OK, "writer ends ok");
    json_t *v = parse(&b, what);
    CHECK(json_string_length(v) == want_len && memcmp(json_string_value(v), want, want_len) == 0,
          what);
    json_decref(v);
    buf_free(&b);
}

#define CHECK_STRING(s, n, want, what) check_string(s, n, want, sizeof(want) - 1, what)

static void test_escaping(void)
{
    CHECK_STRING("plain", 5, "plain", "plain text");
    CHECK_STRING("a\"b\\c", 5, "a\"b\\c", "quote and backslash round-trip");
    CHECK_STRING("<script>alert(1)</script>", 25, "<script>alert(1)</script>",
                 "<script> round-trips");
    CHECK_STRING("\x01\x1f\x7f\n\t", 5, "\x01\x1f\x7f\n\t", "control bytes round-trip");
    CHECK_STRING("caf\xc3\xa9 \xe2\x80\xa8", 9, "caf\xc3\xa9 \xe2\x80\xa8",
                 "UTF-8 and U+2028 round-trip");
    CHECK_STRING("a\xff"
                 "b\xc0\xaf",
                 5, "a" UTF8_REPLACEMENT "b" UTF8_REPLACEMENT UTF8_REPLACEMENT,
                 "invalid UTF-8: one U+FFFD per bad byte");
    CHECK_STRING("\xed\xa0\x80", 3, UTF8_REPLACEMENT UTF8_REPLACEMENT UTF8_REPLACEMENT,
                 "a surrogate is invalid");
    CHECK_STRING("nul\0byte", 8, "nul\0byte", "an embedded NUL is escaped, not a terminator");

    /* What the bytes look like: nothing HTML could read as markup, no raw control byte. */
    buf b;
    buf_init(&b, 4096);
    jw w;
    jw_begin(&w, &b, RENDER_COMPACT);
    jw_string(&w, "</script><b>&amp;\x01\xe2\x80\xa9");
    CHECK_INT(jw_end(&w), BUF_OK, "writer ends ok");
    CHECK(!strchr(b.data, '<') && !strchr(b.data, '>') && !strchr(b.data, '&'),
          "no < > & in the output");
    CHECK(strstr(b.data, "\\u003c/script\\u003e") != NULL, "< and > as \\u escapes");
    CHECK(strstr(b.data, "\\u0001") && strstr(b.data, "\\u2029"),
          "control byte and U+2029 escaped");
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20) {
            CHECK(0, "no raw control byte in the output");
            break;
        }
    buf_free(&b);
}

static void test_structure(void)
{
    buf b;
    buf_init(&b, 4096);
    jw w;
    jw_begin(&w, &b, RENDER_COMPACT);
    jw_object_open(&w);
    jw_key(&w, "a");
    jw_array_open(&w);
    jw_int(&w, -5);
    jw_rank(&w, -1);
    jw_bool(&w, 1);
    jw_double(&w, 2.5);
    jw_time(&w, 0);
    jw_array_close(&w);
    jw_key(&w, "e");
    jw_object_open(&w);
    jw_object_close(&w);
    jw_key(&w, "t");
    jw_time(&w, 1764000000000);
    jw_object_close(&w);
    CHECK_INT(jw_end(&w), BUF_OK, "nested document ends ok");
    CHECK_STR(b.data, "{\"a\":[-5,null,true,2.5,null],\"e\":{},\"t\":\"2025-11-24T16:00:00Z\"}",
              "compact layout");

    buf_reset(&b);
    jw_begin(&w, &b, RENDER_PRETTY);
    jw_object_open(&w);
    jw_key(&w, "a");
    jw_array_open(&w);
    jw_int(&w, 1);
    jw_array_close(&w);
    jw_key(&w, "b");
    jw_array_open(&w);
    jw_array_close(&w);
    jw_object_close(&w);
    CHECK_INT(jw_end(&w), BUF_OK, "pretty document ends ok");
    CHECK_STR(b.data, "{\n  \"a\": [\n    1\n  ],\n  \"b\": []\n}\n", "pretty layout");

    buf_reset(&b);
    jw_begin(&w, &b, RENDER_COMPACT);
    jw_object_open(&w);
    CHECK(jw_end(&w) != BUF_OK, "an unclosed container is an error, not JSON");

    buf_reset(&b);
    jw_begin(&w, &b, RENDER_COMPACT);
    for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
        jw_array_open(&w);
    for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
        jw_array_close(&w);
    CHECK(jw_end(&w) != BUF_OK, "nesting past JW_MAX_DEPTH is refused");

    buf small;
    buf_init(&small, 8);
    jw_begin(&w, &small, RENDER_COMPACT);
    jw_string(&w, "longer than eight bytes");
    CHECK_INT(jw_end(&w), BUF_TOOBIG, "the buf's cap is reported");
    buf_free(&small);
    buf_free(&b);
}

static observation hostile_obs(void)
{
    observation o;
    obs_init(&o);
    memcpy(o.book_id, "9780132269933", 14);
    o.source = strdup("amazon.com");
    o.status = OBS_OK;
    o.rank = 1234;
    o.previous_rank = 2000;
    o.rank_category = strdup("Books \"<script>\"");
    o.title = strdup("=HYPERLINK(\"x\") \xff");
    o.error = NULL;
    o.fetched_at_ms = 1764000000000;
    o.http_status = 200;
    o.attempts = 1;
    o.duration_ms = 42;
    if (obs_add_category(&o, 3, "C & C++ <b>", 11))
        abort();
    return o;
}

static void test_shapes(void)
{
    observation o = hostile_obs();
    db_book book = {.id = "9780132269933",
                    .isbn13 = "9780132269933",
                    .isbn10 = "0132269937",
                    .added_at_ms = 1764000000000};
    book.title = o.title;
    book.latest = &o;
    book.nlatest = 1;

    buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(render_books(&b, &book, 1, RENDER_COMPACT), BUF_OK, "books render");
    json_t *v = parse(&b, "books parse");
    json_t *bk = json_array_get(v, 0), *lat = json_array_get(json_object_get(bk, "latest"), 0);
    CHECK_STR(json_string_value(json_object_get(bk, "id")), "9780132269933", "book id");
    CHECK_STR(json_string_value(json_object_get(bk, "isbn13")), "9780132269933", "book isbn13");
    CHECK_STR(json_string_value(json_object_get(bk, "isbn10")), "0132269937", "book isbn10");
    CHECK_STR(json_string_value(json_object_get(bk, "title")),
              "=HYPERLINK(\"x\") " UTF8_REPLACEMENT,
              "hostile title kept as text, invalid byte replaced");
    CHECK_INT(json_integer_value(json_object_get(lat, "rank")), 1234, "latest rank");
    CHECK_INT(json_integer_value(json_object_get(lat, "previous_rank")), 2000, "previous rank");
    CHECK_STR(json_string_value(json_object_get(lat, "rank_category")), "Books \"<script>\"",
              "category text");
    CHECK(json_is_null(json_object_get(lat, "error")), "error null");
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(lat, "categories"), 0), "category")),
              "C & C++ <b>", "category rank names");
    CHECK_STR(json_string_value(json_object_get(lat, "fetched_at")), "2025-11-24T16:00:00Z",
              "fetched_at");
    CHECK(json_is_null(json_object_get(lat, "last_ok")), "an ok observation has last_ok null");
    CHECK_STR(json_string_value(json_object_get(bk, "asin")), "0132269937",
              "no attached ASIN: the print edition's ASIN is its ISBN-10");
    CHECK(json_object_get(bk, "format") && json_is_null(json_object_get(bk, "format")),
          "format unknown: null");
    CHECK(json_object_get(bk, "work") && json_is_null(json_object_get(bk, "work")), "work null");
    CHECK(json_object_get(bk, "note") && json_is_null(json_object_get(bk, "note")), "note null");
    CHECK(json_is_array(json_object_get(bk, "tags")) &&
              json_array_size(json_object_get(bk, "tags")) == 0,
          "no tags: []");
    CHECK(json_object_get(bk, "sources") && json_is_null(json_object_get(bk, "sources")),
          "sources null: every source");
    json_decref(v);

    /* An ASIN-only book with the optional fields set, and a failed latest with its last good one. */
    {
        char *tags[] = {"a", "b"};
        char *srcs[] = {"amazon.de"};
        db_asin asins[] = {{"amazon.de", "B0AAAAAAA1"}};
        observation bad;
        obs_init(&bad);
        memcpy(bad.book_id, "B00ZV9PXP2", 11);
        bad.source = strdup("amazon.de");
        bad.status = OBS_BLOCKED;
        bad.fetched_at_ms = 1764000000000;
        bad.last_ok_rank = 55;
        bad.last_ok_category = strdup("Kindle-Shop");
        bad.last_ok_at_ms = 1763000000000;
        db_book ab = {.id = "B00ZV9PXP2",
                      .format = OBS_FORMAT_KINDLE,
                      .work = "The Work",
                      .note = "a note",
                      .tags = tags,
                      .ntags = 2,
                      .sources = srcs,
                      .nsources = 1,
                      .asins = asins,
                      .nasins = 1,
                      .latest = &bad,
                      .nlatest = 1};
        buf_reset(&b);
        CHECK_INT(render_book_doc(&b, &ab, RENDER_COMPACT), BUF_OK, "ASIN book renders");
        v = parse(&b, "ASIN book parses");
        CHECK_STR(json_string_value(json_object_get(v, "id")), "B00ZV9PXP2", "ASIN book id");
        CHECK(json_is_null(json_object_get(v, "isbn13")) &&
                  json_is_null(json_object_get(v, "isbn10")),
              "ASIN book: isbn13 and isbn10 null");
        CHECK_STR(json_string_value(json_object_get(v, "asin")), "B00ZV9PXP2",
                  "a book without an ISBN: its asin is its id");
        CHECK_STR(json_string_value(json_object_get(v, "format")), "kindle", "format");
        CHECK_STR(json_string_value(json_object_get(v, "work")), "The Work", "work");
        CHECK_STR(json_string_value(json_object_get(v, "note")), "a note", "note");
        json_t *tg = json_object_get(v, "tags");
        CHECK(json_array_size(tg) == 2 &&
                  strcmp(json_string_value(json_array_get(tg, 0)), "a") == 0 &&
                  strcmp(json_string_value(json_array_get(tg, 1)), "b") == 0,
              "tags in order");
        json_t *sr = json_object_get(v, "sources");
        CHECK(json_array_size(sr) == 1 &&
                  strcmp(json_string_value(json_array_get(sr, 0)), "amazon.de") == 0,
              "sources listed");
        CHECK_STR(json_string_value(json_object_get(json_object_get(v, "asins"), "amazon.de")),
                  "B0AAAAAAA1", "per-storefront ASINs by source");
        json_t *lo = json_object_get(json_array_get(json_object_get(v, "latest"), 0), "last_ok");
        CHECK_INT(json_integer_value(json_object_get(lo, "rank")), 55, "last_ok rank");
        CHECK_STR(json_string_value(json_object_get(lo, "rank_category")), "Kindle-Shop",
                  "last_ok category");
        CHECK_STR(json_string_value(json_object_get(lo, "fetched_at")), "2025-11-13T02:13:20Z",
                  "last_ok fetched_at");
        json_decref(v);

        /* The book list as CSV: tags joined by |. */
        buf_reset(&b);
        CHECK_INT(render_books_csv_header(&b), BUF_OK, "books csv header");
        CHECK_INT(render_books_csv_row(&b, &ab), BUF_OK, "books csv row");
        CHECK(strncmp(b.data, "id,isbn13,asin,title,format,work,tags,source,", 45) == 0,
              "books csv header text");
        /* The asin column is left unchecked: for a book without an ISBN the JSON "asin" is its
         * id while this column is empty (render/csv.c prints only an attached ASIN); which of
         * the two is meant is still open. */
        CHECK(strstr(b.data, "\r\nB00ZV9PXP2,,") != NULL, "books csv row: id, no isbn13");
        CHECK(strstr(b.data, ",kindle,\"The Work\",\"a|b\",\"amazon.de\",blocked,,,"
                             "2025-11-24T16:00:00Z,55,2025-11-13T02:13:20Z\r\n") != NULL,
              "books csv row: tags a|b, last ok rank and time");
        if (!strstr(b.data, "\"a|b\""))
            printf("#   %s\n", b.data);
        db_book none = {.id = "9780132269933", .isbn13 = "9780132269933"};
        buf_reset(&b);
        CHECK_INT(render_books_csv_row(&b, &none), BUF_OK, "books csv row without observations");
        CHECK_STR(b.data, "9780132269933,9780132269933,,,,,,,,,,,,\r\n",
                  "a book without observations: one row, observation fields empty");
        obs_clear(&bad);
    }

    buf_reset(&b);
    CHECK_INT(render_history(&b, "9780132269933", "9780132269933", &o, 1, RENDER_PRETTY), BUF_OK,
              "history renders");
    v = parse(&b, "history parses");
    CHECK_STR(json_string_value(json_object_get(v, "id")), "9780132269933", "history id");
    CHECK_STR(json_string_value(json_object_get(v, "isbn13")), "9780132269933", "history isbn13");
    CHECK_INT(json_array_size(json_object_get(v, "observations")), 1, "history observations");
    json_decref(v);

    buf_reset(&b);
    CHECK_INT(render_history(&b, "B00ZV9PXP2", NULL, NULL, 0, RENDER_COMPACT), BUF_OK,
              "history of an ASIN book renders");
    v = parse(&b, "ASIN history parses");
    CHECK_STR(json_string_value(json_object_get(v, "id")), "B00ZV9PXP2", "ASIN history id");
    CHECK(json_object_get(v, "isbn13") && json_is_null(json_object_get(v, "isbn13")),
          "isbn13 NULL writes \"isbn13\": null");
    CHECK(json_is_array(json_object_get(v, "observations")) &&
              json_array_size(json_object_get(v, "observations")) == 0,
          "no observations: []");
    json_decref(v);

    db_job job = {.id = 7,
                  .state = JOB_DONE,
                  .started_by = JOB_BY_SCHEDULE,
                  .total = 2,
                  .done = 2,
                  .skipped = 1,
                  .counts = {2},
                  .created_at_ms = 1};
    buf_reset(&b);
    CHECK_INT(render_job_doc(&b, &job, 1), BUF_OK, "job renders");
    v = parse(&b, "job parses");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(v, "job"), "id")), 7, "job id");
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "job"), "state")), "done",
              "job state");
    CHECK(json_is_true(json_object_get(v, "joined")), "joined");
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(json_object_get(v, "job"), "counts"), "ok")),
              2, "job counts");
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "job"), "started_by")),
              "schedule", "job started_by");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(v, "job"), "skipped")), 1,
              "job skipped");
    json_decref(v);

    /* A job with its failed fetches. */
    {
        observation fl[2];
        obs_init(&fl[0]);
        obs_init(&fl[1]);
        memcpy(fl[0].book_id, "9780132269933", 14);
        fl[0].source = strdup("amazon.com");
        fl[0].status = OBS_BLOCKED;
        fl[0].fetched_at_ms = 1764000000000;
        memcpy(fl[1].book_id, "B00ZV9PXP2", 11);
        fl[1].source = strdup("amazon.de");
        fl[1].status = OBS_ERROR;
        fl[1].error = strdup("HTTP 503 <x>");
        buf_reset(&b);
        CHECK_INT(render_job_detail(&b, &job, fl, 2), BUF_OK, "job detail renders");
        v = parse(&b, "job detail parses");
        json_t *jb = json_object_get(v, "job"), *fa = json_object_get(jb, "failed");
        CHECK_INT(json_integer_value(json_object_get(jb, "id")), 7, "job detail: the job's fields");
        CHECK_STR(json_string_value(json_object_get(jb, "started_by")), "schedule",
                  "job detail started_by");
        CHECK_INT(json_array_size(fa), 2, "job detail: one entry per failure");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 0), "id")), "9780132269933",
                  "failure id");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 0), "status")), "blocked",
                  "failure status");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 0), "fetched_at")),
                  "2025-11-24T16:00:00Z", "failure fetched_at");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 1), "id")), "B00ZV9PXP2",
                  "ASIN failure id");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 1), "source")), "amazon.de",
                  "failure source");
        CHECK_STR(json_string_value(json_object_get(json_array_get(fa, 1), "error")),
                  "HTTP 503 <x>", "failure error");
        json_decref(v);
        obs_clear(&fl[0]);
        obs_clear(&fl[1]);

        buf_reset(&b);
        CHECK_INT(render_job_detail(&b, &job, NULL, 0), BUF_OK,
                  "job detail without failures renders");
        v = parse(&b, "job detail without failures parses");
        fa = json_object_get(json_object_get(v, "job"), "failed");
        CHECK(json_is_array(fa) && json_array_size(fa) == 0, "no failures: []");
        json_decref(v);

        db_job two[2] = {job, {.id = 8, .state = JOB_RUNNING, .started_by = JOB_BY_API}};
        buf_reset(&b);
        CHECK_INT(render_jobs(&b, two, 2, 1764000000000), BUF_OK, "jobs render");
        v = parse(&b, "jobs parse");
        json_t *js = json_object_get(v, "jobs");
        CHECK(json_array_size(js) == 2 &&
                  json_integer_value(json_object_get(json_array_get(js, 0), "id")) == 7 &&
                  json_integer_value(json_object_get(json_array_get(js, 1), "id")) == 8,
              "jobs in the order given");
        CHECK_STR(json_string_value(json_object_get(json_array_get(js, 1), "started_by")), "api",
                  "jobs started_by");
        CHECK_STR(json_string_value(json_object_get(v, "next_scheduled_at")),
                  "2025-11-24T16:00:00Z", "next_scheduled_at");
        json_decref(v);
        buf_reset(&b);
        CHECK_INT(render_jobs(&b, NULL, 0, 0), BUF_OK, "no jobs render");
        CHECK_STR(b.data, "{\"jobs\":[],\"next_scheduled_at\":null}", "no jobs, nothing scheduled");
    }

    const char *ids[] = {"9780132269933", "9780131103627"};
    int added[] = {0, 1};
    buf_reset(&b);
    CHECK_INT(render_books_added(&b, ids, added, 2, NULL), BUF_OK, "added renders");
    CHECK_STR(b.data, "{\"added\":[\"9780131103627\"],\"already_tracked\":[\"9780132269933\"]}",
              "added shape");

    render_detail det[] = {
        {0, "\xff<x>", 4, "bad character"},
        {3, NULL, 0, "not a string"},
        {4, "1234567890123456789012345678901234567890123456789012345678901234\xc3\xa9", 66,
         "long"}};
    buf_reset(&b);
    CHECK_INT(render_error(&b, "invalid_isbn", "3 invalid", det, 3), BUF_OK, "error renders");
    v = parse(&b, "error parses");
    json_t *e = json_object_get(v, "error"), *d = json_object_get(e, "details");
    CHECK_STR(json_string_value(json_object_get(e, "code")), "invalid_isbn", "error code");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "input")),
              UTF8_REPLACEMENT "<x>", "detail input sanitised");
    CHECK(json_is_null(json_object_get(json_array_get(d, 1), "input")), "detail input null");
    CHECK_INT(json_string_length(json_object_get(json_array_get(d, 2), "input")), 64,
              "echo cut at 64 bytes on a character boundary");
    json_decref(v);

    buf_reset(&b);
    CHECK_INT(render_extract(&b, &o, RENDER_PRETTY), BUF_OK, "extract renders");
    v = parse(&b, "extract parses");
    CHECK_INT(json_integer_value(json_object_get(v, "rank")), 1234, "extract rank");
    CHECK(json_object_get(v, "error") && json_is_null(json_object_get(v, "error")),
          "extract error null");
    json_decref(v);

    buf_reset(&b);
    CHECK_INT(render_refresh(&b, &job, &o, 1, 1.25, RENDER_PRETTY), BUF_OK, "refresh renders");
    v = parse(&b, "refresh parses");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(v, "results"), 0), "isbn13")),
              "9780132269933", "refresh results carry the isbn13");
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(v, "results"), 0), "id")),
        "9780132269933", "refresh results carry the id");
    CHECK(json_real_value(json_object_get(v, "wall_seconds")) == 1.25, "wall_seconds");
    json_decref(v);
    {
        observation a;
        obs_init(&a);
        memcpy(a.book_id, "B00ZV9PXP2", 11);
        a.source = strdup("amazon.de");
        a.status = OBS_NO_RANK;
        buf_reset(&b);
        CHECK_INT(render_refresh(&b, &job, &a, 1, 0.5, RENDER_COMPACT), BUF_OK,
                  "ASIN refresh renders");
        v = parse(&b, "ASIN refresh parses");
        json_t *r0 = json_array_get(json_object_get(v, "results"), 0);
        CHECK_STR(json_string_value(json_object_get(r0, "id")), "B00ZV9PXP2",
                  "refresh result of an ASIN book: id");
        CHECK(json_object_get(r0, "isbn13") && json_is_null(json_object_get(r0, "isbn13")),
              "refresh result of an ASIN book: isbn13 null");
        json_decref(v);
        obs_clear(&a);
    }

    /* Categories: written and read back. */
    buf_reset(&b);
    CHECK_INT(render_categories(&b, o.categories, o.ncategories), BUF_OK, "categories render");
    observation back;
    obs_init(&back);
    CHECK_INT(render_categories_parse(&back, b.data, b.len), 0, "categories parse");
    CHECK(back.ncategories == 1 && back.categories[0].rank == 3 &&
              strcmp(back.categories[0].category, "C & C++ <b>") == 0,
          "categories round-trip");
    CHECK_INT(render_categories_parse(&back, "{\"x\":1}", 7), 0, "a foreign value is skipped");
    CHECK_INT(render_categories_parse(&back, "[{\"rank\":\"a\",\"category\":1}]", 28), 0,
              "bad entries skipped");
    CHECK_INT(back.ncategories, 1, "nothing added from foreign values");
    obs_clear(&back);
    /* The decoder reads JSON escapes, either member order, and skips other members. */
    obs_init(&back);
    const char *esc = "[ {\"category\": \"\\u00e9t\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\n\", "
                      "\"x\": null, \"rank\": 7}, {\"rank\": 8, \"category\": \"B\"} ]";
    CHECK_INT(render_categories_parse(&back, esc, strlen(esc)), 0, "escaped categories parse");
    CHECK(back.ncategories == 2 && back.categories[0].rank == 7 &&
              strcmp(back.categories[0].category,
                     "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n") == 0 &&
              back.categories[1].rank == 8 && strcmp(back.categories[1].category, "B") == 0,
          "\\u escapes, a surrogate pair, quotes, either member order, other members skipped");
    obs_clear(&back);
    obs_init(&back);
    const char *broken[] = {"[{\"rank\": 1, \"category\": \"a\"}",
                            "[{\"rank\": 1.5, \"category\": \"a\"}]x",
                            "[{\"rank\": 99999999999999999999, \"category\": \"a\"}]", "{}", ""};
    for (size_t k = 0; k < sizeof broken / sizeof broken[0]; k++)
        CHECK_INT(render_categories_parse(&back, broken[k], strlen(broken[k])), 0,
                  "a broken value is no failure");
    CHECK_INT(back.ncategories, 0, "and adds nothing");
    obs_clear(&back);

    /* CSV. */
    buf_reset(&b);
    CHECK_INT(render_csv_header(&b), BUF_OK, "csv header");
    CHECK_INT(render_csv_row(&b, &o), BUF_OK, "csv row");
    CHECK(
        strstr(
            b.data,
            "\r\n9780132269933,\"amazon.com\",2025-11-24T16:00:00Z,ok,1234,\"Books \"\"<script>\"\"\",200,,9780132269933\r\n") !=
            NULL,
        "csv row: quoted fields, doubled quotes, CRLF");
    observation f;
    obs_init(&f);
    memcpy(f.book_id, "9780132269933", 14);
    f.source = strdup("amazon.com");
    f.status = OBS_ERROR;
    f.error = strdup("-1+2 \xff");
    buf_reset(&b);
    CHECK_INT(render_csv_row(&b, &f), BUF_OK, "csv error row");
    CHECK(strstr(b.data, ",\"'-1+2 " UTF8_REPLACEMENT "\",9780132269933\r\n") != NULL,
          "formula guard and U+FFFD in CSV");
    /* A book without an ISBN: isbn13 empty, id names it. */
    memcpy(f.book_id, "B01LW7X0JJ", 11);
    buf_reset(&b);
    CHECK_INT(render_csv_row(&b, &f), BUF_OK, "csv row of an ASIN book");
    CHECK(strncmp(b.data, ",\"amazon.com\",", 14) == 0 && strstr(b.data, ",B01LW7X0JJ\r\n") != NULL,
          "an ASIN book's row: isbn13 empty, id at the end");
    obs_clear(&f);

    buf_free(&b);
    obs_clear(&o);
}

int main(void)
{
    test_escaping();
    test_structure();
    test_shapes();
    return check_done();
}
