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
 * U+FFFD, capped at TEXT_CAP bytes on a character boundary.
 */
#include "source_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT_CAP 1000                 /* bytes of a title or category name */
#define TEXT_INPUT_CAP (64u * 1024)   /* captured bytes looked at to build one */
#define FIRST_OUT_CAP 1024            /* block text tried for the first entry */
#define FIRST_RAW_CAP (64u * 1024)    /* raw bytes that may hold it (long blank runs) */
#define BLOCK_OUT_CAP (16u * 1024)    /* block text of a whole block */
#define BLOCK_RAW_CAP (256u * 1024)
#define TAG_RAW_CAP 4096              /* a longer tag ends the window: no real block has one */
#define NORMALIZE_BUDGET (32u * 1024 * 1024) /* raw bytes normalized per page, all hits */
#define PAREN_CAP 512                 /* longest "(See Top 100 in ...)" skipped between entries */
#define MAX_CATEGORIES 64
#define MAX_TITLE_TRIES 16
#define MAX_RANK_DIGITS 15
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

/* ---- small helpers ------------------------------------------------------------------------ */

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when s does not start one. */
static size_t utf8_len(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static size_t put_utf8(unsigned char *b, uint32_t cp)
{
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    b[0] = (unsigned char)(0xf0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    b[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Blank space as far as titles, categories and numbers are concerned. */
static int is_space_cp(uint32_t cp)
{
    return cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* ---- entities ----------------------------------------------------------------------------- */

/* HTML's names for U+00A0..U+00FF, in order. */
static const char *const latin1_names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

static const struct {
    const char *name;
    uint32_t cp;
} other_names[] = {
    {"amp", '&'},       {"lt", '<'},         {"gt", '>'},         {"quot", '"'},
    {"apos", '\''},     {"ndash", 0x2013},   {"mdash", 0x2014},   {"lsquo", 0x2018},
    {"rsquo", 0x2019},  {"sbquo", 0x201a},   {"ldquo", 0x201c},   {"rdquo", 0x201d},
    {"bdquo", 0x201e},  {"hellip", 0x2026},  {"bull", 0x2022},    {"trade", 0x2122},
    {"euro", 0x20ac},   {"dagger", 0x2020},  {"Dagger", 0x2021},  {"permil", 0x2030},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203a},  {"OElig", 0x152},    {"oelig", 0x153},
    {"Scaron", 0x160},  {"scaron", 0x161},   {"Yuml", 0x178},     {"fnof", 0x192},
    {"circ", 0x2c6},    {"tilde", 0x2dc},    {"ensp", 0x2002},    {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200c},    {"zwj", 0x200d},     {"lrm", 0x200e},
    {"rlm", 0x200f},    {"prime", 0x2032},   {"Prime", 0x2033},   {"minus", 0x2212},
    {"rarr", 0x2192},   {"larr", 0x2190},    {"hyphen", 0x2010},  {"NewLine", '\n'},
    {"Tab", '\t'},
};

/* What HTML makes of &#128;..&#159; (Windows-1252, as browsers do); 0 = stays a control. */
static const uint16_t cp1252_high[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
    0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

/*
 * Decodes the entity starting at s[0] == '&'. Returns the bytes it spans and its code point in
 * *cp, or 0 when it is not one we know (the '&' is then ordinary text). Numeric references may
 * omit the ';' as browsers allow; named ones need it.
 */
static size_t decode_entity(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n < 3 || s[0] != '&')
        return 0;
    if (s[1] == '#') {
        size_t i = 2;
        int hex = 0;
        if (i < n && (s[i] == 'x' || s[i] == 'X'))
            hex = 1, i++;
        size_t digits_from = i;
        uint32_t v = 0;
        while (i < n && i - digits_from < 8) {
            unsigned char c = s[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            v = v * (hex ? 16u : 10u) + (uint32_t)d;
            i++;
        }
        if (i == digits_from)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        if (v >= 0x80 && v <= 0x9f && cp1252_high[v - 0x80])
            v = cp1252_high[v - 0x80];
        if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            v = 0xfffd;
        *cp = v;
        return i;
    }
    size_t i = 1;
    while (i < n && i <= 10 && is_alnum(s[i]))
        i++;
    if (i == 1 || i >= n || s[i] != ';')
        return 0;
    size_t len = i - 1;
    for (size_t k = 0; k < 96; k++) {
        if (strlen(latin1_names[k]) == len && memcmp(latin1_names[k], s + 1, len) == 0) {
            *cp = 0xa0 + (uint32_t)k;
            return i + 1;
        }
    }
    for (size_t k = 0; k < sizeof other_names / sizeof other_names[0]; k++) {
        if (strlen(other_names[k].name) == len && memcmp(other_names[k].name, s + 1, len) == 0) {
            *cp = other_names[k].cp;
            return i + 1;
        }
    }
    return 0;
}

/* ---- output text -------------------------------------------------------------------------- */

/*
 * Title or category text from captured page bytes (see the top comment). Returns a malloc'd
 * string, possibly "", or NULL when out of memory.
 */
static char *clean_text(const char *in, size_t n)
{
    if (n > TEXT_INPUT_CAP)
        n = TEXT_INPUT_CAP;
    const unsigned char *s = (const unsigned char *)in;
    /* Pass 1: drop tags, decode entities. An entity never encodes longer than it is written. */
    unsigned char *tmp = malloc(n + 1);
    char *out = malloc(TEXT_CAP + 1);
    if (!tmp || !out) {
        free(tmp);
        free(out);
        return NULL;
    }
    size_t t = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '<' && i + 1 < n &&
            (is_alpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
            const unsigned char *gt = memchr(s + i, '>', n - i);
            if (!gt)
                break;
            i = (size_t)(gt - s) + 1;
            continue;
        }
        uint32_t cp;
        size_t used = s[i] == '&' ? decode_entity(s + i, n - i, &cp) : 0;
        if (used) {
            t += put_utf8(tmp + t, cp);
            i += used;
        } else {
            tmp[t++] = s[i++];
        }
    }
    /* Pass 2: validate UTF-8, collapse blank space, trim, cap on a character boundary. */
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < t;) {
        uint32_t cp;
        size_t used = utf8_len(tmp + i, t - i, &cp);
        if (!used) {
            cp = 0xfffd;
            used = 1;
        }
        i += used;
        if (is_space_cp(cp)) {
            pending_space = 1;
            continue;
        }
        if (cp == 0xad || cp == 0x200b || cp == 0xfeff)
            continue;                       /* invisible: soft hyphen, zero-width space, BOM */
        unsigned char enc[4];
        size_t len = put_utf8(enc, cp);
        size_t space = pending_space && o > 0;
        if (o + space + len > TEXT_CAP)
            break;
        if (space)
            out[o++] = ' ';
        memcpy(out + o, enc, len);
        o += len;
        pending_space = 0;
    }
    out[o] = '\0';
    free(tmp);
    return out;
}

static int is_ladder_sep(const char *s, size_t i, size_t n)
{
    if (s[i] == '>')
        return 1;
    return i + 3 <= n && memcmp(s + i, "\xe2\x80\xba", 3) == 0 ? 3 : 0;   /* U+203A */
}

/*
 * Reduces a category ladder ("Books > Computers > C") to one step, in place: the last, most
 * specific one for category ranks, the first (the top-level category) for the overall rank.
 * Also drops a "(See Top 100 in ...)" that a store put inside the category's link.
 */
static void ladder_step(char *s, int first)
{
    static const char *const see_top[] = {"(See Top", "(Siehe Top", "(Voir les"};
    for (size_t k = 0; k < sizeof see_top / sizeof see_top[0]; k++) {
        char *cut = strstr(s, see_top[k]);
        if (cut)
            *cut = '\0';
    }
    size_t n = strlen(s);
    for (;;) {                      /* a dangling separator at either end is not a step */
        while (n > 0 && s[n - 1] == ' ')
            n--;
        if (n > 0 && s[n - 1] == '>')
            n--;
        else if (n >= 3 && memcmp(s + n - 3, "\xe2\x80\xba", 3) == 0)
            n -= 3;
        else
            break;
    }
    s[n] = '\0';
    size_t from = 0, to = n;
    for (size_t i = 0; i < n; i++) {
        int sep = is_ladder_sep(s, i, n);
        if (!sep)
            continue;
        if (first && i > 0) {
            to = i;
            break;
        }
        from = i + (size_t)sep;
    }
    while (from < to && s[from] == ' ')
        from++;
    while (to > from && s[to - 1] == ' ')
        to--;
    memmove(s, s + from, to - from);
    s[to - from] = '\0';
}

/* The rank in a number as written ("5,838", "13.222", "1 234", "1'234"); -1 when not one. */
static int64_t parse_rank(const char *s, size_t n)
{
    int64_t v = 0;
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > MAX_RANK_DIGITS)
                return -1;
            v = v * 10 + (c - '0');
        } else if (c != ',' && c != '.' && c != ' ' && c != '\'' && c != 0xc2 && c != 0xa0 &&
                   c != 0xe2 && c != 0x80 && c != 0xaf) {
            return -1;              /* the bytes above are those of U+00A0 and U+202F */
        }
    }
    return digits && v > 0 ? v : -1;
}

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
        if (is_blank(ch)) {
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
            if (name_at >= end || !(is_alpha(p[name_at]) || (!closing && (p[name_at] == '!' ||
                                                                          p[name_at] == '?')))) {
                memcpy(o + n, "&lt;", 4);   /* a '<' that opens nothing is text */
                n += 4;
                i++;
                continue;
            }
            size_t j = name_at, name_len = 0;
            char name[17];
            while (j < end && (is_alnum(p[j]) || p[j] == '-') && j - i < TAG_RAW_CAP) {
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
            size_t used = decode_entity(p + i, end - i, &cp);
            if (used && is_space_cp(cp)) {
                text_space(o, &n);
                i += used;
            } else if (used && (cp == '<' || cp == '&')) {
                /* Kept as references so that block text has no '<' outside its tags; clean_text
                 * decodes them. */
                memcpy(o + n, cp == '<' ? "&lt;" : "&amp;", cp == '<' ? 4 : 5);
                n += cp == '<' ? 4 : 5;
                i += used;
            } else if (used) {
                n += put_utf8((unsigned char *)o + n, cp);
                i += used;
            } else {
                o[n++] = '&';
                i++;
            }
        } else if (ch >= 0x80) {
            uint32_t cp;
            size_t used = utf8_len(p + i, end - i, &cp);
            if (used && (cp == 0xa0 || cp == 0x202f || (cp >= 0x2000 && cp <= 0x200a))) {
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
    e->rank = parse_rank(text + ov[2], ov[3] - ov[2]);
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
    char *name = clean_text(text + e->cat_at, e->cat_len);
    if (name)
        ladder_step(name, overall);
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
            char *title = clean_text((const char *)c->page + ov[2], ov[3] - ov[2]);
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

static int set_error(observation *out, const char *message)
{
    out->status = OBS_ERROR;
    return obs_set_str(&out->error, message);
}

int scr_extract(const scr_source *src, int http_status, const char *page, size_t len,
                observation *out)
{
    if (!out)
        return -1;
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
        return 0;
    }
    if (http_status == 403 || http_status == 429) {
        out->status = OBS_BLOCKED;
        return 0;
    }

    int result = 0;
    page_ctx c = {.src = src,
                  .page = (const unsigned char *)(page ? page : ""),
                  .len = page ? len : 0,
                  .budget = NORMALIZE_BUDGET};
    c.md = pcre2_match_data_create(OVECTOR_PAIRS, NULL);
    if (!c.md)
        return -1;

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
        result = -1;
        goto done;
    }
    int oom = 0;
    out->title = find_title(&c, &oom);
    if (oom) {
        result = -1;
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
    if (result < 0 || (out->status != OBS_OK && out->status != OBS_NO_RANK))
        reset_result(out);
    free(c.text);
    pcre2_match_data_free(c.md);
    return result;
}
