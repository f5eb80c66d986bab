/*
 * source.c - sources: the built-in store presets, custom sources from rule text, URL templates.
 *
 * Every preset shares one multilingual rule set (English, German and French labels and number
 * formats), so a store page in another of these languages (amazon.ca in French, say) still reads;
 * presets differ only in name and default URL, listed in presets.def. Patterns are compiled in
 * no-UTF mode (pages are arbitrary bytes) and JIT-compiled when the platform supports it.
 *
 * Threads: building a source touches nothing shared; once built it is immutable and read by any
 * thread (source_internal.h). The tables here are constant.
 */
#include "source_internal.h"

#include "../common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATTERN_LEN 4096
#define MAX_TEMPLATE_LEN 2048
#define MAX_NAME_LEN 64

/* Backtracking bounds: generous for the built-in rules (which never come close), tight enough
 * that a careless custom pattern on a hostile 8 MiB page ends in milliseconds, not hours. */
#define MATCH_LIMIT 5000000u
#define DEPTH_LIMIT 5000u
#define HEAP_LIMIT_KIB 20000u

/* The storefronts live in presets.def; its per-store columns beyond the URL are not read yet. */
const char *const scr_preset_names[] = {
#define SCR_PRESET(name, url_template, accept_language) name,
#include "presets.def"
    NULL,
};

static const char *const preset_urls[] = {
#define SCR_PRESET(name, url_template, accept_language) url_template,
#include "presets.def"
};

static const char *const preset_languages[] = {
#define SCR_PRESET(name, url_template, accept_language) accept_language,
#include "presets.def"
};

#define PRESET_COUNT (sizeof preset_urls / sizeof preset_urls[0])
_Static_assert(sizeof scr_preset_names / sizeof scr_preset_names[0] == PRESET_COUNT + 1,
               "one name and one URL per preset");

/*
 * The label that opens the Best Sellers Rank block, on the raw page, in every interface language
 * a storefront serves (a store may answer in another language than its own: amazon.es in
 * Portuguese, amazon.co.jp in English or Chinese), so every preset uses the whole table. Seen on
 * real pages 2017-2024: "Amazon Best Sellers Rank", "Best Sellers Rank", "Amazon Bestsellers
 * Rank", "Amazon Bestseller-Rang", "Classement des meilleures ventes d'Amazon", "Clasificación
 * en los más vendidos de Amazon", "Amazon 売れ筋ランキング", "亚马逊热销商品排行榜"; from the
 * stores' documented strings: "Posizione nella classifica Bestseller di Amazon", "Plaats in
 * bestsellerlijst", "Ranking dos mais vendidos", "Rangordning för bästsäljare", "Ranking
 * najlepiej sprzedających się produktów", "En Çok Satanlar Sıralaması", "تصنيف الأفضل مبيعاً".
 * Accented letters may also come as entities. The leading "Amazon" is left out on purpose, and
 * the alternatives start with few distinct bytes, which keeps the JIT's first-byte scan fast.
 * What sits between the label and the first number (colons, tags, &rlm;, blank lines, <style>)
 * is skipped by the extractor, not the pattern.
 */
static const char default_block_start[] =
    "Best(?:[\\s-]?[Ss]ellers?[\\s-]*+[Rr]ank|seller-Rang|sellers-?rang)"
    "|Classement des meilleures ventes(?:\\s++d\\S{1,12}?Amazon)?"
    "|Clasificaci(?:\xc3\xb3|&oacute;|&#243;)n en los m(?:\xc3\xa1|&aacute;|&#225;)s vendidos"
    "|[Cc]lassifica Bestseller"
    "|Plaats in (?:de )?[Bb]estsellerlijst"
    "|Ranking (?:dos mais vendidos|najlepiej sprzedaj)"
    "|Rangordning f(?:\xc3\xb6|&ouml;)r b(?:\xc3\xa4|&auml;)sts(?:\xc3\xa4|&auml;)ljare"
    "|En (?:\xc3\x87|&Ccedil;)ok Satanlar S\xc4\xb1ralamas\xc4\xb1"
    "|\xe5\xa3\xb2\xe3\x82\x8c\xe7\xad\x8b\xe3\x83\xa9\xe3\x83\xb3\xe3\x82\xad\xe3\x83\xb3\xe3\x82\xb0"
    "|\xe7\x83\xad\xe9\x94\x80\xe5\x95\x86\xe5\x93\x81\xe6\x8e\x92\xe8\xa1\x8c\xe6\xa6\x9c"
    "|\xd8\xaa\xd8\xb5\xd9\x86\xd9\x8a\xd9\x81 \xd8\xa7\xd9\x84\xd8\xa3(?:\xd9\x81\xd8\xb6\xd9\x84|\xd9\x83\xd8\xab\xd8\xb1) \xd9\x85\xd8\xa8\xd9\x8a\xd8\xb9";

/*
 * One rank entry, matched anchored at the entry's start in the normalized block text (see
 * extract.c: tags reduced to "<name>"/"</name>", style/script/comments dropped, whitespace and
 * no-break spaces collapsed to one space, entities but &lt; and &amp; decoded). Group 1 is the
 * number as written ("5,838", "13.222", "1 234", "١٬٤٣١"), group 2 the category: plain text up
 * to "(" (so "(See Top 100 in Books)" is left out) or a ladder of links, whose link texts may
 * hold parentheses ("Home & Garden (Books)"). A branch reset (?| ... ) gives every written form
 * the same two groups:
 *   "#1,234 in Books", "1,234 in Books", "Nr. 1.234 in Bücher", "n° 1 234 en Livres",
 *   "nº1.974 en Libros", "n. 1.234 in Libri", "Nº 1.460 em Livros", "nr 1 234 i Böcker",
 *   "Pozycja 1 234 w kategorii Książki", "#١٬٤٣١ في Videogames", with an optional
 *   "Free"/"Paid" word for Kindle lists (extract.c keeps a free list apart);
 *   "- 968,928位本" (Japanese: the category glued after 位);
 *   "商品里排第968,928名日本图书" (Chinese interface);
 *   "Kitap kategorisinde 1.234. sırada" (Turkish: the category first).
 */
#define RANK_NUMBER                                                                                \
    "((?:[0-9]|\xd9[\xa0-\xa9])++(?:(?:[,.\\x20']|\xd9[\xab\xac])(?:[0-9]|\xd9[\xa0-\xa9])++)*+)"
#define RANK_CATEGORY                                                                              \
    "((?:<a>(?:[^<]|</?(?:b|i|em|strong|span)>)*+</a>|</?(?:b|i|em|strong)>|[^<(])*+)"
static const char default_rank[] =
    "(?|"
    "(?:\\#|[Nn][Rr]\\.?|No\\.|[Nn](?:\\xc2?\\xb0|\\xc2\\xba|o\\.)|n\\.|Pozycja|\xe2\x84\x96)?\\x20?+" RANK_NUMBER
    "(?:\\x20|<[^<>]{1,20}>)*+"
    "(?:(?:Paid|Free|Bezahlt|Kostenlos|Gratis|Gr\xc3\xa1tis|[Pp]ayants?|[Gg]ratuits?|Pago|Pagati|"
    "Gratuito|Darmowe|P\xc5\x82\x61tne)\\x20++)?"
    "(?:in|en|dans|em|i|w\\x20kategorii|\xd9\x81\xd9\x8a|In|En|Dans|Em)(?=[\\x20<])\\x20?+" RANK_CATEGORY
    "|-?\\x20?+" RANK_NUMBER "\xe4\xbd\x8d\\x20?+" RANK_CATEGORY
    "|(?:\xe5\x95\x86\xe5\x93\x81\xe9\x87\x8c\xe6\x8e\x92)?\xe7\xac\xac\\x20?+" RANK_NUMBER
    "\\x20?+\xe5\x90\x8d\\x20?+" RANK_CATEGORY
    "|(?=[^<(]{1,200}?\\x20kategorisinde\\x20" RANK_NUMBER "\\.\\x20s\xc4\xb1rada)"
    "([^<(]{1,200}?)\\x20kategorisinde\\x20[^<]{1,40}?\\.\\x20s\xc4\xb1rada"
    ")";

/* The product title element of every generation (books, Kindle, other products). */
static const char default_title[] =
    "\\bid=[\"']?(?:productTitle|ebooksProductTitle|btAsinTitle)[\"']?(?=[\\s>/])[^>]*+>"
    "\\s*+([^<]*+)";

/* Robot-check / captcha pages (also served with 503), in any interface language: the form and
 * field names are the same on every storefront, the English texts are kept for old pages. Each
 * is found on its own, see SCR_MAX_MARKERS. On a 2xx page extract.c counts a marker only where
 * a robot check shows it - in the text or in a tag - since real product pages mention
 * validateCaptcha in their scripts. */
static const char *const default_blocked[] = {
    "Robot Check\\s*+</title>",
    "/errors/validateCaptcha",
    "id=\"captchacharacters\"",
    "Enter the characters you see below",
    "Type the characters you see in this image",
    "(?<=api-services-support)@amazon\\.",
    NULL,
};

/* The stores' "no such page" pages. Only consulted for pages that have neither a rank nor a
 * product title, so speed does not matter here. */
static const char *const default_not_found[] = {
    "(?i)page not found|not a functioning page|find that page|looking for something\\?",
    "keine funktionierende Seite|Seite nicht gefunden|gesuchte Seite nicht finden",
    "(?i)pas une page active|page introuvable|pas trouv\\S{1,8} (?:la|cette) page",
    "(?i)no se ha encontrado|p\\S{1,8}gina no encontrada|pagina non trovata|pagina niet gevonden|"
    "p\\S{1,8}gina n\\S{1,8}o encontrada|nie znaleziono strony|sayfa bulunamad",
    "\xe3\x81\x8a\xe6\x8e\xa2\xe3\x81\x97\xe3\x81\xae\xe3\x83\x9a\xe3\x83\xbc\xe3\x82\xb8\xe3\x81\xaf\xe8\xa6\x8b\xe3\x81\xa4\xe3\x81\x8b\xe3\x82\x8a\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93",
    NULL,
};

static void set_err(char **err, char *msg)
{
    if (err)
        *err = msg;
    else
        free(msg);
}

static int preset_index(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; scr_preset_names[i]; i++)
        if (strcmp(scr_preset_names[i], name) == 0)
            return i;
    return -1;
}

/* "unknown source preset 'x' (known: amazon.com, ...)", the list taken from presets.def.
 * malloc'd; NULL when out of memory. */
static char *unknown_preset_message(const char *name)
{
    buf b;
    buf_init(&b, 4096);
    int rc = buf_printf(&b, "unknown source preset '%.64s' (known: ", name ? name : "");
    for (size_t i = 0; rc == BUF_OK && i < PRESET_COUNT; i++)
        rc = buf_printf(&b, "%s%s", i ? ", " : "", scr_preset_names[i]);
    if (rc == BUF_OK)
        rc = buf_append(&b, ")", 1);
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* The placeholders a URL template may use, and what a book fills them with. */
static const char *const placeholder_names[] = {"{asin}", "{id}", "{isbn10}", "{isbn13}", NULL};

/* The length of the placeholder at s, or 0 when s does not start one. */
static size_t placeholder_len(const char *s)
{
    for (size_t k = 0; placeholder_names[k]; k++)
        if (strncmp(s, placeholder_names[k], strlen(placeholder_names[k])) == 0)
            return strlen(placeholder_names[k]);
    return 0;
}

/* What book puts in for the placeholder at s ("" when it has no such value). */
static const char *placeholder_value(const char *s, const scr_book *book)
{
    switch (s[1]) {
    case 'a':
        return book->asin;
    case 'i':
        return s[2] == 'd' ? book->id : s[5] == '1' && s[6] == '0' ? book->isbn10 : book->isbn13;
    }
    return "";
}

/*
 * Checks a URL template: http(s) with a host, printable ASCII only (no spaces), at least one
 * placeholder, and no braces other than {asin}, {id}, {isbn10} and {isbn13}. Returns NULL when
 * valid, else a malloc'd reason.
 */
static char *template_problem(const char *tpl)
{
    if (!tpl || !*tpl)
        return buf_strdup_printf("URL template is empty");
    size_t len = strlen(tpl);
    if (len > MAX_TEMPLATE_LEN)
        return buf_strdup_printf("URL template is longer than %d bytes", MAX_TEMPLATE_LEN);
    size_t host;
    if (strncasecmp(tpl, "http://", 7) == 0)
        host = 7;
    else if (strncasecmp(tpl, "https://", 8) == 0)
        host = 8;
    else
        return buf_strdup_printf("URL template must start with http:// or https://");
    if (tpl[host] == '\0' || tpl[host] == '/' || tpl[host] == '?' || tpl[host] == '#')
        return buf_strdup_printf("URL template has no host");
    int placeholders = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tpl[i];
        if (c <= 0x20 || c >= 0x7f)
            return buf_strdup_printf(
                "URL template has a space, control or non-ASCII byte at offset %zu", i);
        if (c == '{') {
            size_t n = placeholder_len(tpl + i);
            if (n) {
                placeholders++;
                i += n - 1;
                continue;
            }
            return buf_strdup_printf("URL template has an unknown placeholder at offset %zu "
                                     "(only {asin}, {id}, {isbn10} and {isbn13} exist)",
                                     i);
        }
        if (c == '}')
            return buf_strdup_printf("URL template has a stray '}' at offset %zu", i);
    }
    if (placeholders == 0)
        return buf_strdup_printf("URL template needs {asin}, {id}, {isbn10} or {isbn13}");
    return NULL;
}

/* Compiles one rule. `what` names it in messages. needs_groups: capture groups it must have. */
static pcre2_code *compile_rule(const char *source_name, const char *what, const char *text,
                                uint32_t extra_options, uint32_t needs_groups, char **err)
{
    if (strlen(text) > MAX_PATTERN_LEN) {
        set_err(err, buf_strdup_printf("source %s: %s pattern is longer than %d bytes", source_name,
                                       what, MAX_PATTERN_LEN));
        return NULL;
    }
    int code;
    PCRE2_SIZE offset;
    /* No-UTF mode: pages are bytes, and (*UTF) inside a custom pattern is refused outright. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED,
                                   PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | extra_options, &code,
                                   &offset, NULL);
    if (!re) {
        PCRE2_UCHAR why[160];
        if (pcre2_get_error_message(code, why, sizeof why) < 0)
            memcpy(why, "unknown error", sizeof "unknown error");
        set_err(err, buf_strdup_printf("source %s: %s pattern: %s at offset %zu", source_name, what,
                                       (const char *)why, (size_t)offset));
        return NULL;
    }
    uint32_t groups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups < needs_groups) {
        set_err(err,
                buf_strdup_printf("source %s: %s pattern needs %u capture group%s", source_name,
                                  what, needs_groups, needs_groups == 1 ? "" : "s"));
        pcre2_code_free(re);
        return NULL;
    }
    /* Without JIT (unsupported platform) the interpreter gives the same answers, slower. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static int compile_markers(const char *source_name, const char *what, const char *custom,
                           const char *const *defaults, scr_marker_list *out, char **err)
{
    if (custom) {
        out->code[0] = compile_rule(source_name, what, custom, 0, 0, err);
        if (!out->code[0])
            return -1;
        out->n = 1;
        return 0;
    }
    for (size_t i = 0; defaults[i] && i < SCR_MAX_MARKERS; i++) {
        out->code[i] = compile_rule(source_name, what, defaults[i], 0, 0, err);
        if (!out->code[i])
            return -1;
        out->n = i + 1;
    }
    return 0;
}

static void free_markers(scr_marker_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        pcre2_code_free(list->code[i]);
    list->n = 0;
}

void scr_source_free(scr_source *src)
{
    if (!src)
        return;
    free(src->name);
    free(src->url_template);
    pcre2_code_free(src->block_start);
    pcre2_code_free(src->rank);
    pcre2_code_free(src->title);
    free_markers(&src->blocked);
    free_markers(&src->not_found);
    pcre2_match_context_free(src->match_ctx);
    free(src);
}

/* Builds a source; any NULL rule text takes the built-in rule (every preset shares them). */
static scr_source *source_build(const scr_rules *r, char **err)
{
    scr_source *src = calloc(1, sizeof *src);
    if (!src || !(src->name = strdup(r->name)) || !(src->url_template = strdup(r->url_template)))
        goto nomem;
    src->match_ctx = pcre2_match_context_create(NULL);
    if (!src->match_ctx)
        goto nomem;
    pcre2_set_match_limit(src->match_ctx, MATCH_LIMIT);
    pcre2_set_depth_limit(src->match_ctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(src->match_ctx, HEAP_LIMIT_KIB);

    src->block_start = compile_rule(
        r->name, "block_start", r->block_start ? r->block_start : default_block_start, 0, 0, err);
    if (!src->block_start)
        goto fail;
    src->builtin_labels = r->block_start == NULL;
    int base = preset_index(r->base ? r->base : r->name);
    scr_fetch_policy_init(&src->policy, src->url_template,
                          base >= 0 ? preset_languages[base] : NULL);
    /* Entries are read one after another from a known start, so the rank rule is anchored. */
    src->rank = compile_rule(r->name, "rank", r->rank ? r->rank : default_rank, PCRE2_ANCHORED, 2,
                             err);
    if (!src->rank)
        goto fail;
    src->title = compile_rule(r->name, "title", r->title ? r->title : default_title, 0, 1, err);
    if (!src->title)
        goto fail;
    if (compile_markers(r->name, "blocked", r->blocked, default_blocked, &src->blocked, err) < 0)
        goto fail;
    if (compile_markers(r->name, "not_found", r->not_found, default_not_found, &src->not_found,
                        err) < 0)
        goto fail;
    return src;

nomem:
    set_err(err, buf_strdup_printf("out of memory"));
fail:
    scr_source_free(src);
    return NULL;
}

scr_source *scr_source_new_preset(const char *name, const char *url_template, char **err)
{
    if (err)
        *err = NULL;
    int i = preset_index(name);
    if (i < 0) {
        set_err(err, unknown_preset_message(name));
        return NULL;
    }
    scr_rules rules = {.name = scr_preset_names[i],
                       .url_template = url_template ? url_template : preset_urls[i]};
    char *why = template_problem(rules.url_template);
    if (why) {
        set_err(err, buf_strdup_printf("source %s: %s", rules.name, why));
        free(why);
        return NULL;
    }
    return source_build(&rules, err);
}

scr_source *scr_source_new_custom(const scr_rules *rules, char **err)
{
    if (err)
        *err = NULL;
    if (!rules || !rules->name || !*rules->name) {
        set_err(err, buf_strdup_printf("custom source: a name is required"));
        return NULL;
    }
    size_t nlen = strlen(rules->name);
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)rules->name[i];
        if (nlen > MAX_NAME_LEN || c <= 0x20 || c >= 0x7f) {
            set_err(err, buf_strdup_printf("custom source: the name must be 1-%d printable ASCII "
                                           "characters without spaces",
                                           MAX_NAME_LEN));
            return NULL;
        }
    }
    char *why = template_problem(rules->url_template);
    if (why) {
        set_err(err, buf_strdup_printf("source %s: %s", rules->name, why));
        free(why);
        return NULL;
    }
    if (rules->base && preset_index(rules->base) < 0) {
        set_err(err, buf_strdup_printf("source %s: unknown base preset '%.64s'", rules->name,
                                       rules->base));
        return NULL;
    }
    /* Every preset has the same rules today, so `base` only needs to be valid; it stays in the
     * interface so presets can diverge without changing configuration files. */
    return source_build(rules, err);
}

const char *scr_source_name(const scr_source *src)
{
    return src ? src->name : NULL;
}

const scr_fetch_policy *scr_source_fetch_policy(const scr_source *src)
{
    return src ? &src->policy : NULL;
}

const char *scr_source_accept_language(const scr_source *src)
{
    return src ? src->policy.accept_language : NULL;
}

const char *scr_source_template(const scr_source *src)
{
    return src ? src->url_template : NULL;
}

int scr_source_can_address(const scr_source *src, const scr_book *book)
{
    if (!src || !book)
        return 0;
    for (const char *p = src->url_template; *p; p++) {
        size_t n = *p == '{' ? placeholder_len(p) : 0;
        if (n && !placeholder_value(p, book)[0])
            return 0;
    }
    return 1;
}

char *scr_source_url(const scr_source *src, const scr_book *book)
{
    if (!scr_source_can_address(src, book))
        return NULL;
    buf url;
    buf_init(&url, MAX_TEMPLATE_LEN + 64);
    for (const char *p = src->url_template; *p;) {
        size_t n = *p == '{' ? placeholder_len(p) : 0;
        int rc = n ? buf_append_str(&url, placeholder_value(p, book)) : buf_append(&url, p, 1);
        if (rc != BUF_OK) {
            buf_free(&url);
            return NULL;
        }
        p += n ? n : 1;
    }
    return buf_steal(&url, NULL);
}

void scr_book_from_isbn(const isbn *in, scr_book *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, in->isbn13, sizeof in->isbn13);
    memcpy(out->isbn13, in->isbn13, sizeof in->isbn13);
    memcpy(out->isbn10, in->isbn10, sizeof in->isbn10);
    memcpy(out->asin, in->isbn10, sizeof in->isbn10); /* a print book's ASIN is its ISBN-10 */
}
