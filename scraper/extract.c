/*
 * extract.c - classify a fetched answer and read the Best Sellers Rank block and title from it.
 *
 * How a page is read (cost in brackets; pages are up to 8 MiB of arbitrary bytes):
 *  1. HTTP status and robot-check markers decide blocked / not_found / error first [a few JIT
 *     literal scans of the page, each at memchr speed].
 *  2. The block label ("Best Sellers Rank", "Amazon Bestseller-Rang", ...) is searched on the
 *     raw page [one JIT scan]. Each hit opens a bounded window after the label that is
 *     normalized into plain "block text" (below); the first rank entry must follow the label
 *     with nothing but tags, blank space, colons or <style> in between, otherwise the hit is a
 *     mention in a script, CSS or prose and the search goes on. Normalization is capped per hit
 *     and per page (NORMALIZE_BUDGET), so thousands of decoy labels stay cheap.
 *  3. Entries are then read one after another with the anchored rank rule; between two entries
 *     only tags, blank space, separators and a "(See Top 100 in ...)" parenthesis may appear, and
 *     a tag that closes the list or table (</ul>, </td>, ...) ends the block. The first entry is
 *     the overall rank and its top-level category, the rest are the category ranks, page order.
 *  4. The title is the first non-empty match of the title rule [one JIT scan].
 *
 * Block text: <style>, <script> and comments are dropped; every tag becomes "<name>" or
 * "</name>" (lower case, attributes dropped); runs of blank space, &nbsp; and no-break spaces
 * (U+00A0, U+202F, U+2000-U+200A, a lone Latin-1 0xA0) become one space; other entities are
 * decoded to UTF-8 except '<' and '&', which stay "&lt;" and "&amp;" (so a '<' in block text
 * always opens one of its tags). Other bytes pass unchanged. Custom rank rules are written
 * against this text.
 *
 * Category names: a ladder ("Books > Computers & Technology > Programming > C", links or plain
 * text, '>' or U+203A) is reported as its last, most specific step ("C") - the step the store
 * shows in bold and the one that identifies the list the rank belongs to. The overall rank's
 * category is its top-level one: plain text on every page seen, and the first step should a
 * store ever write it as a ladder.
 *
 * Output text (titles, categories): tags dropped, entities decoded (named, &#...; and &#x...;),
 * controls and blank space collapsed to single spaces and trimmed, invalid UTF-8 replaced by
 * U+FFFD, capped at SCR_TEXT_CAP bytes on a character boundary: scraper/text.c.
 *
 * Threads: any thread, concurrently on one source. The source is read-only; the page context,
 * its block-text buffer and the PCRE2 match data belong to one scr_extract() call.
 */
#include "source_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/utf8.h"
#include "text.h"

#define FIRST_OUT_CAP 1024            /* block text tried for the first entry */
#define FIRST_RAW_CAP (64u * 1024)    /* raw bytes that may hold it (long blank runs) */
#define BLOCK_OUT_CAP (16u * 1024)    /* block text of a whole block */
#define BLOCK_RAW_CAP (256u * 1024)
#define TAG_RAW_CAP 4096              /* a longer tag ends the window: no real block has one */
#define NORMALIZE_BUDGET (32u * 1024 * 1024) /* raw bytes normalized per page, all hits */
#define PAREN_CAP 512                 /* longest "(See Top 100 in ...)" skipped between entries */
#define MAX_CATEGORIES 64
#define MAX_TITLE_TRIES 16
#define OVECTOR_PAIRS 10

enum { CLOSE_COMMENT, CLOSE_STYLE, CLOSE_SCRIPT, CLOSE_KINDS };
static const char *const close_text[CLOSE_KINDS] = {"-->", "</style", "</script"};

typedef struct page_ctx {
    const scr_source *src;
    const unsigned char *page;
    size_t len;
    pcre2_match_data *md;
    size_t budget;                   /* raw bytes normalization may still read */
    /* Where the next "-->", "</style", "</script" at or after close_from[k] is (len: none).
     * Decoy labels inside one long style or script would otherwise each search it again. */
    size_t close_from[CLOSE_KINDS], close_at[CLOSE_KINDS];
    int close_known[CLOSE_KINDS];
    char *text;                      /* block text, BLOCK_OUT_CAP bytes, allocated on first use */
} page_ctx;

/* ---- block text --------------------------------------------------------------------------- */

/* Where the next close text of `kind` starts at or after `from` (c->len: nowhere). */
static size_t find_close(page_ctx *c, int kind, size_t from)
{
    if (c->close_known[kind] && c->close_from[kind] <= from && from <= c->close_at[kind])
        return c->close_at[kind];
    const char *needle = close_text[kind];
    const unsigned char *hit = from < c->len ? memmem(c->page + from, c->len - from, needle,
                                                      strlen(needle))
                                             : NULL;
    c->close_known[kind] = 1;
    c->close_from[kind] = from;
    c->close_at[kind] = hit ? (size_t)(hit - c->page) : c->len;
    return c->close_at[kind];
}

static void text_space(char *o, size_t *n)
{
    if (*n > 0 && o[*n - 1] != ' ')
        o[(*n)++] = ' ';
}

/*
 * Normalizes the raw page from `from` into c->text (see the top comment), stopping at out_cap
 * bytes of text, raw_cap raw bytes, the page budget, or anything a real block never holds
 * (an unclosed tag, style or comment). Returns the text length.
 */
static size_t normalize(page_ctx *c, size_t from, size_t out_cap, size_t raw_cap)
{
    const unsigned char *p = c->page;
    size_t end = c->len - from > raw_cap ? from + raw_cap : c->len;
    if (end - from > c->budget)
        end = from + c->budget;
    char *o = c->text;
    size_t n = 0, i = from;
    size_t far = from;      /* furthest byte looked at: the budget pays for scans that fail too */
    /* 24: room for the longest single write, a "</name>" tag of up to 16 name bytes. */
    while (i < end && n + 24 < out_cap) {
        unsigned char ch = p[i];
        if (scr_is_blank(ch)) {
            text_space(o, &n);
            i++;
        } else if (ch == '<') {
            if (end - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
                size_t close = find_close(c, CLOSE_COMMENT, i + 4);
                if (close >= end)
                    break;
                i = close + 3;
                continue;
            }
            int closing = i + 1 < end && p[i + 1] == '/';
            size_t name_at = i + 1 + (size_t)closing;
            if (name_at >= end || !(scr_is_alpha(p[name_at]) || (!closing && (p[name_at] == '!' ||
                                                                          p[name_at] == '?')))) {
                memcpy(o + n, "&lt;", 4);   /* a '<' that opens nothing is text */
                n += 4;
                i++;
                continue;
            }
            size_t j = name_at, name_len = 0;
            char name[17];
            while (j < end && (scr_is_alnum(p[j]) || p[j] == '-') && j - i < TAG_RAW_CAP) {
                if (name_len < 16)
                    name[name_len++] = (char)(p[j] | 0x20);
                j++;
            }
            name[name_len] = '\0';
            unsigned char quote = 0;
            while (j < end && j - i < TAG_RAW_CAP) {
                unsigned char t = p[j];
                if (quote) {
                    if (t == quote)
                        quote = 0;
                } else if (t == '"' || t == '\'') {
                    quote = t;
                } else if (t == '>') {
                    break;
                }
                j++;
            }
            if (j >= end || p[j] != '>') {
                far = j;
                break;
            }
            i = j + 1;
            if (name_len == 0)
                continue;                   /* <!DOCTYPE ...>, <?...?> */
            int skip = closing ? -1
                       : strcmp(name, "style") == 0  ? CLOSE_STYLE
                       : strcmp(name, "script") == 0 ? CLOSE_SCRIPT
                                                     : -1;
            if (skip >= 0) {
                size_t close = find_close(c, skip, i);
                if (close >= end)
                    break;
                const unsigned char *gt = memchr(p + close, '>', end - close);
                if (!gt)
                    break;
                i = (size_t)(gt - p) + 1;
                continue;
            }
            o[n++] = '<';
            if (closing)
                o[n++] = '/';
            memcpy(o + n, name, name_len);
            n += name_len;
            o[n++] = '>';
        } else if (ch == '&') {
            uint32_t cp;
            size_t used = scr_decode_entity(p + i, end - i, &cp);
            if (used && scr_is_space_cp(cp)) {
                text_space(o, &n);
                i += used;
            } else if (used && (cp == '<' || cp == '&')) {
                /* Kept as references so that block text has no '<' outside its tags;
                 * scr_clean_text decodes them. */
                memcpy(o + n, cp == '<' ? "&lt;" : "&amp;", cp == '<' ? 4 : 5);
                n += cp == '<' ? 4 : 5;
                i += used;
            } else if (used) {
                n += utf8_encode((unsigned char *)o + n, cp);
                i += used;
            } else {
                o[n++] = '&';
                i++;
            }
        } else if (ch >= 0x80) {
            uint32_t cp;
            size_t used = utf8_decode(p + i, end - i, &cp);
            if (used && scr_is_nbsp_cp(cp)) {
                text_space(o, &n);
                i += used;
            } else if (used) {
                memcpy(o + n, p + i, used);
                n += used;
                i += used;
            } else if (ch == 0xa0) {
                text_space(o, &n);          /* no-break space of a Latin-1 page */
                i++;
            } else {
                o[n++] = (char)ch;
                i++;
            }
        } else {
            o[n++] = (char)ch;
            i++;
        }
    }
    size_t used_raw = (far > i ? far : i) - from;
    c->budget = used_raw < c->budget ? c->budget - used_raw : 0;
    return n;
}

/* Between two entries, a tag that closes the list or table, or starts a new section, ends the
 * block: what follows is another product detail, not a rank. */
static int tag_ends_block(const char *tag, size_t len)
{
    static const char *const enders[] = {
        "</ul>", "</ol>", "</td>", "</tr>", "</table>", "</tbody>", "<table>", "<tr>", "<td>",
        "<th>",  "<div>", "</div>", "</dl>", "</dd>", "<dt>", "<p>", "</p>", "<hr>", "<h1>",
        "<h2>",  "<h3>", "<h4>", "<h5>", "<h6>", "<section>", "</section>", "<body>", "</body>",
    };
    for (size_t k = 0; k < sizeof enders / sizeof enders[0]; k++)
        if (strlen(enders[k]) == len && memcmp(enders[k], tag, len) == 0)
            return 1;
    return 0;
}

/*
 * Skips what may come before an entry: blank space, colons, separators, tags and - between
 * entries - a parenthesis. Returns where the entry should start, or SIZE_MAX when the block has
 * ended or the text ran out.
 */
static size_t skip_gap(const char *t, size_t i, size_t n, int after_entry)
{
    while (i < n) {
        char ch = t[i];
        if (ch == ' ' || ch == ':' || ch == ',' || ch == ';' || ch == '|') {
            i++;
        } else if (ch == '<') {
            const char *gt = memchr(t + i, '>', n - i);
            if (!gt)
                return SIZE_MAX;
            size_t len = (size_t)(gt - (t + i)) + 1;
            if (after_entry && tag_ends_block(t + i, len))
                return SIZE_MAX;
            i += len;
        } else if (ch == '(' && after_entry) {
            size_t depth = 0, j = i;
            for (; j < n && j - i < PAREN_CAP; j++) {
                if (t[j] == '(')
                    depth++;
                else if (t[j] == ')' && --depth == 0)
                    break;
            }
            if (j >= n || j - i >= PAREN_CAP)
                return SIZE_MAX;
            i = j + 1;
        } else {
            return i;
        }
    }
    return SIZE_MAX;
}

typedef struct entry {
    int64_t rank;
    size_t cat_at, cat_len;
    size_t end;
} entry;

/* Matches the rank rule at text[at]. 1 with *e filled, 0 when there is no valid entry. */
static int match_entry(page_ctx *c, const char *text, size_t n, size_t at, entry *e)
{
    int rc = pcre2_match(c->src->rank, (PCRE2_SPTR)text, n, at, 0, c->md, c->src->match_ctx);
    if (rc < 0)
        return 0;                           /* no match, or a limit hit: not an entry */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    if (ov[1] <= at || ov[2] == PCRE2_UNSET)
        return 0;
    e->rank = scr_parse_rank(text + ov[2], ov[3] - ov[2]);
    if (e->rank < 0)
        return 0;
    if (ov[4] == PCRE2_UNSET || ov[5] < ov[4]) {
        e->cat_at = e->cat_len = 0;
    } else {
        e->cat_at = ov[4];
        e->cat_len = ov[5] - ov[4];
    }
    e->end = ov[1];
    return 1;
}

/* The category name of an entry, malloc'd (maybe ""), NULL when out of memory. */
static char *entry_category(const char *text, const entry *e, int overall)
{
    char *name = scr_clean_text(text + e->cat_at, e->cat_len);
    if (name)
        scr_ladder_step(name, overall);
    return name;
}

/*
 * Reads the block whose label ends at raw offset `from`. 1 when it holds a rank (out has rank,
 * rank_category and categories), 0 when this label does not open a block, -1 out of memory.
 */
static int read_block(page_ctx *c, size_t from, observation *out)
{
    size_t n = normalize(c, from, FIRST_OUT_CAP, FIRST_RAW_CAP);
    size_t at = skip_gap(c->text, 0, n, 0);
    entry e;
    if (at == SIZE_MAX || !match_entry(c, c->text, n, at, &e))
        return 0;
    /* A real block: normalize it whole. Its start is the same text, so `at` still holds. */
    n = normalize(c, from, BLOCK_OUT_CAP, BLOCK_RAW_CAP);
    if (!match_entry(c, c->text, n, at, &e))
        return 0;
    char *category = entry_category(c->text, &e, 1);
    if (!category)
        return -1;
    out->rank = e.rank;
    free(out->rank_category);
    out->rank_category = NULL;
    if (*category)
        out->rank_category = category;
    else
        free(category);
    while (out->ncategories < MAX_CATEGORIES) {
        at = skip_gap(c->text, e.end, n, 1);
        if (at == SIZE_MAX || !match_entry(c, c->text, n, at, &e))
            break;
        category = entry_category(c->text, &e, 0);
        if (!category)
            return -1;
        /* A rank without a name says nothing about where the book stands; leave it out. */
        int rc = *category ? obs_add_category(out, e.rank, category, strlen(category)) : 0;
        free(category);
        if (rc < 0)
            return -1;
    }
    return 1;
}

/* Finds the first Best Sellers Rank block. 1 read, 0 none, -1 out of memory. */
static int find_rank(page_ctx *c, observation *out)
{
    size_t start = 0;
    while (start <= c->len && c->budget > 0) {
        int rc = pcre2_match(c->src->block_start, (PCRE2_SPTR)c->page, c->len, start, 0, c->md,
                             c->src->match_ctx);
        if (rc < 0)
            return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t label_end = ov[1];
        if (!c->text && !(c->text = malloc(BLOCK_OUT_CAP)))
            return -1;
        int got = read_block(c, label_end, out);
        if (got != 0)
            return got;
        start = label_end > ov[0] ? label_end : ov[0] + 1;
    }
    return 0;
}

/* The first non-empty product title, malloc'd; NULL when none (*oom set when out of memory). */
static char *find_title(page_ctx *c, int *oom)
{
    size_t start = 0;
    for (int tries = 0; tries < MAX_TITLE_TRIES && start <= c->len; tries++) {
        int rc = pcre2_match(c->src->title, (PCRE2_SPTR)c->page, c->len, start, 0, c->md,
                             c->src->match_ctx);
        if (rc < 0)
            return NULL;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        if (ov[2] != PCRE2_UNSET && ov[3] > ov[2]) {
            char *title = scr_clean_text((const char *)c->page + ov[2], ov[3] - ov[2]);
            if (!title) {
                *oom = 1;
                return NULL;
            }
            if (*title)
                return title;
            free(title);
        }
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return NULL;
}

static int any_marker(page_ctx *c, const scr_marker_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        if (pcre2_match(list->code[i], (PCRE2_SPTR)c->page, c->len, 0, 0, c->md,
                        c->src->match_ctx) >= 0)
            return 1;
    return 0;
}

/* Drops whatever a previous extraction left in the members scr_extract fills. */
static void reset_result(observation *out)
{
    out->rank = -1;
    free(out->rank_category);
    out->rank_category = NULL;
    for (size_t i = 0; i < out->ncategories; i++)
        free(out->categories[i].category);
    free(out->categories);
    out->categories = NULL;
    out->ncategories = 0;
    free(out->title);
    out->title = NULL;
}

static scr_err set_error(observation *out, const char *message)
{
    out->status = OBS_ERROR;
    return obs_set_str(&out->error, message) == 0 ? SCR_OK : SCR_NOMEM;
}

const char *scr_strerror(scr_err err)
{
    switch (err) {
    case SCR_OK: return "ok";
    case SCR_NOMEM: return "out of memory";
    case SCR_INVALID: return "invalid argument";
    }
    return "unknown error";
}

scr_err scr_extract(const scr_source *src, int http_status, const char *page, size_t len,
                    observation *out)
{
    if (!out)
        return SCR_INVALID;
    reset_result(out);
    if (!src)
        return set_error(out, "no source given");
    if (len > SCR_MAX_PAGE) {
        char msg[96];
        if (snprintf(msg, sizeof msg, "page too large: %zu bytes (limit %u)", len,
                     (unsigned)SCR_MAX_PAGE) < 0)
            return set_error(out, "page too large");
        return set_error(out, msg);
    }
    if (http_status == 404 || http_status == 410) {
        out->status = OBS_NOT_FOUND;
        return SCR_OK;
    }
    if (http_status == 403 || http_status == 429) {
        out->status = OBS_BLOCKED;
        return SCR_OK;
    }

    scr_err result = SCR_OK;
    page_ctx c = {.src = src,
                  .page = (const unsigned char *)(page ? page : ""),
                  .len = page ? len : 0,
                  .budget = NORMALIZE_BUDGET};
    c.md = pcre2_match_data_create(OVECTOR_PAIRS, NULL);
    if (!c.md)
        return SCR_NOMEM;

    /* Any other answer than 2xx (or a page on its own) is blocked or an error; never data. */
    if (any_marker(&c, &src->blocked)) {
        out->status = OBS_BLOCKED;
        goto done;
    }
    if (http_status != 0 && (http_status < 200 || http_status > 299)) {
        char msg[32];
        result = set_error(out, snprintf(msg, sizeof msg, "HTTP %d", http_status) < 0
                                    ? "unexpected HTTP status" : msg);
        goto done;
    }

    int rc = find_rank(&c, out);
    if (rc < 0) {
        result = SCR_NOMEM;
        goto done;
    }
    int oom = 0;
    out->title = find_title(&c, &oom);
    if (oom) {
        result = SCR_NOMEM;
        goto done;
    }
    if (rc > 0) {
        out->status = OBS_OK;
    } else if (out->title) {
        out->status = OBS_NO_RANK;
    } else if (any_marker(&c, &src->not_found)) {
        out->status = OBS_NOT_FOUND;
    } else {
        result = set_error(out, "page not understood: no product title or rank");
    }

done:
    if (result != SCR_OK || (out->status != OBS_OK && out->status != OBS_NO_RANK))
        reset_result(out);
    free(c.text);
    pcre2_match_data_free(c.md);
    return result;
}
