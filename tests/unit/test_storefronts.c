/*
 * test_storefronts.c - every built-in storefront reads its pages, in its own language and in the
 * other interface languages stores serve, and hostile or current markup is read right: decoys
 * in comments, scripts, styles and attributes; captcha mentions on real product pages; ranks
 * that overflow; free lists; Arabic-Indic digits; formats.
 *
 * Two kinds of page: the real captures in tests/fixtures (REAL, listed with their preset), and
 * faithful synthetic pages (SYNTHETIC) built from the 2024 detail-bullets markup of the real
 * pages with the store's documented label, number format and category words, for storefronts no
 * public test suite has a capture of (tests/fixtures/README.md says which).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../scraper/scraper.h"
#include "../lib/check.h"

/* ---- synthetic pages ------------------------------------------------------------------------- */

typedef struct store_case {
    const char *preset;
    const char *what;       /* the store and interface language */
    const char *label;      /* the block's label, as the store writes it */
    const char *entry;      /* the overall rank's text */
    const char *sub_prefix; /* the text before a category rank's link */
    const char *sub_category;
    const char *format_word; /* in the subtitle line */
    int64_t rank;
    const char *category;
    int64_t sub_rank;
    obs_format format;
} store_case;

static const store_case stores[] = {
    {"amazon.com", "US, English", "Best Sellers Rank:", "#1,234 in Books", "#5 in ", "Mystery",
     "Paperback", 1234, "Books", 5, OBS_FORMAT_PAPERBACK},
    {"amazon.com", "US, Kindle", "Best Sellers Rank:", "#56,789 in Kindle Store", "#12 in ",
     "Cozy Mystery", "Kindle Edition", 56789, "Kindle Store", 12, OBS_FORMAT_KINDLE},
    {"amazon.com", "US, Audible", "Best Sellers Rank:", "#159,450 in Audible Books &amp; Originals",
     "#300 in ", "Thrillers", "Audible Audiobook", 159450, "Audible Books & Originals", 300,
     OBS_FORMAT_AUDIOBOOK},
    {"amazon.co.uk", "UK, no #", "Best Sellers Rank:", "929,084 in Books", "4,687 in ",
     "Vegetarian &amp; Vegan Cooking", "Hardcover", 929084, "Books", 4687, OBS_FORMAT_HARDCOVER},
    {"amazon.de", "Germany, Nr. with a comma", "Amazon Bestseller-Rang:",
     "Nr. 1,184 in B\xc3\xbc"
     "cher",
     "Nr. 3 in ", "Krimis", "Taschenbuch", 1184,
     "B\xc3\xbc"
     "cher",
     3, OBS_FORMAT_PAPERBACK},
    {"amazon.de", "Germany, Nr. with a dot", "Amazon Bestseller-Rang:",
     "Nr. 118.877 in B\xc3\xbc"
     "cher",
     "Nr. 4.326 in ", "Thriller", "Gebundene Ausgabe", 118877,
     "B\xc3\xbc"
     "cher",
     4326, OBS_FORMAT_HARDCOVER},
    {"amazon.fr", "France, narrow no-break space", "Classement des meilleures ventes d'Amazon :",
     "1\xe2\x80\xaf"
     "234 en Livres",
     "n\xc2\xb0 20 en ", "Romans policiers", "Broch\xc3\xa9", 1234, "Livres", 20,
     OBS_FORMAT_PAPERBACK},
    {"amazon.fr", "France, n\xc2\xb0 and no-break space",
     "Classement des meilleures ventes d'Amazon :", "n\xc2\xb0 12&nbsp;345 en Livres",
     "n\xc2\xb0 7 en ", "Thrillers", "Reli\xc3\xa9", 12345, "Livres", 7, OBS_FORMAT_HARDCOVER},
    {"amazon.es", "Spain",
     "Clasificaci\xc3\xb3n en los m\xc3\xa1s vendidos de Amazon:", "n\xc2\xba 32.764 en Libros",
     "n\xc2\xba"
     "2 en ",
     "Thrillers legales", "Tapa blanda", 32764, "Libros", 2, OBS_FORMAT_PAPERBACK},
    {"amazon.es", "Spain, page in Portuguese",
     "Ranking dos mais vendidos:", "N\xc2\xba 1.974 em Livros", "N\xc2\xba 2 em ", "Thrillers",
     "Capa dura", 1974, "Livros", 2, OBS_FORMAT_HARDCOVER},
    {"amazon.it", "Italy", "Posizione nella classifica Bestseller di Amazon:", "n. 1.858 in Libri",
     "n. 12 in ", "Gialli", "Copertina flessibile", 1858, "Libri", 12, OBS_FORMAT_PAPERBACK},
    {"amazon.nl", "Netherlands", "Plaats in bestsellerlijst:", "#237.463 in Boeken", "#566 in ",
     "Thrillers", "Paperback", 237463, "Boeken", 566, OBS_FORMAT_PAPERBACK},
    {"amazon.co.jp", "Japan, Japanese",
     "Amazon \xe5\xa3\xb2\xe3\x82\x8c\xe7\xad\x8b\xe3\x83\xa9\xe3\x83\xb3\xe3\x82\xad\xe3\x83\xb3\xe3\x82\xb0:",
     "- 968,928\xe4\xbd\x8d\xe6\x9c\xac", "- 8,610\xe4\xbd\x8d",
     "SF\xe3\x83\xbb\xe3\x83\x9b\xe3\x83\xa9\xe3\x83\xbc", "\xe5\x8d\x98\xe8\xa1\x8c\xe6\x9c\xac",
     968928, "\xe6\x9c\xac", 8610, OBS_FORMAT_HARDCOVER},
    {"amazon.co.jp", "Japan, page in Chinese",
     "\xe4\xba\x9a\xe9\xa9\xac\xe9\x80\x8a\xe7\x83\xad\xe9\x94\x80\xe5\x95\x86\xe5\x93\x81\xe6\x8e\x92\xe8\xa1\x8c\xe6\xa6\x9c:",
     "\xe5\x95\x86\xe5\x93\x81\xe9\x87\x8c\xe6\x8e\x92\xe7\xac\xac"
     "968,928\xe5\x90\x8d\xe6\x97\xa5\xe6\x9c\xac\xe5\x9b\xbe\xe4\xb9\xa6",
     "\xe5\x95\x86\xe5\x93\x81\xe9\x87\x8c\xe6\x8e\x92\xe7\xac\xac"
     "8,610\xe5\x90\x8d",
     "\xe7\xa7\x91\xe5\xb9\xbb\xe5\xb0\x8f\xe8\xaf\xb4",
     "\xe5\x8d\x95\xe8\xa1\x8c\xe6\x9c\xac-\xe7\xb2\xbe\xe8\xa3\x85", 968928,
     "\xe6\x97\xa5\xe6\x9c\xac\xe5\x9b\xbe\xe4\xb9\xa6", 8610, OBS_FORMAT_HARDCOVER},
    {"amazon.co.jp", "Japan, page in English", "Best Sellers Rank:", "#968,928 in Japanese Books",
     "#8,610 in ", "Science Fiction", "Tankobon Hardcover", 968928, "Japanese Books", 8610,
     OBS_FORMAT_HARDCOVER},
    {"amazon.in", "India", "Best Sellers Rank:", "#12,345 in Books", "#67 in ", "Indian Writing",
     "Paperback", 12345, "Books", 67, OBS_FORMAT_PAPERBACK},
    {"amazon.ca", "Canada, French", "Classement des meilleures ventes d'Amazon :",
     "23\xc2\xa0"
     "906 en Livres",
     "2 en ", "Langages", "Broch\xc3\xa9", 23906, "Livres", 2, OBS_FORMAT_PAPERBACK},
    {"amazon.com.br", "Brazil", "Ranking dos mais vendidos:", "N\xc2\xba 1.460 em Livros",
     "N\xc2\xba 3 em ", "Fic\xc3\xa7\xc3\xa3o", "Capa comum", 1460, "Livros", 3,
     OBS_FORMAT_PAPERBACK},
    {"amazon.com.mx", "Mexico",
     "Clasificaci\xc3\xb3n en los m\xc3\xa1s vendidos de Amazon:", "n\xc2\xba 86 en Libros",
     "n\xc2\xba 2 en ", "Novela negra", "Pasta blanda", 86, "Libros", 2, OBS_FORMAT_PAPERBACK},
    {"amazon.com.au", "Australia", "Best Sellers Rank:", "12,345 in Books", "7 in ",
     "Crime Fiction", "Paperback", 12345, "Books", 7, OBS_FORMAT_PAPERBACK},
    {"amazon.se", "Sweden", "Rangordning f\xc3\xb6r b\xc3\xa4sts\xc3\xa4ljare:",
     "nr 1\xc2\xa0"
     "234 i B\xc3\xb6"
     "cker",
     "nr 5 i ", "Deckare",
     "H\xc3\xa4"
     "ftad",
     1234,
     "B\xc3\xb6"
     "cker",
     5, OBS_FORMAT_PAPERBACK},
    {"amazon.pl", "Poland",
     "Ranking najlepiej sprzedaj\xc4\x85"
     "cych si\xc4\x99 produkt\xc3\xb3w:",
     "Pozycja 105 136 w kategorii Ksi\xc4\x85\xc5\xbcki", "Pozycja 216 w kategorii ",
     "Krymina\xc5\x82", "Mi\xc4\x99kka oprawa", 105136, "Ksi\xc4\x85\xc5\xbcki", 216,
     OBS_FORMAT_PAPERBACK},
    {"amazon.com.be", "Belgium, Dutch", "Plaats in bestsellerlijst:", "#14.177 in Boeken",
     "#96 in ", "Romans", "Paperback", 14177, "Boeken", 96, OBS_FORMAT_PAPERBACK},
    {"amazon.com.be", "Belgium, French", "Classement des meilleures ventes d'Amazon :",
     "14\xc2\xa0"
     "177 en Livres",
     "96 en ", "Romans", "Broch\xc3\xa9", 14177, "Livres", 96, OBS_FORMAT_PAPERBACK},
    {"amazon.ae", "UAE, English", "Best Sellers Rank:", "#1,234 in Books", "#5 in ", "Fiction",
     "Paperback", 1234, "Books", 5, OBS_FORMAT_PAPERBACK},
    {"amazon.ae", "UAE, Arabic",
     "\xd8\xaa\xd8\xb5\xd9\x86\xd9\x8a\xd9\x81 \xd8\xa7\xd9\x84\xd8\xa3\xd9\x81\xd8\xb6\xd9\x84 \xd9\x85\xd8\xa8\xd9\x8a\xd8\xb9\xd8\xa7\xd9\x8b:",
     "#249,463 \xd9\x81\xd9\x8a \xd8\xa7\xd9\x84\xd9\x83\xd8\xaa\xd8\xa8", "#12 \xd9\x81\xd9\x8a ",
     "\xd8\xb1\xd9\x88\xd8\xa7\xd9\x8a\xd8\xa7\xd8\xaa",
     "\xd8\xba\xd9\x84\xd8\xa7\xd9\x81 \xd9\x88\xd8\xb1\xd9\x82\xd9\x8a", 249463,
     "\xd8\xa7\xd9\x84\xd9\x83\xd8\xaa\xd8\xa8", 12, OBS_FORMAT_PAPERBACK},
    {"amazon.sa", "Saudi Arabia, Arabic-Indic digits",
     "\xd8\xaa\xd8\xb5\xd9\x86\xd9\x8a\xd9\x81 \xd8\xa7\xd9\x84\xd8\xa3\xd9\x81\xd8\xb6\xd9\x84 \xd9\x85\xd8\xa8\xd9\x8a\xd8\xb9\xd8\xa7\xd9\x8b",
     "#\xd9\xa1\xd9\xac\xd9\xa4\xd9\xa3\xd9\xa1 \xd9\x81\xd9\x8a Videogames",
     "#\xd9\xa4\xd9\xa1 \xd9\x81\xd9\x8a ", "Nintendo Switch Cases &amp; Storage", "Paperback",
     1431, "Videogames", 41, OBS_FORMAT_PAPERBACK},
    {"amazon.sg", "Singapore", "Best Sellers Rank:", "#1,234 in Books", "#9 in ", "Fiction",
     "Hardcover", 1234, "Books", 9, OBS_FORMAT_HARDCOVER},
    {"amazon.eg", "Egypt, Arabic",
     "\xd8\xaa\xd8\xb5\xd9\x86\xd9\x8a\xd9\x81 \xd8\xa7\xd9\x84\xd8\xa3\xd9\x81\xd8\xb6\xd9\x84 \xd9\x85\xd8\xa8\xd9\x8a\xd8\xb9\xd8\xa7\xd9\x8b:",
     "#3,210 \xd9\x81\xd9\x8a \xd8\xa7\xd9\x84\xd9\x83\xd8\xaa\xd8\xa8", "#8 \xd9\x81\xd9\x8a ",
     "\xd8\xb1\xd9\x88\xd8\xa7\xd9\x8a\xd8\xa7\xd8\xaa", "Paperback", 3210,
     "\xd8\xa7\xd9\x84\xd9\x83\xd8\xaa\xd8\xa8", 8, OBS_FORMAT_PAPERBACK},
};

/* A 2024-style product page around a rank block: title, subtitle with the format, detail
 * bullets with the label and the ranks (&rlm; &lrm; around the colon, as the real pages have). */
static char *synthetic_page(const store_case *s, const char *before_block)
{
    buf b;
    buf_init(&b, 1 << 20);
    int rc = buf_printf(
        &b,
        "<!doctype html><html><head><title>Amazon</title></head><body>\n"
        "<div id=\"nav\"><a href=\"/gp/bestsellers/?ref_=nav_cs_bestsellers\">Best Sellers</a></div>\n"
        "%s\n<h1 id=\"title\"><span id=\"productTitle\" class=\"a-size-extra-large\"> A Synthetic Book "
        "</span>\n<span id=\"productSubtitle\" class=\"a-size-large a-color-secondary\"> %s \xe2\x80\x93 "
        "7 April 2016 </span></h1>\n"
        "<div id=\"detailBulletsWrapper_feature_div\"><ul class=\"a-unordered-list a-nostyle a-vertical "
        "a-spacing-none detail-bullet-list\">\n<li><span class=\"a-list-item\"><span class=\"a-text-bold\">"
        "%s\n&rlm;\n:\n&lrm;\n</span> %s (<a href='/gp/bestsellers/books/ref=pd_zg_ts_books'>Top 100</a>)"
        "\n<ul class=\"a-unordered-list a-nostyle a-vertical zg_hrsr\"><li><span class=\"a-list-item\"> %s"
        "<a href='/gp/bestsellers/books/123/ref=pd_zg_hrsr_books'>%s</a></span></li></ul></span></li>"
        "\n</ul></div></body></html>\n",
        before_block ? before_block : "", s->format_word, s->label, s->entry, s->sub_prefix,
        s->sub_category);
    if (rc != BUF_OK)
        abort();
    return buf_steal(&b, NULL);
}

static void check_read(const char *what, const char *preset, const char *page, size_t len,
                       obs_status status, int64_t rank, const char *category, int64_t sub_rank,
                       obs_format format)
{
    char *err = NULL, name[300];
    scr_source *src = scr_source_new_preset(preset, NULL, &err);
    snprintf(name, sizeof name, "%s: the %s preset builds", what, preset);
    if (!CHECK(src != NULL, name)) {
        free(err);
        return;
    }
    observation o;
    obs_init(&o);
    CHECK(scr_extract(src, 200, page, len, &o) == SCR_OK, "scr_extract returns SCR_OK");
    snprintf(name, sizeof name, "%s: status", what);
    CHECK_STR(obs_status_name(o.status), obs_status_name(status), name);
    if (status == OBS_OK) {
        snprintf(name, sizeof name, "%s: overall rank", what);
        CHECK_INT(o.rank, rank, name);
        snprintf(name, sizeof name, "%s: its top-level category", what);
        CHECK_STR(o.rank_category, category, name);
        snprintf(name, sizeof name, "%s: first category rank", what);
        CHECK_INT(o.ncategories ? o.categories[0].rank : -1, sub_rank, name);
        snprintf(name, sizeof name, "%s: format", what);
        CHECK_STR(obs_format_name(o.format) ? obs_format_name(o.format) : "unknown",
                  obs_format_name(format) ? obs_format_name(format) : "unknown", name);
    }
    if (o.status == OBS_ERROR)
        printf("#   error: %s\n", o.error ? o.error : "(none)");
    obs_clear(&o);
    scr_source_free(src);
}

static void test_synthetic(void)
{
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        const store_case *s = &stores[i];
        char *page = synthetic_page(s, NULL);
        char what[200];
        snprintf(what, sizeof what, "SYNTHETIC %s (%s)", s->preset, s->what);
        check_read(what, s->preset, page, strlen(page), OBS_OK, s->rank, s->category, s->sub_rank,
                   s->format);
        free(page);
    }
    /* Every preset reads every language: a store's page in another store's language. */
    char *page = synthetic_page(&stores[13], NULL); /* the Chinese amazon.co.jp page */
    check_read("the Chinese page through amazon.com", "amazon.com", page, strlen(page), OBS_OK,
               968928, "\xe6\x97\xa5\xe6\x9c\xac\xe5\x9b\xbe\xe4\xb9\xa6", 8610,
               OBS_FORMAT_HARDCOVER);
    free(page);
}

/* ---- real pages --------------------------------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b;
    buf_init(&b, 16u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) != BUF_OK)
            break;
    fclose(f);
    *len = b.len;
    return buf_steal(&b, NULL);
}

static const struct {
    const char *file, *preset;
    int64_t rank;
    const char *category;
    int64_t sub_rank;
    obs_format format;
} real_pages[] = {
    {"amazon_com_book_0131103628_2019_salesrank_li.html", "amazon.com", 5838, "Books", 2,
     OBS_FORMAT_PAPERBACK},
    {"amazon_ca_book_0131103628_2019_salesrank_li.html", "amazon.ca", 23906, "Books", 2,
     OBS_FORMAT_PAPERBACK},
    {"amazon_co_uk_book_1849757097_2024_detailbullets.html", "amazon.co.uk", 929084, "Books", 4687,
     OBS_FORMAT_HARDCOVER},
    {"amazon_de_book_0131103628_2019_salesrank_li.html", "amazon.de", 13222,
     "B\xc3\xbc"
     "cher",
     3, OBS_FORMAT_PAPERBACK},
    {"amazon_fr_book_2266309846_2022_detailbullets.html", "amazon.fr", 11406, "Livres", 20,
     OBS_FORMAT_PAPERBACK},
    {"amazon_es_book_840827578X_2023_detailbullets.html", "amazon.es", 1974, "Libros", 2,
     OBS_FORMAT_HARDCOVER},
    {"amazon_co_jp_book_4198643822_2024_detailbullets.html", "amazon.co.jp", 968928, "\xe6\x9c\xac",
     8610, OBS_FORMAT_HARDCOVER},
    {"amazon_com_nonbook_B01LW7X0JJ_2019_prodDetails_table.html", "amazon.com", 25654,
     "Home & Kitchen", 30, OBS_FORMAT_UNKNOWN},
};

static void test_real(void)
{
    for (size_t i = 0; i < sizeof real_pages / sizeof real_pages[0]; i++) {
        size_t len;
        char *page = read_fixture(real_pages[i].file, &len), what[200];
        snprintf(what, sizeof what, "REAL %s", real_pages[i].file);
        if (!CHECK(page != NULL, what))
            continue;
        check_read(what, real_pages[i].preset, page, len, OBS_OK, real_pages[i].rank,
                   real_pages[i].category, real_pages[i].sub_rank, real_pages[i].format);
        free(page);
    }
}

/* ---- hostile and current markup --------------------------------------------------------------- */

static void test_decoys(void)
{
    static const struct {
        const char *what, *decoy;
    } decoys[] = {
        {"a comment", "<!-- Best Sellers Rank: #1 in Books (See Top 100 in Books) -->"},
        {"a script", "<script>var x = '<b>Best Sellers Rank:</b> #2 in Books';</script>"},
        {"a JSON script",
         "<script type=\"application/json\">{\"l\":\"Best Sellers Rank: #3 in Books\"}</script>"},
        {"a style", "<style>/* Best Sellers Rank: #4 in Books */ .x{}</style>"},
        {"an attribute", "<span title=\"Best Sellers Rank: #5 in Books\">x</span>"},
        {"an attribute with > in it", "<span title='a > Best Sellers Rank: #6 in Books'>x</span>"},
        {"a data attribute of a link",
         "<a href=\"/gp/bestsellers/\" data-x=\"Best Sellers Rank: #7 in Books\">y</a>"},
        {"a textarea-less unclosed comment before",
         "<!-- Amazon Bestseller-Rang: Nr. 8 in B\xc3\xbc"
         "cher -->"},
    };
    for (size_t i = 0; i < sizeof decoys / sizeof decoys[0]; i++) {
        char *page = synthetic_page(&stores[0], decoys[i].decoy), what[200];
        snprintf(what, sizeof what, "a decoy rank in %s before the real block is not read",
                 decoys[i].what);
        check_read(what, "amazon.com", page, strlen(page), OBS_OK, 1234, "Books", 5,
                   OBS_FORMAT_PAPERBACK);
        free(page);
    }
}

static void test_captcha_mentions(void)
{
    size_t len;
    char *real = read_fixture("amazon_com_book_0131103628_2019_salesrank_li.html", &len);
    if (!CHECK(real != NULL, "the real .com page"))
        return;
    static const char *const mentions[] = {
        "<script>var validate = '/errors/validateCaptcha?amzn=x&amzn-r=%2Fdp%2F0131103628';</script>",
        "<script>ue.referer = 'https://www.amazon.com/errors/validateCaptcha';</script>",
        "<!-- came from /errors/validateCaptcha -->",
    };
    for (size_t i = 0; i < sizeof mentions / sizeof mentions[0]; i++) {
        buf b;
        buf_init(&b, 16u << 20);
        const char *body = strstr(real, "<body");
        size_t head = body ? (size_t)(body - real) : 0;
        if (buf_append(&b, real, head) || buf_append_str(&b, mentions[i]) ||
            buf_append(&b, real + head, len - head))
            abort();
        char what[120];
        snprintf(what, sizeof what,
                 "a real page that mentions a captcha (%zu) is read, not blocked", i);
        check_read(what, "amazon.com", b.data, b.len, OBS_OK, 5838, "Books", 2,
                   OBS_FORMAT_PAPERBACK);
        buf_free(&b);
    }
    free(real);

    /* A robot check is blocked, with its reason. */
    char *captcha = read_fixture("amazon_com_captcha_robot_check_2020.html", &len);
    if (!CHECK(captcha != NULL, "the real captcha page"))
        return;
    char *err = NULL;
    scr_source *src = scr_source_new_preset("amazon.de", NULL, &err);
    observation o;
    obs_init(&o);
    CHECK(src && scr_extract(src, 200, captcha, len, &o) == SCR_OK, "extract the captcha page");
    CHECK_STR(obs_status_name(o.status), "blocked", "a robot check is blocked on every preset");
    CHECK(o.error && strstr(o.error, "captcha"), "blocked says why (captcha page)");
    obs_clear(&o);
    obs_init(&o);
    CHECK(scr_extract(src, 403, "<html>no</html>", 15, &o) == SCR_OK && o.status == OBS_BLOCKED &&
              o.error && strstr(o.error, "403"),
          "HTTP 403 is blocked with 'HTTP 403' as its reason");
    obs_clear(&o);
    obs_init(&o);
    CHECK(scr_extract(src, 503, captcha, len, &o) == SCR_OK && o.status == OBS_BLOCKED && o.error &&
              strstr(o.error, "503") && strstr(o.error, "captcha"),
          "503 with a captcha page is blocked, saying both");
    obs_clear(&o);
    scr_source_free(src);
    free(captcha);
}

static void test_overflow_and_lists(void)
{
    store_case s = stores[0];
    s.entry = "#123456789012345678901234 in Books";
    char *page = synthetic_page(&s, NULL);
    char *err = NULL;
    scr_source *src = scr_source_new_preset("amazon.com", NULL, &err);
    observation o;
    obs_init(&o);
    CHECK(src && scr_extract(src, 200, page, strlen(page), &o) == SCR_OK,
          "extract an overflowing rank");
    CHECK_STR(obs_status_name(o.status), "error", "a rank with more digits than fit is an error");
    CHECK(o.error && strstr(o.error, "digits"), "the error says the rank has too many digits");
    obs_clear(&o);
    free(page);

    s.entry = "#88 Free in Kindle Store";
    s.format_word = "Kindle Edition";
    page = synthetic_page(&s, NULL);
    obs_init(&o);
    CHECK(scr_extract(src, 200, page, strlen(page), &o) == SCR_OK && o.status == OBS_OK,
          "free list read");
    CHECK_INT(o.rank, 88, "free list: the rank");
    CHECK_STR(o.rank_category, "Free in Kindle Store", "free list: keeps the list as its category");
    CHECK_INT(o.rank_free, 1, "free list: flagged, never compared with paid ranks");
    obs_clear(&o);
    free(page);

    s.entry = "#1,234 Paid in Kindle Store";
    page = synthetic_page(&s, NULL);
    obs_init(&o);
    CHECK(scr_extract(src, 200, page, strlen(page), &o) == SCR_OK && o.status == OBS_OK,
          "paid list read");
    CHECK_STR(o.rank_category, "Kindle Store", "paid list: the store's list");
    CHECK_INT(o.rank_free, 0, "paid list: not free");
    obs_clear(&o);
    free(page);
    scr_source_free(src);
}

static void test_presets(void)
{
    size_t n = 0;
    while (scr_preset_names[n])
        n++;
    CHECK_INT(n, 21, "21 storefronts");
    static const char *const must[] = {
        "amazon.com",    "amazon.co.uk",  "amazon.de",     "amazon.fr", "amazon.es",
        "amazon.it",     "amazon.nl",     "amazon.co.jp",  "amazon.in", "amazon.ca",
        "amazon.com.br", "amazon.com.mx", "amazon.com.au", "amazon.se", "amazon.pl",
        "amazon.com.be", "amazon.com.tr", "amazon.ae",     "amazon.sa", "amazon.sg",
        "amazon.eg"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        char *err = NULL, what[120];
        scr_source *src = scr_source_new_preset(must[i], NULL, &err);
        snprintf(what, sizeof what, "%s preset with its store language", must[i]);
        const char *lang = src ? scr_source_accept_language(src) : NULL;
        CHECK(src && lang && strlen(lang) >= 2, what);
        free(err);
        scr_source_free(src);
    }
}

int main(void)
{
    test_presets();
    test_synthetic();
    test_real();
    test_decoys();
    test_captcha_mentions();
    test_overflow_and_lists();
    return check_done();
}
