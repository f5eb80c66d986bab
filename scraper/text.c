/*
 * text.c - text processing for the extractor: entities, output text, category ladders, numbers
 * (see text.h). What valid UTF-8 is belongs to common/utf8.c; this file decides what becomes
 * blank space, what is invisible, and where text is cut.
 */
#include "text.h"

#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"

int scr_is_space_cp(uint32_t cp)
{
    return cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

int scr_is_nbsp_cp(uint32_t cp)
{
    return cp == 0xa0 || cp == 0x202f || (cp >= 0x2000 && cp <= 0x200a);
}

/* ---- entities -------------------------------------------------------------------------------- */

/* HTML's names for U+00A0..U+00FF, in order. */
static const char *const latin1_names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

static const struct {
    const char *name;
    uint32_t cp;
} other_names[] = {
    {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},     {"ndash", 0x2013},  {"mdash", 0x2014},  {"lsquo", 0x2018},
    {"rsquo", 0x2019},  {"sbquo", 0x201a},  {"ldquo", 0x201c},  {"rdquo", 0x201d},
    {"bdquo", 0x201e},  {"hellip", 0x2026}, {"bull", 0x2022},   {"trade", 0x2122},
    {"euro", 0x20ac},   {"dagger", 0x2020}, {"Dagger", 0x2021}, {"permil", 0x2030},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203a}, {"OElig", 0x152},   {"oelig", 0x153},
    {"Scaron", 0x160},  {"scaron", 0x161},  {"Yuml", 0x178},    {"fnof", 0x192},
    {"circ", 0x2c6},    {"tilde", 0x2dc},   {"ensp", 0x2002},   {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200c},   {"zwj", 0x200d},    {"lrm", 0x200e},
    {"rlm", 0x200f},    {"prime", 0x2032},  {"Prime", 0x2033},  {"minus", 0x2212},
    {"rarr", 0x2192},   {"larr", 0x2190},   {"hyphen", 0x2010}, {"NewLine", '\n'},
    {"Tab", '\t'},
};

/* What HTML makes of &#128;..&#159; (Windows-1252, as browsers do); 0 = stays a control. */
static const uint16_t cp1252_high[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

size_t scr_decode_entity(const unsigned char *s, size_t n, uint32_t *cp)
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
    while (i < n && i <= 10 && scr_is_alnum(s[i]))
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

/* ---- output text ----------------------------------------------------------------------------- */

char *scr_clean_text(const char *in, size_t n)
{
    if (n > SCR_TEXT_INPUT_CAP)
        n = SCR_TEXT_INPUT_CAP;
    const unsigned char *s = (const unsigned char *)in;
    /* Pass 1: drop tags, decode entities. An entity never encodes longer than it is written. */
    unsigned char *tmp = malloc(n + 1);
    char *out = malloc(SCR_TEXT_CAP + 1);
    if (!tmp || !out) {
        free(tmp);
        free(out);
        return NULL;
    }
    size_t t = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '<' && i + 1 < n &&
            (scr_is_alpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
            const unsigned char *gt = memchr(s + i, '>', n - i);
            if (!gt)
                break;
            i = (size_t)(gt - s) + 1;
            continue;
        }
        uint32_t cp;
        size_t used = s[i] == '&' ? scr_decode_entity(s + i, n - i, &cp) : 0;
        if (used) {
            t += utf8_encode(tmp + t, cp);
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
        size_t used = utf8_decode(tmp + i, t - i, &cp);
        if (!used) {
            cp = 0xfffd;
            used = 1;
        }
        i += used;
        if (scr_is_space_cp(cp)) {
            pending_space = 1;
            continue;
        }
        if (cp == 0xad || cp == 0x200b || cp == 0xfeff)
            continue; /* invisible: soft hyphen, zero-width space, BOM */
        unsigned char enc[4];
        size_t len = utf8_encode(enc, cp);
        size_t space = pending_space && o > 0;
        if (o + space + len > SCR_TEXT_CAP)
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

/* ---- ladders and numbers --------------------------------------------------------------------- */

static int is_ladder_sep(const char *s, size_t i, size_t n)
{
    if (s[i] == '>')
        return 1;
    return i + 3 <= n && memcmp(s + i, "\xe2\x80\xba", 3) == 0 ? 3 : 0; /* U+203A */
}

void scr_ladder_step(char *s, int first)
{
    static const char *const see_top[] = {
        "(See Top",
        "(Siehe Top",
        "(Voir les",
        "(Voir le Top",
        "(Ver el Top",
        "(Ver los",
        "(Visualizza i Top",
        "(Top 100 in",
        "(Conhe\xc3\xa7"
        "a o Top",
        "(Zobacz Top",
        "(Visa topp",
    };
    for (size_t k = 0; k < sizeof see_top / sizeof see_top[0]; k++) {
        char *cut = strstr(s, see_top[k]);
        if (cut)
            *cut = '\0';
    }
    size_t n = strlen(s);
    for (;;) { /* a dangling separator at either end is not a step */
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

int64_t scr_parse_rank(const char *s, size_t n)
{
    int64_t v = 0;
    int digits = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        int d = -1;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c == 0xd9 && i + 1 < n && u[i + 1] >= 0xa0 && u[i + 1] <= 0xa9) {
            d = u[++i] - 0xa0; /* Arabic-Indic digits U+0660-U+0669 */
        } else if (c == 0xdb && i + 1 < n && u[i + 1] >= 0xb0 && u[i + 1] <= 0xb9) {
            d = u[++i] - 0xb0; /* Extended Arabic-Indic U+06F0-U+06F9 */
        } else if (c == 0xd9 && i + 1 < n && (u[i + 1] == 0xab || u[i + 1] == 0xac)) {
            i++; /* Arabic separators U+066B, U+066C */
            continue;
        } else if (c != ',' && c != '.' && c != ' ' && c != '\'' && c != 0xc2 && c != 0xa0 &&
                   c != 0xe2 && c != 0x80 && c != 0xaf) {
            return -1; /* the bytes above are those of U+00A0 and U+202F */
        }
        if (d < 0)
            continue;
        if (++digits > SCR_RANK_MAX_DIGITS)
            return SCR_RANK_OVERFLOW;
        v = v * 10 + d;
    }
    return digits && v > 0 ? v : -1;
}
