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

#define FIRST_OUT_CAP 1024         /* block text tried for the first entry */
#define FIRST_RAW_CAP (64u * 1024) /* raw bytes that may hold it (long blank runs) */
#define BLOCK_OUT_CAP (16u * 1024) /* block text of a whole block */
#define BLOCK_RAW_CAP (256u * 1024)
#define TAG_RAW_CAP 4096 /* a longer tag ends the window: no real block has one */
#define NORMALIZE_BUDGET (32u * 1024 * 1024) /* raw bytes normalized per page, all hits */
#define PAREN_CAP 512 /* longest "(See Top 100 in ...)" skipped between entries */
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
    size_t budget; /* raw bytes normalization may still read */
    /* Where the next "-->", "</style", "</script" at or after close_from[k] is (len: none).
     * Decoy labels inside one long style or script would otherwise each search it again. */
    size_t close_from[CLOSE_KINDS], close_at[CLOSE_KINDS];
    int close_known[CLOSE_KINDS];
    char *text;                       /* block text, BLOCK_OUT_CAP bytes, allocated on first use */
    size_t lex_pos;                   /* in_text(): the page up to here is known to be parsed */
    size_t lex_open_at, lex_open_end; /* lex_context(): the last construct found to reach past a */
    size_t lex_open_body;             /* query, and where its raw content starts */
    size_t block_at;                  /* where the label of the block read starts (len: none) */
    size_t title_at;                  /* where the title element starts (len: none) */
} page_ctx;

/* ---- block text --------------------------------------------------------------------------- */

/* memmem for the short literals this file looks for: memchr on the needle's first byte (never a
 * frequent one here: '<', '-', '/' in "/gp/...") and a compare, which beats the general
 * two-way search by several times on pages. */
static const unsigned char *find_literal(const unsigned char *hay, size_t n, const char *needle,
                                         size_t len)
{
    if (len == 0 || n < len)
        return NULL;
    const unsigned char *end = hay + n - len + 1;
    for (const unsigned char *p = hay; p < end;) {
        p = memchr(p, (unsigned char)needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p + 1, needle + 1, len - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* Where the next close text of `kind` starts at or after `from` (c->len: nowhere). */
static size_t find_close(page_ctx *c, int kind, size_t from)
{
    if (c->close_known[kind] && c->close_from[kind] <= from && from <= c->close_at[kind])
        return c->close_at[kind];
    const char *needle = close_text[kind];
    const unsigned char *hit = from < c->len ? find_literal(c->page + from, c->len - from, needle,
                                                            strlen(needle))
                                             : NULL;
    c->close_known[kind] = 1;
    c->close_from[kind] = from;
    c->close_at[kind] = hit ? (size_t)(hit - c->page) : c->len;
    return c->close_at[kind];
}

/* Where the tag, comment, script or style element that starts with the '<' at q ends (one past
 * it; c->len when it never ends), or q + 1 when that '<' opens nothing and is text. *body_at is
 * where its raw content starts (a comment's '<', the byte after <script ...>), SIZE_MAX for a
 * plain tag. */
static size_t construct_end(page_ctx *c, size_t q, size_t *body_at)
{
    const unsigned char *p = c->page;
    size_t n = c->len;
    *body_at = SIZE_MAX;
    if (n - q >= 4 && memcmp(p + q, "<!--", 4) == 0) {
        size_t close = find_close(c, CLOSE_COMMENT, q + 4);
        *body_at = q;
        return close >= n ? n : close + 3;
    }
    size_t j = q + 1, name_at;
    int closing = j < n && p[j] == '/';
    name_at = j + (size_t)closing;
    if (name_at >= n || !(scr_is_alpha(p[name_at]) || p[name_at] == '!' || p[name_at] == '?'))
        return q + 1;
    char name[8];
    size_t name_len = 0;
    for (j = name_at; j < n && scr_is_alnum(p[j]); j++)
        if (name_len < sizeof name - 1)
            name[name_len++] = (char)(p[j] | 0x20);
    name[name_len] = '\0';
    /* To the '>' that ends the tag, outside quoted attribute values; memchr does the walking. */
    for (;;) {
        const unsigned char *gt = memchr(p + j, '>', n - j);
        if (!gt)
            return n;
        size_t g = (size_t)(gt - p);
        const unsigned char *dq = memchr(p + j, '"', g - j), *sq = memchr(p + j, '\'', g - j);
        const unsigned char *qt = dq && (!sq || dq < sq) ? dq : sq;
        if (!qt) {
            j = g;
            break;
        }
        size_t open = (size_t)(qt - p);
        const unsigned char *close = memchr(p + open + 1, *qt, n - open - 1);
        if (!close)
            return n;
        j = (size_t)(close - p) + 1;
    }
    j++;
    int kind = closing                       ? -1
               : strcmp(name, "script") == 0 ? CLOSE_SCRIPT
               : strcmp(name, "style") == 0  ? CLOSE_STYLE
                                             : -1;
    if (kind < 0)
        return j;
    *body_at = j;
    size_t close = find_close(c, kind, j);
    const unsigned char *gt = close < n ? memchr(p + close, '>', n - close) : NULL;
    return gt ? (size_t)(gt - p) + 1 : n;
}

/* Where a raw offset lies: in text content, inside a tag (an attribute value), or in the raw
 * content of a comment, <script> or <style>. */
enum { LEX_TEXT, LEX_TAG, LEX_RAW };

/*
 * The lexical context of raw offset pos. Queries mostly come in increasing order (label hits),
 * so the page is parsed once, from where the last query left it; a query behind that point
 * starts over.
 */
static int lex_context(page_ctx *c, size_t pos)
{
    if (pos < c->lex_pos)
        c->lex_pos = 0;
    /* A long (or never closed) tag, comment or script seen before covers later queries too. */
    if (c->lex_open_end > pos && c->lex_open_at <= pos && c->lex_open_at >= c->lex_pos)
        return pos >= c->lex_open_body ? LEX_RAW : LEX_TAG;
    while (c->lex_pos <= pos && c->lex_pos < c->len) {
        const unsigned char *lt = memchr(c->page + c->lex_pos, '<', c->len - c->lex_pos);
        if (!lt)
            return LEX_TEXT;
        size_t q = (size_t)(lt - c->page), body;
        if (q > pos)
            return LEX_TEXT;
        size_t e = construct_end(c, q, &body);
        if (pos < e) {
            if (q + 1 == e)
                return LEX_TEXT;
            c->lex_open_at = q;
            c->lex_open_end = e;
            c->lex_open_body = body;
            return pos >= body ? LEX_RAW : LEX_TAG;
        }
        c->lex_pos = e;
    }
    return LEX_TEXT;
}

/* Whether raw offset pos lies in text content: a label in a tag, comment, script or style is a
 * decoy, never the block. */
static int in_text(page_ctx *c, size_t pos)
{
    return lex_context(c, pos) == LEX_TEXT;
}

static void text_space(char *o, size_t *n)
{
    if (*n > 0 && o[*n - 1] != ' ')
        o[(*n)++] = ' ';
}

/* Direction marks and zero-width characters that stores put around a label's colon
 * ("Hardcover &rlm; : &lrm;"): nothing in block text. */
static int is_invisible_cp(uint32_t cp)
{
    return cp == 0x200b || cp == 0x200c || cp == 0x200d || cp == 0x200e || cp == 0x200f ||
           cp == 0x2060 || cp == 0xfeff || cp == 0x061c;
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
    size_t far = from; /* furthest byte looked at: the budget pays for scans that fail too */
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
            if (name_at >= end || !(scr_is_alpha(p[name_at]) ||
                                    (!closing && (p[name_at] == '!' || p[name_at] == '?')))) {
                memcpy(o + n, "&lt;", 4); /* a '<' that opens nothing is text */
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
                continue; /* <!DOCTYPE ...>, <?...?> */
            int skip = closing                       ? -1
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
            } else if (used && is_invisible_cp(cp)) {
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
            } else if (used && is_invisible_cp(cp)) {
                i += used;
            } else if (used) {
                memcpy(o + n, p + i, used);
                n += used;
                i += used;
            } else if (ch == 0xa0) {
                text_space(o, &n); /* no-break space of a Latin-1 page */
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
        "</ul>", "</ol>", "</td>", "</tr>",     "</table>",   "</tbody>", "<table>",
        "<tr>",  "<td>",  "<th>",  "<div>",     "</div>",     "</dl>",    "</dd>",
        "<dt>",  "<p>",   "</p>",  "<hr>",      "<h1>",       "<h2>",     "<h3>",
        "<h4>",  "<h5>",  "<h6>",  "<section>", "</section>", "<body>",   "</body>",
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
    int free_list;
} entry;

/* The word for a free list ("#88 Free in Kindle Store") at text[i], in the storefronts'
 * languages: its length, or 0. */
static size_t free_word(const char *t, size_t i, size_t n)
{
    static const char *const words[] = {"Free",     "Gratis",  "Kostenlos", "Gratuit",
                                        "Gratuits", "gratuit", "gratuits",  "Gr\xc3\xa1tis",
                                        "Gratuito", "Darmowe", NULL};
    for (size_t k = 0; words[k]; k++) {
        size_t len = strlen(words[k]);
        if (n - i >= len && memcmp(t + i, words[k], len) == 0 &&
            (i + len == n || t[i + len] == ' '))
            return len;
    }
    return 0;
}

enum { ENTRY_NONE = 0, ENTRY_OK = 1, ENTRY_OVERFLOW = 2 };

/* Matches the rank rule at text[at]: ENTRY_OK with *e filled, ENTRY_NONE when there is no
 * entry, ENTRY_OVERFLOW when there is one whose number has more digits than a rank can have. */
static int match_entry(page_ctx *c, const char *text, size_t n, size_t at, entry *e)
{
    int rc = pcre2_match(c->src->rank, (PCRE2_SPTR)text, n, at, 0, c->md, c->src->match_ctx);
    if (rc < 0)
        return ENTRY_NONE; /* no match, or a limit hit: not an entry */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    if (ov[1] <= at || ov[2] == PCRE2_UNSET)
        return ENTRY_NONE;
    e->rank = scr_parse_rank(text + ov[2], ov[3] - ov[2]);
    if (e->rank == SCR_RANK_OVERFLOW)
        return ENTRY_OVERFLOW;
    if (e->rank < 0)
        return ENTRY_NONE;
    e->free_list = 0;
    if (ov[4] == PCRE2_UNSET || ov[5] < ov[4]) {
        e->cat_at = e->cat_len = 0;
    } else {
        e->cat_at = ov[4];
        e->cat_len = ov[5] - ov[4];
        /* A free list keeps its word: "Free in Kindle Store" is another list than "Kindle Store". */
        for (size_t i = ov[3]; ov[3] < ov[4] && i < ov[4]; i++) {
            size_t len = free_word(text, i, ov[4]);
            if (len && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '>')) {
                e->free_list = 1;
                e->cat_len += e->cat_at - i;
                e->cat_at = i;
                break;
            }
        }
    }
    e->end = ov[1];
    return ENTRY_OK;
}

/* The category name of an entry, malloc'd (maybe ""), NULL when out of memory. */
static char *entry_category(const char *text, const entry *e, int overall)
{
    char *name = scr_clean_text(text + e->cat_at, e->cat_len);
    if (name)
        scr_ladder_step(name, overall);
    return name;
}

/* The rest of a label the pattern did not take ("... vendidos| de Amazon:", "... مبيع|اً:"):
 * up to LABEL_TAIL bytes of words and tags before a colon, when no number comes first. Returns
 * where the gap after the label starts. */
#define LABEL_TAIL 96
static size_t skip_label_tail(const char *t, size_t n)
{
    for (size_t i = 0; i < n && i < LABEL_TAIL; i++) {
        if ((t[i] >= '0' && t[i] <= '9') || t[i] == '#' ||
            ((unsigned char)t[i] == 0xd9 && i + 1 < n && (unsigned char)t[i + 1] >= 0xa0 &&
             (unsigned char)t[i + 1] <= 0xa9))
            return 0;
        if (t[i] == ':')
            return i + 1;
        if (t[i] == '<') {
            const char *gt = memchr(t + i, '>', n - i);
            if (!gt)
                return 0;
            i = (size_t)(gt - t);
        }
    }
    return 0;
}

/*
 * Reads the block whose label ends at raw offset `from`. 1 when it holds a rank (out has rank,
 * rank_category and categories), 0 when this label does not open a block, BLOCK_OVERFLOW when
 * its first rank has too many digits, -1 out of memory.
 */
enum { BLOCK_OVERFLOW = 2 };
static int read_block(page_ctx *c, size_t from, observation *out)
{
    size_t n = normalize(c, from, FIRST_OUT_CAP, FIRST_RAW_CAP);
    size_t at = skip_gap(c->text, skip_label_tail(c->text, n), n, 0);
    entry e;
    int got = at == SIZE_MAX ? ENTRY_NONE : match_entry(c, c->text, n, at, &e);
    if (got != ENTRY_OK)
        return got == ENTRY_OVERFLOW ? BLOCK_OVERFLOW : 0;
    /* A real block: normalize it whole. Its start is the same text, so `at` still holds. */
    n = normalize(c, from, BLOCK_OUT_CAP, BLOCK_RAW_CAP);
    if (match_entry(c, c->text, n, at, &e) != ENTRY_OK)
        return 0;
    char *category = entry_category(c->text, &e, 1);
    if (!category)
        return -1;
    out->rank = e.rank;
    out->rank_free = e.free_list;
    free(out->rank_category);
    out->rank_category = NULL;
    if (*category)
        out->rank_category = category;
    else
        free(category);
    while (out->ncategories < MAX_CATEGORIES) {
        at = skip_gap(c->text, e.end, n, 1);
        if (at == SIZE_MAX || match_entry(c, c->text, n, at, &e) != ENTRY_OK)
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

/* Tries the label hits of block_start in page[from..to) (to = the page's length for the whole
 * page), in order. 1 read, 0 none, BLOCK_OVERFLOW, -1 out of memory. */
static int labels_in(page_ctx *c, size_t from, size_t to, observation *out)
{
    size_t start = from;
    while (start <= to && c->budget > 0) {
        int rc = pcre2_match(c->src->block_start, (PCRE2_SPTR)c->page, to, start, 0, c->md,
                             c->src->match_ctx);
        if (rc < 0)
            return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t label_at = ov[0], label_end = ov[1];
        start = label_end > label_at ? label_end : label_at + 1;
        if (!in_text(c, label_at))
            continue; /* in a comment, script, style or attribute: a decoy */
        if (!c->text && !(c->text = malloc(BLOCK_OUT_CAP)))
            return -1;
        int got = read_block(c, label_end, out);
        if (got != 0) {
            c->block_at = label_at;
            return got;
        }
    }
    return 0;
}

/* The link every rank block has ("See Top 100 in Books", the category ladders) and that is rare
 * elsewhere on a page: the built-in labels are looked for just before it first. */
#define BESTSELLERS_LINK "/gp/bestsellers/"
#define LINK_WINDOW 8192 /* label to its first link: under 1 KB on every page seen */

/*
 * Finds the first Best Sellers Rank block. With the built-in label table the windows before the
 * store's bestseller links are tried first (a few KB instead of the whole page for the label
 * scan), then the whole page. 1 read, 0 none, BLOCK_OVERFLOW, -1 out of memory.
 */
static int find_rank(page_ctx *c, observation *out)
{
    if (c->src->builtin_labels) {
        size_t from = 0, done_to = 0;
        for (int links = 0; links < 64 && from < c->len; links++) {
            const unsigned char *l = find_literal(c->page + from, c->len - from, BESTSELLERS_LINK,
                                                  sizeof BESTSELLERS_LINK - 1);
            if (!l)
                break;
            size_t at = (size_t)(l - c->page);
            size_t win = at > LINK_WINDOW ? at - LINK_WINDOW : 0;
            if (win < done_to)
                win = done_to;
            int got = labels_in(c, win, at, out);
            if (got != 0)
                return got;
            done_to = at;
            from = at + 1;
        }
    }
    return labels_in(c, 0, c->len, out);
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
            c->title_at = ov[0];
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

/* ---- format ---------------------------------------------------------------------------------- */

/* Words the stores use for an edition's binding, by format (formats.def, in order). */
static const struct {
    const char *word;
    obs_format format;
} format_words[] = {
#define FORMAT_WORD(text, fmt) {text, fmt},
#include "formats.def"
};

/* The format a short text names ("Hardcover – 7 April 2016", "(Anglais) Broché"), or UNKNOWN. */
static obs_format classify_format(const char *t, size_t n)
{
    for (size_t k = 0; k < sizeof format_words / sizeof format_words[0]; k++)
        if (memmem(t, n, format_words[k].word, strlen(format_words[k].word)))
            return format_words[k].format;
    return OBS_FORMAT_UNKNOWN;
}

/* The text of raw page bytes from..from+max, cleaned (tags dropped); classified. */
static obs_format format_near(page_ctx *c, size_t from, size_t max)
{
    size_t n = c->len - from < max ? c->len - from : max;
    char *t = scr_clean_text((const char *)c->page + from, n);
    obs_format f = t ? classify_format(t, strlen(t)) : OBS_FORMAT_UNKNOWN;
    free(t);
    return f;
}

/* Where needle first occurs in page[from..to), or SIZE_MAX. */
static size_t find_in(const page_ctx *c, size_t from, size_t to, const char *needle)
{
    if (to > c->len)
        to = c->len;
    if (from >= to)
        return SIZE_MAX;
    const unsigned char *hit = find_literal(c->page + from, to - from, needle, strlen(needle));
    return hit ? (size_t)(hit - c->page) : SIZE_MAX;
}

#define TITLE_AREA 8192           /* subtitle and binding follow the title within this */
#define DETAILS_AREA (64u * 1024) /* the product details before the rank block */

/*
 * The edition's format where the page says it: next to the title (the subtitle line "Hardcover –
 * 7 April 2016", or the span after the title on older pages), else the label of the pages line
 * in the product details ("Paperback: 272 pages", "Taschenbuch : 274 Seiten"), looked for before
 * the rank block (or after the title when there is none).
 */
static obs_format find_format(page_ctx *c)
{
    if (c->title_at < c->len) {
        size_t t = c->title_at, area = t + TITLE_AREA;
        static const char *const anchors[] = {"id=\"productSubtitle\"", "id=\"productBinding\"",
                                              "id=\"bookEdition\"", NULL};
        for (size_t k = 0; anchors[k]; k++) {
            size_t a = find_in(c, t, area, anchors[k]);
            size_t gt = a == SIZE_MAX ? SIZE_MAX : find_in(c, a, area, ">");
            obs_format f = gt == SIZE_MAX ? OBS_FORMAT_UNKNOWN : format_near(c, gt + 1, 200);
            if (f != OBS_FORMAT_UNKNOWN)
                return f;
        }
        /* Older pages: the spans after the title inside <h1 id="title">. */
        size_t h1 = find_in(c, t, area, "</h1>"), span = find_in(c, t, area, "</span>");
        if (h1 != SIZE_MAX && span != SIZE_MAX && span < h1) {
            obs_format f = format_near(c, span + 7, h1 - span - 7);
            if (f != OBS_FORMAT_UNKNOWN)
                return f;
        }
    }
    size_t from, to;
    if (c->block_at < c->len) {
        to = c->block_at;
        from = to > DETAILS_AREA ? to - DETAILS_AREA : 0;
    } else {
        from = c->title_at < c->len ? c->title_at : 0;
        to = c->len;
    }
    static const char *const labels[] = {"<li><b>", "a-text-bold\">", NULL};
    for (size_t k = 0; labels[k]; k++) {
        size_t at = from;
        for (int tries = 0; tries < 64; tries++) {
            size_t l = find_in(c, at, to, labels[k]);
            if (l == SIZE_MAX)
                break;
            at = l + strlen(labels[k]);
            size_t colon = find_in(c, at, at + 80, ":");
            if (colon == SIZE_MAX)
                continue;
            char *text = scr_clean_text((const char *)c->page + at, colon - at);
            obs_format f = text && strlen(text) < 40 ? classify_format(text, strlen(text))
                                                     : OBS_FORMAT_UNKNOWN;
            free(text);
            if (f != OBS_FORMAT_UNKNOWN)
                return f;
        }
    }
    return OBS_FORMAT_UNKNOWN;
}

/* Whether a marker matches in the page's text or tags (a form action, an input's id, a visible
 * sentence): a robot check shows it there, while a product page may only mention it in a script
 * or a comment. */
#define MARKER_TRIES 16
static int shown_marker(page_ctx *c, const scr_marker_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        size_t start = 0;
        for (int tries = 0; tries < MARKER_TRIES && start <= c->len; tries++) {
            if (pcre2_match(list->code[i], (PCRE2_SPTR)c->page, c->len, start, 0, c->md,
                            c->src->match_ctx) < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
            size_t at = ov[0];
            start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
            if (lex_context(c, at) != LEX_RAW)
                return 1;
        }
    }
    return 0;
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
    out->rank_free = 0;
    out->format = OBS_FORMAT_UNKNOWN;
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
    case SCR_OK:
        return "ok";
    case SCR_NOMEM:
        return "out of memory";
    case SCR_INVALID:
        return "invalid argument";
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
        return obs_set_str(&out->error, http_status == 403 ? "HTTP 403 (refused)"
                                                           : "HTTP 429 (too many requests)")
                   ? SCR_NOMEM
                   : SCR_OK;
    }

    scr_err result = SCR_OK;
    page_ctx c = {.src = src,
                  .page = (const unsigned char *)(page ? page : ""),
                  .len = page ? len : 0,
                  .budget = NORMALIZE_BUDGET};
    c.block_at = c.title_at = c.len;
    c.md = pcre2_match_data_create(OVECTOR_PAIRS, NULL);
    if (!c.md)
        return SCR_NOMEM;

    /* Any other answer than 2xx (or a page on its own) is blocked or an error; never data. */
    if (http_status != 0 && (http_status < 200 || http_status > 299)) {
        char msg[48];
        int captcha = any_marker(&c, &src->blocked);
        if (captcha)
            out->status = OBS_BLOCKED;
        else
            out->status = OBS_ERROR;
        if (snprintf(msg, sizeof msg, "HTTP %d%s", http_status,
                     captcha ? " with a captcha page" : "") < 0)
            msg[0] = '\0';
        result = obs_set_str(&out->error, msg[0] ? msg : "unexpected HTTP status") ? SCR_NOMEM
                                                                                   : SCR_OK;
        goto done;
    }

    if (shown_marker(&c, &src->blocked)) {
        out->status = OBS_BLOCKED;
        result = obs_set_str(&out->error, "captcha page (the store asked us to prove we are human)")
                     ? SCR_NOMEM
                     : SCR_OK;
        goto done;
    }
    /* The markers' lexing went wherever they matched; the label scan starts over. */
    c.lex_pos = 0;
    c.lex_open_end = 0;
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
    if (rc == BLOCK_OVERFLOW) {
        result = set_error(out,
                           "the rank has more digits than any rank can have: page not understood");
    } else if (rc > 0) {
        out->status = OBS_OK;
    } else if (out->title) {
        out->status = OBS_NO_RANK;
    } else if (any_marker(&c, &src->not_found)) {
        out->status = OBS_NOT_FOUND;
    } else {
        result = set_error(out, "page not understood: no product title or rank");
    }
    if (result == SCR_OK && (out->status == OBS_OK || out->status == OBS_NO_RANK))
        out->format = find_format(&c);

done:
    if (result != SCR_OK || (out->status != OBS_OK && out->status != OBS_NO_RANK))
        reset_result(out);
    free(c.text);
    pcre2_match_data_free(c.md);
    return result;
}
