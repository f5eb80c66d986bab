/* test_extract.c - sources and extraction: every preset on every fixture page, synthetic pages for
 * each number format, markup generation and classification, hostile input, URL templates and
 * custom rules. Fixture pages come from $FIXTURES (default tests/fixtures). */
#include "scraper/scraper.h"
#include "../lib/check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("FIXTURES");
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/fixtures", name);
    if (n < 0 || (size_t)n >= sizeof path)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1))) {
            if (fread(data, 1, (size_t)size, f) != (size_t)size) {
                free(data);
                data = NULL;
            } else {
                *len = (size_t)size;
            }
        }
    }
    fclose(f);
    return data;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Valid UTF-8 with no NUL or other C0 control byte. */
static int clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20)
            return 0;
        size_t n = *p < 0x80                    ? 1
                   : (*p >= 0xc2 && *p <= 0xdf) ? 2
                   : (*p >= 0xe0 && *p <= 0xef) ? 3
                   : (*p >= 0xf0 && *p <= 0xf4) ? 4
                                                : 0;
        if (!n)
            return 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

static scr_source *preset(const char *name)
{
    char *err = NULL;
    scr_source *src = scr_source_new_preset(name, NULL, &err);
    if (!src)
        printf("# preset %s: %s\n", name, err ? err : "?");
    free(err);
    return src;
}

/* ---- every preset on every fixture ------------------------------------------------------ */

static const struct fixture_case {
    const char *file;
    obs_status status;
    long long rank;
    const char *rank_category;
    size_t ncategories;
    long long first_rank;
    const char *first_category;
    const char *title;
} fixtures[] = {
    {"amazon_com_book_0131103628_2019_salesrank_li.html", OBS_OK, 5838, "Books", 3, 2, "C",
     "C Programming Language, 2nd Edition"},
    {"amazon_ca_book_0131103628_2019_salesrank_li.html", OBS_OK, 23906, "Books", 3, 2, "Language",
     "C Programming Language (2nd Edition)"},
    {"amazon_co_uk_book_1849757097_2024_detailbullets.html", OBS_OK, 929084, "Books", 3, 4687,
     "Vegetarian & Vegan Cooking",
     "Vegetable Perfection: 100 delicious recipes for roots, bulbs, shoots and stems"},
    {"amazon_de_book_0131103628_2019_salesrank_li.html", OBS_OK, 13222,
     "B\xc3\xbc"
     "cher",
     1, 3, "C", "The C Programming Language. (Prentice Hall Software)"},
    {"amazon_fr_book_2266309846_2022_detailbullets.html", OBS_OK, 11406, "Livres", 3, 20,
     "Services secrets", "L'Espion et le Tra\xc3\xaetre"},
    {"amazon_com_nonbook_B01LW7X0JJ_2019_prodDetails_table.html", OBS_OK, 25654, "Home & Kitchen",
     2, 30, "Dining Chair Slipcovers",
     "uxcell Stretch Spandex Short Dining Chair Covers Slipcovers Parson Chair Covers White + "
     "Black"},
    {"amazon_com_captcha_robot_check_2020.html", OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL},
    {"amazon_fr_book_2956470337_2021_no_rank.html", OBS_NO_RANK, -1, NULL, 0, -1, NULL,
     "Blockchain - the key to unlocking the value chain"},
};

static void check_observation(const char *label, const observation *o, obs_status status,
                              long long rank, const char *rank_category, size_t ncategories,
                              long long first_rank, const char *first_category, const char *title)
{
    char what[512];
    snprintf(what, sizeof what, "%s: status %s", label, obs_status_name(status));
    CHECK_STR(obs_status_name(o->status), obs_status_name(status), what);
    snprintf(what, sizeof what, "%s: rank", label);
    CHECK_INT(o->rank, rank, what);
    snprintf(what, sizeof what, "%s: rank_category", label);
    CHECK_STR(o->rank_category, rank_category, what);
    snprintf(what, sizeof what, "%s: number of category ranks", label);
    CHECK_INT(o->ncategories, ncategories, what);
    if (first_rank >= 0) {
        snprintf(what, sizeof what, "%s: first category rank", label);
        CHECK_INT(o->ncategories ? o->categories[0].rank : -1, first_rank, what);
    }
    if (first_category) {
        snprintf(what, sizeof what, "%s: first category name", label);
        CHECK_STR(o->ncategories ? o->categories[0].category : NULL, first_category, what);
    }
    snprintf(what, sizeof what, "%s: title", label);
    CHECK_STR(o->title, title, what);
}

static void test_fixtures(void)
{
    double total_s = 0;
    size_t total_bytes = 0;
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        const struct fixture_case *fc = &fixtures[f];
        size_t len = 0;
        char *page = read_fixture(fc->file, &len);
        char what[512];
        snprintf(what, sizeof what, "fixture %s readable (set FIXTURES)", fc->file);
        if (!CHECK(page != NULL, what))
            continue;
        for (size_t p = 0; scr_preset_names[p]; p++) {
            scr_source *src = preset(scr_preset_names[p]);
            observation o;
            obs_init(&o);
            CHECK_INT(scr_extract(src, 200, page, len, &o), 0, "scr_extract returns 0");
            char label[300];
            snprintf(label, sizeof label, "%s on %s", scr_preset_names[p], fc->file);
            check_observation(label, &o, fc->status, fc->rank, fc->rank_category, fc->ncategories,
                              fc->first_rank, fc->first_category, fc->title);
            if (fc->status == OBS_OK) {
                /* A page on its own (bookrank extract) reads the same. */
                observation alone;
                obs_init(&alone);
                scr_extract(src, 0, page, len, &alone);
                snprintf(what, sizeof what, "%s: same rank with http_status 0", label);
                CHECK_INT(alone.rank, fc->rank, what);
                obs_clear(&alone);
            }
            if (p == 0) {
                int rounds = 20;
                double t0 = now_s();
                for (int r = 0; r < rounds; r++) {
                    obs_clear(&o);
                    scr_extract(src, 200, page, len, &o);
                }
                double dt = now_s() - t0;
                total_s += dt;
                total_bytes += len * (size_t)rounds;
                printf("# %-58s %8zu bytes %7.3f ms/page\n", fc->file, len, dt / rounds * 1e3);
            }
            obs_clear(&o);
            scr_source_free(src);
        }
        free(page);
    }
    if (total_s > 0)
        printf("# fixture pages: %.0f MB/s on one core\n", (double)total_bytes / total_s / 1e6);
}

/* ---- synthetic pages -------------------------------------------------------------------- */

#define TITLE_SPAN                                                                                 \
    "<h1 id=\"title\"><span id=\"productTitle\" class=\"a-size-large\">A Book</span></h1>\n"

/* 2017-2019: <li id="SalesRank"> with a zg_hrsr ladder list. */
#define GEN_SALESRANK_LI                                                                           \
    "<html><head><style>#SalesRank { color: red }</style></head><body>" TITLE_SPAN                 \
    "<li id=\"SalesRank\">\n<b>Amazon Best Sellers Rank:</b> \n\n\n\n#1,234 in Books (<a "         \
    "href=\"/gp/bestsellers/books\">See Top 100 in Books</a>)\n<style type=\"text/css\">\n"        \
    ".zg_hrsr { margin: 0; }\n</style>\n<ul class=\"zg_hrsr\">\n<li class=\"zg_hrsr_item\">\n"     \
    "<span class=\"zg_hrsr_rank\">#5</span>\n<span class=\"zg_hrsr_ladder\">in&nbsp;<a "           \
    "href=\"/a\">Books</a> &gt; <a href=\"/b\">Computers &amp; Technology</a> &gt; <a "            \
    "href=\"/c\">Programming Languages</a> &gt; <b><a href=\"/d\">C</a></b></span>\n</li>\n"       \
    "<li class=\"zg_hrsr_item\">\n<span class=\"zg_hrsr_rank\">#17</span>\n<span "                 \
    "class=\"zg_hrsr_ladder\">in&nbsp;<a href=\"/a\">Books</a> &gt; <b><a "                        \
    "href=\"/e\">Textbooks</a></b></span>\n</li>\n</ul>\n</li>\n<li><b>Average Customer "          \
    "Review:</b> 4 in 5 stars</li><div><span>#9 in Decoys</span></div></body></html>"

/* 2020-2024: detail bullets. */
#define GEN_DETAIL_BULLETS                                                                         \
    "<html><body>" TITLE_SPAN "<div id=\"detailBulletsWrapper_feature_div\"><ul "                  \
    "class=\"a-unordered-list detail-bullet-list\"> <li><span class=\"a-list-item\"> <span "       \
    "class=\"a-text-bold\"> Best Sellers Rank: </span> 8,557 in Books (<a "                        \
    "href='/gp/bestsellers/books'>See Top 100 in Books</a>) <ul class=\"a-unordered-list "         \
    "zg_hrsr\"> <li><span class=\"a-list-item\"> 12 in <a href='/x'>Home &amp; Garden "            \
    "(Books)</a></span></li> <li><span class=\"a-list-item\"> 3,456 in <a "                        \
    "href='/y'>Vegan Cooking</a></span></li> </ul> </span></li> </ul> <ul><li><span><span "        \
    "class=\"a-text-bold\">Customer reviews:</span> 5 in 5</span></li></ul></div></body></html>"

/* 2019 non-book products: the prodDetails table. */
#define GEN_PRODDETAILS                                                                            \
    "<html><body>" TITLE_SPAN "<table id=\"productDetails_detailBullets_sections1\"><tr><th "      \
    "class=\"a-color-secondary prodDetSectionEntry\">\n  Best Sellers Rank\n  </th>\n<td>\n"       \
    "<span>\n<span>#25,654 in Home & Kitchen (<a href='/gp/bestsellers/home-garden'>See Top "      \
    "100 in Home & Kitchen</a>)</span>\n<br>\n<span>#30 in <a href='/a'>Home & Kitchen</a> > "     \
    "<a href='/b'>Slipcovers</a> > <a href='/c'>Dining Chair Slipcovers</a></span>\n<br>\n"        \
    "</span></td></tr><tr><th>Date First Available</th><td>March 2, 2017</td></tr></table>"        \
    "<span>#7 in Decoys</span></body></html>"

static const struct synthetic_case {
    const char *name;
    int http;
    const char *page;
    size_t len; /* 0: strlen(page) */
    obs_status status;
    long long rank;
    const char *rank_category;
    size_t ncategories;
    long long first_rank;
    const char *first_category;
    const char *title;
    const char *error_has; /* expected substring of out->error */
} synthetic[] = {
    {"generation <li id=SalesRank>", 200, GEN_SALESRANK_LI, 0, OBS_OK, 1234, "Books", 2, 5, "C",
     "A Book", NULL},
    {"generation detail bullets (no #)", 200, GEN_DETAIL_BULLETS, 0, OBS_OK, 8557, "Books", 2, 12,
     "Home & Garden (Books)", "A Book", NULL},
    {"generation prodDetails table", 200, GEN_PRODDETAILS, 0, OBS_OK, 25654, "Home & Kitchen", 1,
     30, "Dining Chair Slipcovers", "A Book", NULL},
    {"German Nr. 1.234", 200,
     TITLE_SPAN "<li id=\"SalesRank\"><b>Amazon Bestseller-Rang:</b> Nr. 1.234 in B\xc3\xbc"
                "cher (<a href=\"/x\">Siehe Top 100 in B\xc3\xbc"
                "cher</a>)<ul "
                "class=\"zg_hrsr\"><li class=\"zg_hrsr_item\"><span class=\"zg_hrsr_rank\">Nr. "
                "3</span> <span class=\"zg_hrsr_ladder\">in&nbsp;<a href=\"/c\">C</a></span></li>"
                "</ul></li>",
     0, OBS_OK, 1234,
     "B\xc3\xbc"
     "cher",
     1, 3, "C", "A Book", NULL},
    {"German Fremdsprachige Buecher top category", 200,
     TITLE_SPAN "<span class=\"a-text-bold\">Amazon Bestseller-Rang: </span> Nr. 45.678 in "
                "Fremdsprachige B\xc3\xbc"
                "cher (<a href='/x'>Siehe Top 100 in Fremdsprachige "
                "B\xc3\xbc"
                "cher</a>) <ul><li><span> Nr. 9 in <a href='/y'>Science Fiction "
                "(Fremdsprachige B\xc3\xbc"
                "cher)</a></span></li></ul>",
     0, OBS_OK, 45678,
     "Fremdsprachige B\xc3\xbc"
     "cher",
     1, 9,
     "Science Fiction (Fremdsprachige B\xc3\xbc"
     "cher)",
     "A Book", NULL},
    {"French n\xc2\xb0 1 234 with U+00A0", 200,
     TITLE_SPAN "<span class=\"a-text-bold\">Classement des meilleures ventes d'Amazon\xc2\xa0: "
                "</span> n\xc2\xb0\xc2\xa0"
                "1\xc2\xa0"
                "234 en Livres (<a href='/x'>Voir les 100 "
                "premiers en Livres</a>) <ul><li><span>n\xc2\xb0"
                "30 en <a href='/y'>Romans "
                "policiers</a></span></li></ul>",
     0, OBS_OK, 1234, "Livres", 1, 30, "Romans policiers", "A Book", NULL},
    {"French n\xc2\xb0 1 234 with U+202F and d&#39;Amazon", 200,
     TITLE_SPAN "<b>Classement des meilleures ventes d&#39;Amazon :</b> n\xc2\xb0\xe2\x80\xaf"
                "1\xe2\x80\xaf"
                "234\xe2\x80\xaf"
                "en Livres anglais et \xc3\xa9trangers (<a "
                "href='/x'>Voir les 100 premiers</a>)",
     0, OBS_OK, 1234, "Livres anglais et \xc3\xa9trangers", 0, -1, NULL, "A Book", NULL},
    {"French &nbsp; separators and d\xe2\x80\x99"
     "Amazon",
     200,
     TITLE_SPAN "<b>Classement des meilleures ventes d\xe2\x80\x99"
                "Amazon&nbsp;:</b> "
                "n&deg;&nbsp;12&nbsp;345&nbsp;en&nbsp;Livres (Voir les 100 premiers en Livres)",
     0, OBS_OK, 12345, "Livres", 0, -1, NULL, "A Book", NULL},
    {"French Kindle: dans Boutique Kindle", 200,
     TITLE_SPAN "<b>Classement des meilleures ventes d'Amazon :</b> 2\xe2\x80\xaf"
                "345 dans "
                "Boutique Kindle (Voir les 100 premiers en Boutique Kindle)",
     0, OBS_OK, 2345, "Boutique Kindle", 0, -1, NULL, "A Book", NULL},
    {"Kindle Store top category", 200,
     "<span id=\"ebooksProductTitle\" class=\"a-size-extra-large\">An eBook</span>"
     "<li id=\"SalesRank\"><b>Amazon Best Sellers Rank:</b> #86,316 Paid in Kindle Store (<a "
     "href=\"/x\">See Top 100 Paid in Kindle Store</a>)<ul class=\"zg_hrsr\"><li "
     "class=\"zg_hrsr_item\"><span class=\"zg_hrsr_rank\">#12</span><span "
     "class=\"zg_hrsr_ladder\">in&nbsp;<a href=\"/a\">Kindle Store</a> &gt; <a href=\"/b\">Kindle "
     "eBooks</a> &gt; <b><a href=\"/c\">Mystery</a></b></span></li></ul></li>",
     0, OBS_OK, 86316, "Kindle Store", 1, 12, "Mystery", "An eBook", NULL},
    {"UK Amazon Bestsellers Rank", 200,
     TITLE_SPAN "<li id=\"SalesRank\"><b>Amazon Bestsellers Rank:</b> \n23,906 in Books (<a "
                "href=\"/x\">See Top 100 in Books</a>)</li><li><b>Average Customer Review:</b>"
                "</li>",
     0, OBS_OK, 23906, "Books", 0, -1, NULL, "A Book", NULL},
    {"plain-text ladder keeps the last step", 200,
     TITLE_SPAN "<b>Best Sellers Rank:</b> #2,000 in Books<br>#2 in Books > Computers > "
                "Programming Languages > C<br>#4 in Books \xe2\x80\xba Science \xe2\x80\xba "
                "Physics</td>",
     0, OBS_OK, 2000, "Books", 2, 2, "C", "A Book", NULL},
    {"overall rank written as a ladder: top-level step", 200,
     TITLE_SPAN "<b>Best Sellers Rank:</b> #5 in <a href='/a'>Books</a> &gt; <a "
                "href='/b'>Crafts</a> &gt; <b><a href='/c'>Knitting</a></b><br>#1 in <a "
                "href='/a'>Books</a> &gt; <b><a href='/d'>Wool</a></b></td>",
     0, OBS_OK, 5, "Books", 1, 1, "Wool", "A Book", NULL},
    {"See Top 100 inside the category link", 200,
     TITLE_SPAN "<b>Best Sellers Rank:</b> #321 in <a href='/a'>Books (See Top 100 in "
                "Books)</a></td>",
     0, OBS_OK, 321, "Books", 0, -1, NULL, "A Book", NULL},
    {"label in CSS, script and prose before the real block", 200,
     "<style>#SalesRank{margin:0} .x:before{content:\"Best Sellers Rank\"}</style><script>var "
     "labels = {\"rank\": \"Best Sellers Rank\", \"n\": 5};</script><p>Learn how Best Sellers "
     "Rank works.</p>" TITLE_SPAN "<li id=\"SalesRank\"><b>Amazon Best Sellers Rank:</b>\n\n\n"
     "#77 in Books (<a href=\"/x\">See Top 100 in Books</a>)</li>",
     0, OBS_OK, 77, "Books", 0, -1, NULL, "A Book", NULL},
    {"blank lines, comment and inline style between label and number", 200,
     TITLE_SPAN "<b>Best Sellers Rank:</b>"
                "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n                      \n\n\n\n\n\n\n\n\n\n"
                "<!-- rank --><style type=\"text/css\">\n.zg { margin: 0 }\n</style>\n\n\n"
                "#6,543 in Books",
     0, OBS_OK, 6543, "Books", 0, -1, NULL, "A Book", NULL},
    {"title entities, numeric references and padding", 200,
     "<span id=\"productTitle\" class=\"a-size-large\">\n\n     Caf&eacute; &amp;  Cr&#232;me"
     "&nbsp;&#x2013;\t Vol.&#160;2 &lt;3 &#39;x&#39; &quot;q&quot; &unknown; &#0;\n\n   "
     "</span><b>Best Sellers Rank:</b> #1 in Books",
     0, OBS_OK, 1, "Books", 0, -1, NULL,
     "Caf\xc3\xa9 & Cr\xc3\xa8me \xe2\x80\x93 Vol. 2 <3 'x' \"q\" &unknown; \xef\xbf\xbd", NULL},
    {"captcha at 200", 200,
     "<html><head><title dir=\"ltr\">Robot Check</title></head><body><h4>Enter the characters "
     "you see below</h4><form method=\"get\" action=\"/errors/validateCaptcha\"></form></body>"
     "</html>",
     0, OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"captcha with a rank-looking block is still blocked", 200,
     "<form action=\"/errors/validateCaptcha\"></form>" TITLE_SPAN
     "<b>Best Sellers Rank:</b> #1 in Books",
     0, OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"captcha at 503", 503,
     "<!-- To discuss automated access to Amazon data please contact "
     "api-services-support@amazon.com. --><p>Sorry, we just need to make sure you're not a "
     "robot.</p>",
     0, OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"503 without captcha", 503, "<html><body>Service Unavailable</body></html>", 0, OBS_ERROR, -1,
     NULL, 0, -1, NULL, NULL, "HTTP 503"},
    {"500 with a product page is still an error", 500, GEN_DETAIL_BULLETS, 0, OBS_ERROR, -1, NULL,
     0, -1, NULL, NULL, "HTTP 500"},
    {"403", 403, "<html>Forbidden</html>", 0, OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"429", 429, "", 0, OBS_BLOCKED, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"404", 404, GEN_DETAIL_BULLETS, 0, OBS_NOT_FOUND, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"not-found page at 200", 200,
     "<html><head><title>Amazon.com Page Not Found</title></head><body>Looking for something? "
     "We're sorry. The Web address you entered is not a functioning page on our site.</body>"
     "</html>",
     0, OBS_NOT_FOUND, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"German not-found page", 0,
     "<html><body>Suchen Sie bestimmte Informationen? Die eingegebene Webadresse ist keine "
     "funktionierende Seite auf unserer Website.</body></html>",
     0, OBS_NOT_FOUND, -1, NULL, 0, -1, NULL, NULL, NULL},
    {"product page without rank", 200,
     TITLE_SPAN "<ul><li><b>Publisher:</b> Nobody (2020)</li><li><b>Best Sellers Rank:</b> "
                "</li></ul>",
     0, OBS_NO_RANK, -1, NULL, 0, -1, NULL, "A Book", NULL},
    {"empty page", 200, "", 0, OBS_ERROR, -1, NULL, 0, -1, NULL, NULL, "not understood"},
    {"random HTML", 200, "<html><body><p>Hello, world. 42 in total.</p></body></html>", 0,
     OBS_ERROR, -1, NULL, 0, -1, NULL, NULL, "not understood"},
    {"invalid UTF-8 and NUL bytes", 200,
     "\xff\xfe\x00\x00<span id=\"productTitle\">Bad \xff title\x00 with \xc3 NUL</span>\x80\x00"
     "<b>Best Sellers Rank:</b> #42 in Bo\xffoks\x00 (x)",
     sizeof("\xff\xfe\x00\x00<span id=\"productTitle\">Bad \xff title\x00 with \xc3 NUL</span>"
            "\x80\x00<b>Best Sellers Rank:</b> #42 in Bo\xffoks\x00 (x)") -
         1,
     OBS_OK, 42, "Bo\xef\xbf\xbdoks", 0, -1, NULL, "Bad \xef\xbf\xbd title with \xef\xbf\xbd NUL",
     NULL},
    {"Latin-1 page: no-break space 0xA0 as separator", 200,
     TITLE_SPAN "<b>Classement des meilleures ventes d'Amazon:</b> n\xb0\xa0"
                "1\xa0"
                "234 en "
                "Livres",
     0, OBS_OK, 1234, "Livres", 0, -1, NULL, "A Book", NULL},
};

static void test_synthetic(void)
{
    scr_source *src = preset("amazon.com");
    for (size_t i = 0; i < sizeof synthetic / sizeof synthetic[0]; i++) {
        const struct synthetic_case *sc = &synthetic[i];
        observation o;
        obs_init(&o);
        size_t len = sc->len ? sc->len : strlen(sc->page);
        CHECK_INT(scr_extract(src, sc->http, sc->page, len, &o), 0, "scr_extract returns 0");
        check_observation(sc->name, &o, sc->status, sc->rank, sc->rank_category, sc->ncategories,
                          sc->first_rank, sc->first_category, sc->title);
        char what[300];
        if (sc->error_has) {
            snprintf(what, sizeof what, "%s: error mentions '%s'", sc->name, sc->error_has);
            CHECK(o.error && strstr(o.error, sc->error_has), what);
            if (o.error)
                printf("#   error: %s\n", o.error);
        }
        snprintf(what, sizeof what, "%s: output text is clean UTF-8", sc->name);
        int clean = (!o.title || clean_utf8(o.title)) &&
                    (!o.rank_category || clean_utf8(o.rank_category));
        for (size_t k = 0; k < o.ncategories; k++)
            clean = clean && clean_utf8(o.categories[k].category);
        CHECK(clean, what);
        obs_clear(&o);
    }
    scr_source_free(src);
}

/* ---- hostile input ---------------------------------------------------------------------- */

static void append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = (*len + n + 1) * 2;
        char *grown = realloc(*p, want);
        if (!grown)
            abort();
        *p = grown;
        *cap = want;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
}

static void test_hostile(void)
{
    scr_source *src = preset("amazon.com");
    observation o;
    obs_init(&o);

    /* 5000 decoy labels: bare, with endless digits, with unclosed style, then the real block. */
    char *page = NULL;
    size_t len = 0, cap = 0;
    static char digits[20000];
    memset(digits, '9', sizeof digits);
    for (int i = 0; i < 5000; i++) {
        const char *decoy = i % 3 == 0   ? "Best Sellers Rank Best Sellers Rank: "
                            : i % 3 == 1 ? "<b>Best Sellers Rank:</b> #"
                                         : "Bestseller-Rang <span><style>";
        append(&page, &len, &cap, decoy, strlen(decoy));
        if (i % 3 == 1)
            append(&page, &len, &cap, digits, i % 50 == 1 ? sizeof digits : 40);
    }
    append(&page, &len, &cap, "</style>", 8);
    const char *real = TITLE_SPAN "<b>Best Sellers Rank:</b> #314 in Books";
    append(&page, &len, &cap, real, strlen(real));
    double t0 = now_s();
    CHECK_INT(scr_extract(src, 200, page, len, &o), 0, "pathological labels: returns");
    double dt = now_s() - t0;
    printf("# pathological page: %zu bytes in %.1f ms\n", len, dt * 1e3);
    CHECK(dt < 5.0, "pathological labels: finishes in well under 5 s");
    CHECK(o.status == OBS_OK || o.status == OBS_NO_RANK, "pathological labels: a product page");
    CHECK_INT(o.rank, 314, "pathological labels: the real block after 5000 decoys is read");
    obs_clear(&o);
    free(page);

    /* Nested quantifier bait: long runs the rank and title rules could backtrack over. */
    page = NULL, len = 0, cap = 0;
    append(&page, &len, &cap, "<span id=\"productTitle\">", 24);
    for (int i = 0; i < 200000; i++)
        append(&page, &len, &cap, "1,", 2);
    append(&page, &len, &cap, "<b>Best Sellers Rank:</b> ", 26);
    for (int i = 0; i < 100000; i++)
        append(&page, &len, &cap, "1 ", 2);
    t0 = now_s();
    CHECK_INT(scr_extract(src, 200, page, len, &o), 0, "digit runs: returns");
    dt = now_s() - t0;
    printf("# digit runs: %zu bytes in %.1f ms\n", len, dt * 1e3);
    CHECK(dt < 5.0, "digit runs: finishes in well under 5 s");
    CHECK_INT(o.rank, -1, "digit runs: no rank from a number without a category");
    CHECK(o.title && strlen(o.title) <= 1000, "digit runs: title capped at 1000 bytes");
    obs_clear(&o);
    free(page);

    /* Decoys whose tags never close (an attribute quote left open): each must not rescan the
     * rest of the page; the work per page is budgeted. */
    page = NULL, len = 0, cap = 0;
    while (len < 2u * 1024 * 1024)
        append(&page, &len, &cap, "Best Sellers Rank: <a x='", 25);
    t0 = now_s();
    CHECK_INT(scr_extract(src, 200, page, len, &o), 0, "unclosed tags: returns");
    dt = now_s() - t0;
    printf("# unclosed tags: %zu bytes in %.1f ms\n", len, dt * 1e3);
    CHECK(dt < 5.0, "unclosed tags: finishes in well under 5 s");
    CHECK_STR(obs_status_name(o.status), "error", "unclosed tags: not understood");
    obs_clear(&o);
    free(page);

    /* Page at the size limit with the block at its very end: no match limit trips. */
    len = SCR_MAX_PAGE;
    page = malloc(len + 1);
    if (page) {
        memset(page, 'x', len);
        const char *tail = TITLE_SPAN "<b>Best Sellers Rank:</b> #2,718 in Books";
        memcpy(page + len - strlen(tail), tail, strlen(tail));
        scr_extract(src, 200, page, len, &o);
        CHECK_INT(o.rank, 2718, "8 MiB page: rank at the very end is read");
        obs_clear(&o);
        scr_extract(src, 200, page, len + 1, &o);
        CHECK_STR(obs_status_name(o.status), "error", "page over SCR_MAX_PAGE: error");
        CHECK(o.error && strstr(o.error, "too large"), "page over SCR_MAX_PAGE: says too large");
        obs_clear(&o);
        free(page);
    }

    /* Long titles are capped on a character boundary. */
    page = NULL, len = 0, cap = 0;
    append(&page, &len, &cap, "<span id=\"productTitle\">", 24);
    for (int i = 0; i < 3000; i++)
        append(&page, &len, &cap, "\xc3\xa9", 2);
    append(&page, &len, &cap, "</span>", 7);
    scr_extract(src, 200, page, len, &o);
    CHECK_STR(obs_status_name(o.status), "no_rank", "long title: no_rank");
    CHECK(o.title && strlen(o.title) <= 1000 && strlen(o.title) >= 990,
          "long title: capped near 1000 bytes");
    CHECK(o.title && clean_utf8(o.title), "long title: cut on a character boundary");
    obs_clear(&o);
    free(page);

    /* Reusing an observation does not leak or keep stale categories. */
    scr_extract(src, 200, GEN_SALESRANK_LI, strlen(GEN_SALESRANK_LI), &o);
    scr_extract(src, 200, "", 0, &o);
    CHECK_INT(o.ncategories, 0, "reused observation: categories reset");
    CHECK(o.title == NULL && o.rank == -1, "reused observation: rank and title reset");
    obs_clear(&o);
    scr_extract(src, 200, NULL, 0, &o);
    CHECK_STR(obs_status_name(o.status), "error", "NULL page: error");
    obs_clear(&o);
    scr_source_free(src);
}

/* ---- sources and URLs ------------------------------------------------------------------- */

static void test_sources(void)
{
    isbn k_and_r_isbn, modern_isbn;
    CHECK_INT(isbn_parse("0131103628", 10, &k_and_r_isbn), ISBN_OK, "parse 978 ISBN");
    CHECK_INT(isbn_parse("9791090636071", 13, &modern_isbn), ISBN_OK, "parse 979 ISBN");
    scr_book k_and_r, modern;
    scr_book_from_isbn(&k_and_r_isbn, &k_and_r);
    scr_book_from_isbn(&modern_isbn, &modern);
    CHECK(strcmp(k_and_r.id, "9780131103627") == 0 &&
              strcmp(k_and_r.isbn13, "9780131103627") == 0 &&
              strcmp(k_and_r.isbn10, "0131103628") == 0 && strcmp(k_and_r.asin, "0131103628") == 0,
          "a book from its ISBN: id is the ISBN-13, its ASIN the ISBN-10");
    CHECK(strcmp(modern.id, "9791090636071") == 0 && modern.isbn10[0] == '\0' &&
              modern.asin[0] == '\0',
          "a 979 book from its ISBN: no ISBN-10, no ASIN");
    /* An ASIN-only book (a Kindle edition, a product without ISBN). */
    scr_book kindle = {.id = "B01LW7X0JJ", .asin = "B01LW7X0JJ"};

    size_t count = 0;
    for (size_t i = 0; scr_preset_names[i]; i++) {
        count++;
        scr_source *src = preset(scr_preset_names[i]);
        char what[200], want[200];
        snprintf(what, sizeof what, "preset %s builds", scr_preset_names[i]);
        if (!CHECK(src != NULL, what))
            continue;
        CHECK_STR(scr_source_name(src), scr_preset_names[i], "preset keeps its name");
        char *url = scr_source_url(src, &k_and_r);
        snprintf(want, sizeof want, "https://www.%s/dp/0131103628", scr_preset_names[i]);
        snprintf(what, sizeof what, "preset %s default URL", scr_preset_names[i]);
        CHECK_STR(url, want, what);
        free(url);
        snprintf(want, sizeof want, "https://www.%s/dp/{asin}", scr_preset_names[i]);
        snprintf(what, sizeof what, "preset %s template uses the ASIN", scr_preset_names[i]);
        CHECK_STR(scr_source_template(src), want, what);
        snprintf(what, sizeof what, "preset %s: no URL for a 979 book", scr_preset_names[i]);
        url = scr_source_url(src, &modern);
        CHECK(url == NULL, what);
        free(url);
        snprintf(what, sizeof what, "preset %s cannot address a 979 book without an ASIN",
                 scr_preset_names[i]);
        CHECK(!scr_source_can_address(src, &modern), what);
        url = scr_source_url(src, &kindle);
        snprintf(want, sizeof want, "https://www.%s/dp/B01LW7X0JJ", scr_preset_names[i]);
        snprintf(what, sizeof what, "preset %s URL of an ASIN-only book", scr_preset_names[i]);
        CHECK_STR(url, want, what);
        free(url);
        scr_source_free(src);
    }
    CHECK_INT(count, 21, "21 presets");

    char *err = NULL;
    scr_source *src = scr_source_new_preset("amazon.com", "http://127.0.0.1:8123/dp/{isbn10}",
                                            &err);
    CHECK(src && !err, "preset at a loopback URL");
    char *url = scr_source_url(src, &k_and_r);
    CHECK_STR(url, "http://127.0.0.1:8123/dp/0131103628", "override template used");
    CHECK_STR(scr_source_template(src), "http://127.0.0.1:8123/dp/{isbn10}", "template kept");
    free(url);
    scr_source_free(src);

    src = scr_source_new_preset("amazon.de", "https://example.test/{isbn13}/x?i={isbn10}", &err);
    url = scr_source_url(src, &k_and_r);
    CHECK_STR(url, "https://example.test/9780131103627/x?i=0131103628", "both placeholders");
    free(url);
    scr_source_free(src);
    src = scr_source_new_preset("amazon.fr", "https://example.test/isbn/{isbn13}", &err);
    url = scr_source_url(src, &modern);
    CHECK_STR(url, "https://example.test/isbn/9791090636071", "979 book with {isbn13}");
    free(url);
    CHECK(scr_source_url(src, NULL) == NULL, "no book, no URL");
    CHECK(!scr_source_can_address(src, &kindle), "{isbn13} cannot address an ASIN-only book");
    url = scr_source_url(src, &kindle);
    CHECK(url == NULL, "so there is no URL for it");
    free(url);
    scr_source_free(src);

    src = scr_source_new_preset("amazon.co.uk", "https://example.test/item/{id}?a={asin}", &err);
    CHECK(src != NULL, "a template with {id} and {asin}");
    url = scr_source_url(src, &k_and_r);
    CHECK_STR(url, "https://example.test/item/9780131103627?a=0131103628",
              "{id} is the ISBN-13, {asin} the ISBN-10 of a print book");
    free(url);
    url = scr_source_url(src, &kindle);
    CHECK_STR(url, "https://example.test/item/B01LW7X0JJ?a=B01LW7X0JJ",
              "{id} and {asin} of an ASIN-only book");
    free(url);
    scr_book modern_with_asin = modern;
    memcpy(modern_with_asin.asin, "B00TEST979", 11);
    CHECK(scr_source_can_address(src, &modern_with_asin),
          "a 979 book with an attached ASIN can be addressed");
    url = scr_source_url(src, &modern_with_asin);
    CHECK_STR(url, "https://example.test/item/9791090636071?a=B00TEST979",
              "its URL uses the attached ASIN");
    free(url);
    scr_source_free(src);

    static const struct {
        const char *tpl, *why;
    } bad[] = {
        {"ftp://example.test/{isbn10}", "http"},
        {"example.test/{isbn10}", "http"},
        {"https://example.test/dp/", "{asin}, {id}, {isbn10} or {isbn13}"},
        {"https:///{isbn10}", "host"},
        {"https://example.test/{ean}", "placeholder"},
        {"https://example.test/{ASIN}", "placeholder"},
        {"https://example.test/{isbn10", "placeholder"},
        {"https://example.test/}{isbn10}", "'}'"},
        {"https://exa mple.test/{isbn10}", "space"},
        {"https://example.test/\n{isbn10}", "control"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        src = scr_source_new_preset("amazon.com", bad[i].tpl, &err);
        char what[200];
        snprintf(what, sizeof what, "bad template '%s' refused (%s)", bad[i].tpl, bad[i].why);
        CHECK(!src && err && strstr(err, bad[i].why), what);
        if (err && !strstr(err, bad[i].why))
            printf("#   message: %s\n", err);
        free(err);
        scr_source_free(src);
    }
    err = NULL;
    src = scr_source_new_preset("amazon.nowhere", NULL, &err);
    CHECK(!src && err && strstr(err, "amazon.nowhere"), "unknown preset refused by name");
    free(err);
    src = scr_source_new_preset(NULL, NULL, NULL);
    CHECK(!src, "NULL preset name refused (no err pointer is fine)");
    scr_source_free(NULL);
}

static void test_custom(void)
{
    scr_rules rules = {
        .name = "tiny-shop",
        .url_template = "http://127.0.0.1:9/book/{isbn13}",
        .block_start = "Sales rank",
        .rank = "(\\d+) among (\\w+)",
        .title = "<h1>([^<]*)</h1>",
        .blocked = "Go away, robot",
        .not_found = "No such book",
    };
    char *err = NULL;
    scr_source *src = scr_source_new_custom(&rules, &err);
    CHECK(src && !err, "custom source builds");
    if (err)
        printf("#   %s\n", err);
    free(err);
    observation o;
    obs_init(&o);
    const char *page = "<h1> Tiny &amp; Co </h1><p>Sales rank: <b>17 among Novels</b>; 3 among "
                       "Poems</p>";
    scr_extract(src, 200, page, strlen(page), &o);
    check_observation("custom rules", &o, OBS_OK, 17, "Novels", 1, 3, "Poems", "Tiny & Co");
    obs_clear(&o);
    page = "<p>Go away, robot</p><h1>Tiny</h1>";
    scr_extract(src, 200, page, strlen(page), &o);
    CHECK_STR(obs_status_name(o.status), "blocked", "custom blocked rule");
    obs_clear(&o);
    page = "<p>No such book</p>";
    scr_extract(src, 200, page, strlen(page), &o);
    CHECK_STR(obs_status_name(o.status), "not_found", "custom not_found rule");
    obs_clear(&o);
    /* The built-in captcha markers are replaced, not added to. */
    page = "<form action=\"/errors/validateCaptcha\"></form><h1>Tiny</h1>";
    scr_extract(src, 200, page, strlen(page), &o);
    CHECK_STR(obs_status_name(o.status), "no_rank", "custom blocked rule replaces the preset's");
    obs_clear(&o);
    isbn b_isbn;
    isbn_parse("9791090636071", 13, &b_isbn);
    scr_book b;
    scr_book_from_isbn(&b_isbn, &b);
    char *url = scr_source_url(src, &b);
    CHECK_STR(url, "http://127.0.0.1:9/book/9791090636071", "custom URL");
    free(url);
    scr_source_free(src);

    /* The example of README "Custom sources". */
    scr_rules readme = {
        .name = "mystore",
        .url_template = "https://books.example/item/{isbn13}",
        .base = "amazon.com",
        .block_start = "Sales rank:",
        .rank = "#?([0-9][0-9,.]*) in ([^<(]+)",
        .title = "<h1[^>]*>([^<]+)</h1>",
        .blocked = "captcha",
        .not_found = "no such item",
    };
    src = scr_source_new_custom(&readme, &err);
    page = "<h1 class=\"t\">Mystore Book</h1><div>Sales rank:\n <b>#1,234 in Books</b> (top "
           "100)<br>#5 in Poetry</div>";
    if (CHECK(src != NULL, "README custom source example builds")) {
        scr_extract(src, 200, page, strlen(page), &o);
        check_observation("README example", &o, OBS_OK, 1234, "Books", 1, 5, "Poetry",
                          "Mystore Book");
        obs_clear(&o);
    }
    scr_source_free(src);

    /* Only the URL given: every rule comes from the base preset. */
    scr_rules minimal = {.name = "mirror",
                         .url_template = "https://mirror.test/dp/{isbn10}",
                         .base = "amazon.de"};
    src = scr_source_new_custom(&minimal, &err);
    size_t len = 0;
    char *fixture = read_fixture("amazon_de_book_0131103628_2019_salesrank_li.html", &len);
    if (CHECK(src && fixture, "custom source from base preset builds")) {
        scr_extract(src, 200, fixture, len, &o);
        CHECK_INT(o.rank, 13222, "base preset rules read the German page");
        obs_clear(&o);
    }
    free(fixture);
    scr_source_free(src);

    static const struct {
        scr_rules rules;
        const char *why;
    } bad[] = {
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .rank = "(\\d+"}, "rank"},
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .rank = "(\\d+) in \\w+"},
         "2 capture groups"},
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .title = "<h1>"}, "title"},
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .blocked = "[z-a]"}, "blocked"},
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .block_start = "(*UTF)x"},
         "block_start"},
        {{.name = "x", .url_template = "https://x.test/{isbn10}", .base = "ebay.com"}, "ebay.com"},
        {{.name = "x", .url_template = "gopher://x.test/{isbn10}"}, "http"},
        {{.name = "", .url_template = "https://x.test/{isbn10}"}, "name"},
        {{.name = "two words", .url_template = "https://x.test/{isbn10}"}, "name"},
        {{.name = "x", .url_template = NULL}, "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        src = scr_source_new_custom(&bad[i].rules, &err);
        char what[200];
        snprintf(what, sizeof what, "bad custom rules refused, message mentions '%s'", bad[i].why);
        CHECK(!src && err && strstr(err, bad[i].why), what);
        if (err && !strstr(err, bad[i].why))
            printf("#   message: %s\n", err);
        free(err);
        scr_source_free(src);
    }
    CHECK(scr_source_new_custom(NULL, NULL) == NULL, "NULL rules refused");
}

/* ---- threads ---------------------------------------------------------------------------- */

typedef struct thread_job {
    const scr_source *src;
    const char *page;
    size_t len;
    int good;
} thread_job;

static void *extract_many(void *arg)
{
    thread_job *job = arg;
    for (int i = 0; i < 20; i++) {
        observation o;
        obs_init(&o);
        scr_extract(job->src, 200, job->page, job->len, &o);
        if (o.status == OBS_OK && o.rank == 5838 && o.ncategories == 3)
            job->good++;
        obs_clear(&o);
    }
    return NULL;
}

static void test_threads(void)
{
    size_t len = 0;
    char *page = read_fixture("amazon_com_book_0131103628_2019_salesrank_li.html", &len);
    scr_source *src = preset("amazon.com");
    if (!CHECK(page && src, "threads: fixture and source")) {
        free(page);
        scr_source_free(src);
        return;
    }
    thread_job jobs[4];
    pthread_t tids[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){.src = src, .page = page, .len = len};
        pthread_create(&tids[t], NULL, extract_many, &jobs[t]);
    }
    int good = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join(tids[t], NULL);
        good += jobs[t].good;
    }
    CHECK_INT(good, 80, "one source shared by 4 threads reads every page right");
    scr_source_free(src);
    free(page);
}

/* The preset table (scraper/presets.def): the same six storefronts, in this order, and the
 * message for an unknown name lists them all. */
static void test_preset_table(void)
{
    static const char *const want[] = {"amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr",
                                       "amazon.ca",  "amazon.com.au"}; /* first six */
    size_t n = 0;
    while (scr_preset_names[n])
        n++;
    CHECK_INT(n, 21, "preset table: 21 presets");
    for (size_t i = 0; i < n && i < 6; i++)
        CHECK_STR(scr_preset_names[i], want[i], "preset table: name and order");
    char *err = NULL;
    scr_source *src = scr_source_new_preset("amazon.example", NULL, &err);
    CHECK(src == NULL, "preset table: unknown name refused");
    CHECK(err &&
              strstr(err,
                     "unknown source preset 'amazon.example' (known: amazon.com, amazon.co.uk, "
                     "amazon.de, amazon.fr, amazon.ca, amazon.com.au, amazon.es,") &&
              strstr(err, "amazon.eg)"),
          "preset table: the message lists every preset");
    free(err);
}

/* The scraper's error codes: SCR_OK is 0 (callers test != 0), each has a description. */
static void test_errors(void)
{
    CHECK_INT(SCR_OK, 0, "SCR_OK is 0");
    CHECK_STR(scr_strerror(SCR_OK), "ok", "scr_strerror(SCR_OK)");
    CHECK_STR(scr_strerror(SCR_NOMEM), "out of memory", "scr_strerror(SCR_NOMEM)");
    CHECK_STR(scr_strerror(SCR_INVALID), "invalid argument", "scr_strerror(SCR_INVALID)");
    CHECK_STR(scr_strerror((scr_err)99), "unknown error", "scr_strerror of an unknown code");
    scr_source *src = preset("amazon.com");
    CHECK_INT(scr_extract(src, 200, "x", 1, NULL), SCR_INVALID, "scr_extract without out");
    observation o;
    obs_init(&o);
    CHECK_INT(scr_extract(NULL, 200, "x", 1, &o), SCR_OK,
              "scr_extract without source: a call "
              "that worked");
    CHECK(o.status == OBS_ERROR && o.error && strstr(o.error, "no source"),
          "scr_extract without source: an error observation");
    obs_clear(&o);
    scr_source_free(src);
}

int main(void)
{
    test_fixtures();
    test_synthetic();
    test_hostile();
    test_sources();
    test_custom();
    test_threads();
    test_preset_table();
    test_errors();
    return check_done();
}
