/*
 * text.h - the scraper's text processing (private to scraper/; unit tests may include it): HTML
 * entities, the clean-up that turns captured page bytes into a title or category name, category
 * ladders, and numbers as the stores write them. Page classification and the reading of the rank
 * block stay in extract.c; what valid UTF-8 is stays in common/utf8.c.
 *
 * Pure functions over the caller's bytes: any thread.
 */
#ifndef BOOKRANK_SCRAPER_TEXT_H
#define BOOKRANK_SCRAPER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/compiler.h"

#define SCR_TEXT_CAP 1000               /* bytes of a title or category name */
#define SCR_TEXT_INPUT_CAP (64u * 1024) /* captured bytes looked at to build one */
#define SCR_RANK_MAX_DIGITS 15          /* longer digit runs are not a rank */

/* ASCII classes, as HTML tokenising needs them (locale-independent, unlike <ctype.h>). */
static inline int scr_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline int scr_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int scr_is_alnum(unsigned char c)
{
    return scr_is_alpha(c) || (c >= '0' && c <= '9');
}

/* Blank space as far as titles, categories and numbers are concerned: C0 and C1 controls,
 * DEL, U+00A0 and the Unicode spaces. */
int scr_is_space_cp(uint32_t cp);

/* The no-break and fixed-width spaces (U+00A0, U+2000-U+200A, U+202F) that block text folds
 * into a plain space like ASCII blank space. */
int scr_is_nbsp_cp(uint32_t cp);

/*
 * Decodes the entity at s[0] == '&' (s[0..n) available). Returns the bytes it spans, with its code
 * point in *cp, or 0 when it is not one we know (the '&' is then ordinary text). Named entities
 * need their ';'; numeric ones (&#...; &#x...;) may omit it as browsers allow, map 128-159 as
 * Windows-1252 does, and become U+FFFD when they name 0, a surrogate or more than U+10FFFF. The
 * UTF-8 encoding of *cp is never longer than the entity as written.
 */
BR_MUST_CHECK size_t scr_decode_entity(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * Title or category text from captured page bytes in[0..n) (the first SCR_TEXT_INPUT_CAP of
 * them): tags dropped, entities decoded, blank space and controls collapsed to single spaces and
 * trimmed, soft hyphens, zero-width spaces and BOMs dropped, invalid UTF-8 replaced by U+FFFD
 * (common/utf8.h rules), cut at SCR_TEXT_CAP bytes on a character boundary. Returns a malloc'd
 * string (caller frees), possibly "", or NULL when out of memory.
 */
BR_MUST_CHECK char *scr_clean_text(const char *in, size_t n);

/*
 * Reduces a category ladder ("Books > Computers > C", '>' or U+203A) to one step, in place: the
 * last, most specific one, or with `first` the first one (the overall rank's top-level
 * category). Also cuts a "(See Top 100 in ...)" (English, German, French) that a store put
 * inside the category's link. s is clean_text output.
 */
void scr_ladder_step(char *s, int first);

/* The rank in a number as written ("5,838", "13.222", "1 234", "1'234", no-break spaces as
 * separators, Arabic-Indic digits with the Arabic separators as amazon.sa writes them); -1 when
 * it is not one (no digits, other characters, 0), SCR_RANK_OVERFLOW when it has more digits
 * than a rank can have. */
#define SCR_RANK_OVERFLOW (-2)
BR_MUST_CHECK int64_t scr_parse_rank(const char *s, size_t n);

#endif
