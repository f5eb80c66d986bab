/*
 * test_text.c - the scraper's text helpers (scraper/text.h, private to scraper/ and included here
 * as the unit test of that module): entities, clean_text, ladder steps and rank numbers, table
 * driven. Single-threaded; no files, no network.
 */
#include "../lib/check.h"
#include "../../scraper/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* ---- entities --------------------------------------------------------------------------- */

static const struct entity_case {
    const char *in;
    size_t used; /* 0 = not an entity */
    uint32_t cp;
} entity_cases[] = {
    {"&amp;", 5, '&'},
    {"&lt;b", 4, '<'},
    {"&nbsp;x", 6, 0xa0},
    {"&eacute;", 8, 0xe9},
    {"&Uuml;", 6, 0xdc},
    {"&yuml;", 6, 0xff},
    {"&rsquo;", 7, 0x2019},
    {"&hellip;", 8, 0x2026},
    {"&euro;", 6, 0x20ac},
    {"&NewLine;", 9, '\n'},
    {"&#39;", 5, '\''},
    {"&#x27;", 6, '\''},
    {"&#X2019;", 8, 0x2019},
    {"&#233", 5, 0xe9}, /* numeric: the ';' may be missing */
    {"&#233 x", 5, 0xe9},
    {"&#x1F600;", 9, 0x1f600},
    {"&#150;", 6, 0x2013}, /* 128-159 as Windows-1252 */
    {"&#128;", 6, 0x20ac},
    {"&#146;", 6, 0x2019},
    {"&#129;", 6, 0x81}, /* a hole in Windows-1252 stays a control */
    {"&#0;", 4, 0xfffd},
    {"&#xD800;", 8, 0xfffd},      /* surrogate */
    {"&#x110000;", 10, 0xfffd},   /* beyond Unicode */
    {"&#99999999;", 11, 0xfffd},  /* beyond Unicode, 8 digits */
    {"&#123456789;", 10, 0xfffd}, /* at most 8 digits are read, the rest is text */
    {"&nbsp", 0, 0},              /* named: the ';' is required */
    {"&bogus;", 0, 0},
    {"&AMP;", 0, 0}, /* names are case-sensitive */
    {"&#;", 0, 0},
    {"&#x;", 0, 0},
    {"&;", 0, 0},
    {"&", 0, 0},
    {"& amp;", 0, 0},
    {"&verylongname;", 0, 0},
};

static void test_entities(void)
{
    for (size_t i = 0; i < sizeof entity_cases / sizeof entity_cases[0]; i++) {
        const struct entity_case *c = &entity_cases[i];
        uint32_t cp = 0x12345;
        size_t used = scr_decode_entity((const unsigned char *)c->in, strlen(c->in), &cp);
        char what[96];
        snprintf(what, sizeof what, "entity '%s': length", c->in);
        CHECK_INT(used, c->used, what);
        if (c->used) {
            snprintf(what, sizeof what, "entity '%s': code point", c->in);
            CHECK_INT(cp, c->cp, what);
            unsigned char enc[4];
            snprintf(what, sizeof what, "entity '%s': never encodes longer than written", c->in);
            CHECK(utf8_encode(enc, cp) <= used, what);
        }
    }
    /* Only the bytes given are looked at: "&amp;" cut before its ';' is no entity. */
    uint32_t cp;
    CHECK_INT(scr_decode_entity((const unsigned char *)"&amp;", 4, &cp), 0,
              "entity cut before ';' is not one");
}

/* ---- clean_text ------------------------------------------------------------------------- */

static const struct clean_case {
    const char *label;
    const char *in;
    const char *want;
} clean_cases[] = {
    {"plain", "The C Programming Language", "The C Programming Language"},
    {"trimmed", "  \n\t Title \r\n ", "Title"},
    {"blank runs collapse", "a \t\n\r\f\v  b", "a b"},
    {"controls are blank",
     "a\x01\x1f"
     "b\x7f"
     "c",
     "a b c"},
    {"NUL is blank", "a\0b", "a b"},
    {"no-break spaces collapse",
     "a\xc2\xa0\xe2\x80\xaf\xe2\x80\x89\xe3\x80\x80"
     "b",
     "a b"},
    {"C1 control is blank",
     "a\xc2\x85"
     "b",
     "a b"},
    {"entities", "Tom &amp; Jerry &ndash; &quot;Live&quot; &#233;t&eacute;",
     "Tom & Jerry \xe2\x80\x93 \"Live\" \xc3\xa9t\xc3\xa9"},
    {"&nbsp; is blank", "a&nbsp;&nbsp;b&#160;c", "a b c"},
    {"cp1252 reference", "It&#146;s", "It\xe2\x80\x99s"},
    {"unknown entity stays", "a &bogus; b & c", "a &bogus; b & c"},
    {"tags dropped", "<b>Bold</b> <i class=\"x\">text</i><!-- c --><br/>", "Bold text"},
    {"a '<' that opens no tag stays", "1 < 2 <3", "1 < 2 <3"},
    {"unclosed tag ends the text", "Title <span class=", "Title"},
    {"decoded '<' stays text", "&lt;b&gt;", "<b>"},
    {"invisible characters dropped",
     "soft\xc2\xad"
     "hy\xe2\x80\x8bphen\xef\xbb\xbf",
     "softhyphen"},
    {"invalid byte -> U+FFFD", "caf\xe9!", "caf\xef\xbf\xbd!"},
    {"one U+FFFD per invalid byte", "\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"truncated sequence", "ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd"},
    {"overlong form", "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"encoded surrogate", "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"above U+10FFFF", "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"valid 4-byte kept", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    {"entity yields UTF-8 that is then checked", "&#x1F600;&#xD800;",
     "\xf0\x9f\x98\x80\xef\xbf\xbd"},
    {"only blank", " \n &nbsp; ", ""},
    {"empty", "", ""},
};

static void test_clean_text(void)
{
    for (size_t i = 0; i < sizeof clean_cases / sizeof clean_cases[0]; i++) {
        const struct clean_case *c = &clean_cases[i];
        /* "NUL is blank" has a NUL inside: its length is that of the literal. */
        size_t n = strcmp(c->label, "NUL is blank") == 0 ? 3 : strlen(c->in);
        char *got = scr_clean_text(c->in, n);
        char what[96];
        snprintf(what, sizeof what, "clean_text: %s", c->label);
        CHECK_STR(got, c->want, what);
        if (got) {
            snprintf(what, sizeof what, "clean_text: %s: valid UTF-8", c->label);
            CHECK(utf8_valid(got, strlen(got)), what);
        }
        free(got);
    }
}

/* The 1000-byte cap, with multi-byte characters straddling it. */
static void test_clean_text_cap(void)
{
    char in[4096];
    /* 999 ASCII bytes then 'é' (2 bytes): 1001 would not fit, so the cut is at 999. */
    memset(in, 'a', 999);
    memcpy(in + 999,
           "\xc3\xa9"
           "tail",
           6);
    char *got = scr_clean_text(in, 1005);
    CHECK(got && strlen(got) == 999, "cap: a 2-byte character over 1000 bytes is left out whole");
    CHECK(got && utf8_valid(got, strlen(got)), "cap: result is valid UTF-8");
    free(got);

    /* 998 ASCII + 'é' ends exactly at 1000. */
    memset(in, 'a', 998);
    memcpy(in + 998,
           "\xc3\xa9"
           "tail",
           6);
    got = scr_clean_text(in, 1004);
    CHECK(got && strlen(got) == SCR_TEXT_CAP && memcmp(got + 998, "\xc3\xa9", 2) == 0,
          "cap: a character ending at byte 1000 is kept");
    free(got);

    /* 3-byte characters only: 333 * 3 = 999, the 334th would cross the cap. */
    for (int k = 0; k < 400; k++)
        memcpy(in + 3 * k, "\xe2\x82\xac", 3);
    got = scr_clean_text(in, 1200);
    CHECK(got && strlen(got) == 999, "cap: 3-byte characters cut on a boundary (999 bytes)");
    CHECK(got && utf8_valid(got, strlen(got)), "cap: 3-byte cut is valid UTF-8");
    free(got);

    /* Invalid bytes count as their 3-byte replacement against the cap. */
    memset(in, 0xff, 400);
    got = scr_clean_text(in, 400);
    CHECK(got && strlen(got) == 999, "cap: U+FFFD replacements cut on a boundary");
    free(got);

    /* A space is never left dangling at the cap: 999 'a', a space, then more. */
    memset(in, 'a', 999);
    memcpy(in + 999, " bb", 3);
    got = scr_clean_text(in, 1002);
    CHECK(got && strlen(got) == 999 && got[998] == 'a', "cap: no trailing space at the cut");
    free(got);

    /* Only the first SCR_TEXT_INPUT_CAP input bytes are read: text after them never shows. */
    size_t big = SCR_TEXT_INPUT_CAP + 100;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, ' ', big);
        memcpy(huge + SCR_TEXT_INPUT_CAP + 10, "late", 4);
        got = scr_clean_text(huge, big);
        CHECK_STR(got, "", "input cap: text after 64 KiB is not read");
        free(got);
        free(huge);
    }
}

/* ---- ladder_step ------------------------------------------------------------------------ */

static const struct ladder_case {
    const char *in;
    int first;
    const char *want;
} ladder_cases[] = {
    {"Books > Computers & Technology > Programming > C", 0, "C"},
    {"Books > Computers & Technology > Programming > C", 1, "Books"},
    {"Books \xe2\x80\xba Kindle \xe2\x80\xba Thrillers", 0, "Thrillers"},
    {"Books \xe2\x80\xba Kindle \xe2\x80\xba Thrillers", 1, "Books"},
    {"Books", 0, "Books"},
    {"Books", 1, "Books"},
    {"Books (See Top 100 in Books)", 1, "Books"},
    {"Programming Languages (See Top 100 in Books)", 0, "Programming Languages"},
    {"B\xc3\xbc"
     "cher (Siehe Top 100 in B\xc3\xbc"
     "cher)",
     1,
     "B\xc3\xbc"
     "cher"},
    {"Livres (Voir les 100 premiers en Livres)", 1, "Livres"},
    {"Books > Science (See Top 100 in Books) > Physics", 0, "Science"},
    {"Books > C >", 0, "C"}, /* dangling separators are not steps */
    {"> Books > C", 1, "Books"},
    {"Books > C \xe2\x80\xba ", 0, "C"},
    {"Home & Garden (Books)", 0, "Home & Garden (Books)"},
    {" > ", 0, ""},
    {"", 0, ""},
};

static void test_ladder_step(void)
{
    for (size_t i = 0; i < sizeof ladder_cases / sizeof ladder_cases[0]; i++) {
        const struct ladder_case *c = &ladder_cases[i];
        char s[256];
        snprintf(s, sizeof s, "%s", c->in);
        scr_ladder_step(s, c->first);
        char what[160];
        snprintf(what, sizeof what, "ladder %s step of '%s'", c->first ? "first" : "last", c->in);
        CHECK_STR(s, c->want, what);
    }
}

/* ---- parse_rank ------------------------------------------------------------------------- */

static const struct rank_case {
    const char *in;
    long long want;
} rank_cases[] = {
    {"5,838", 5838},
    {"13.222", 13222},
    {"1 234", 1234},
    {"1'234", 1234},
    {"1\xc2\xa0"
     "234",
     1234}, /* U+00A0 */
    {"1\xe2\x80\xaf"
     "234",
     1234}, /* U+202F */
    {"1,234,567", 1234567},
    {"1", 1},
    {"007", 7},
    {"999999999999999", 999999999999999LL}, /* 15 digits */
    {"1000000000000000", SCR_RANK_OVERFLOW},
    {"\xd9\xa1\xd9\xac\xd9\xa4\xd9\xa3\xd9\xa1", 1431},
    {"\xdb\xb4\xdb\xb2", 42},
    {"\xd9\xa1\xd9\x81", -1}, /* 16 digits */
    {"0", -1},
    {"0,000", -1},
    {"", -1},
    {",", -1},
    {"12a", -1},
    {"-5", -1},
    {"+5", -1},
    {"#5", -1},
    {"5\xe2\x82\xac", -1}, /* U+20AC: only the space separators pass */
};

static void test_parse_rank(void)
{
    for (size_t i = 0; i < sizeof rank_cases / sizeof rank_cases[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "parse_rank '%s'", rank_cases[i].in);
        CHECK_INT(scr_parse_rank(rank_cases[i].in, strlen(rank_cases[i].in)), rank_cases[i].want,
                  what);
    }
    CHECK_INT(scr_parse_rank("5,838 in Books", 5), 5838, "parse_rank reads only n bytes");
}

/* ---- spaces ----------------------------------------------------------------------------- */

static void test_space_classes(void)
{
    static const uint32_t spaces[] = {0,      ' ',    '\t',   0x7f,   0x85,   0xa0,   0x1680,
                                      0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
    static const uint32_t not_spaces[] = {'a', 0xa1, 0xad, 0x200b, 0x200c, 0xfeff, 0xfffd};
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "U+%04X is blank", (unsigned)spaces[i]);
        CHECK(scr_is_space_cp(spaces[i]), what);
    }
    for (size_t i = 0; i < sizeof not_spaces / sizeof not_spaces[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "U+%04X is not blank", (unsigned)not_spaces[i]);
        CHECK(!scr_is_space_cp(not_spaces[i]), what);
    }
    CHECK(scr_is_nbsp_cp(0xa0) && scr_is_nbsp_cp(0x202f) && scr_is_nbsp_cp(0x2009),
          "no-break and fixed-width spaces fold in block text");
    CHECK(!scr_is_nbsp_cp(' ') && !scr_is_nbsp_cp(0x3000) && !scr_is_nbsp_cp(0x200b),
          "other characters do not fold as no-break spaces");
}

int main(void)
{
    test_entities();
    test_clean_text();
    test_clean_text_cap();
    test_ladder_step();
    test_parse_rank();
    test_space_classes();
    return check_done();
}
