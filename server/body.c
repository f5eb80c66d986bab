/*
 * body.c - request-body parsing: the JSON and text/plain ISBN lists (see body.h). jansson is
 * used here and nowhere else in server/. Pure functions: any thread.
 */
#include "body.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/grow.h"
#include "../common/utf8.h"

#define BODY_MEDIA_TYPE_MAX 64
#define BODY_REASON_MAX 160

/* One bad entry as kept until the list is freed. One byte past RENDER_ECHO_MAX is enough for
 * render_error to cut the echo exactly where it would cut the whole input. */
struct body_detail_text {
    size_t index;
    int is_text;
    size_t len;
    char input[RENDER_ECHO_MAX + 1];
    char reason[BODY_REASON_MAX];
};

typedef struct parse_state {
    body_list *l;
    size_t items_cap;
    size_t ntext, text_cap;
    int nomem;
} parse_state;

const char *body_strerror(body_err err)
{
    switch (err) {
    case BODY_OK:
        return "ok";
    case BODY_INVALID_JSON:
        return "invalid JSON";
    case BODY_INVALID:
        return "not an ISBN list";
    case BODY_INVALID_ISBN:
        return "invalid ISBNs";
    case BODY_TOO_MANY:
        return "too many ISBNs";
    case BODY_UNSUPPORTED_TYPE:
        return "unsupported media type";
    case BODY_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}

void body_list_free(body_list *l)
{
    if (!l)
        return;
    free(l->items);
    free(l->details);
    free(l->text);
    memset(l, 0, sizeof *l);
}

void body_media_type(const char *ct, char *out, size_t outlen)
{
    size_t n = 0;
    for (; ct && *ct && *ct != ';' && n + 1 < outlen; ct++)
        if (!isspace((unsigned char)*ct))
            out[n++] = (char)tolower((unsigned char)*ct);
    out[n] = '\0';
}

int body_is_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)body[i]))
            return 0;
    return 1;
}

static body_err fail(body_err err, const char *message, char *why, size_t whylen)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", message);
    return err;
}

static void add_detail(parse_state *st, size_t index, const char *input, size_t len,
                       const char *reason)
{
    body_list *l = st->l;
    body_detail_text *grown = grow_to(l->text, &st->text_cap, st->ntext + 1, sizeof *l->text);
    if (!grown) {
        st->nomem = 1;
        return;
    }
    l->text = grown;
    body_detail_text *d = &l->text[st->ntext++];
    d->index = index;
    d->is_text = input != NULL;
    d->len = input ? (len < sizeof d->input ? len : sizeof d->input) : 0;
    if (d->len)
        memcpy(d->input, input, d->len);
    snprintf(d->reason, sizeof d->reason, "%s", reason);
}

static void push(parse_state *st, size_t index, const char *text, size_t len)
{
    char why[BODY_REASON_MAX];
    book_id parsed;
    if (id_parse(text, len, &parsed, why, sizeof why) != ID_OK) {
        add_detail(st, index, text, len, why);
        return;
    }
    body_list *l = st->l;
    book_id *grown = grow_to(l->items, &st->items_cap, l->n + 1, sizeof *l->items);
    if (!grown) {
        st->nomem = 1;
        return;
    }
    l->items = grown;
    l->items[l->n++] = parsed;
}

static void forget_details(parse_state *st)
{
    free(st->l->text);
    st->l->text = NULL;
    st->ntext = st->text_cap = 0;
}

static body_err parse_json(parse_state *st, const char *body, size_t len, size_t cap, char *why,
                           size_t whylen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return fail(BODY_INVALID_JSON, jerr.text, why, whylen);
    /* "isbns" for any id form, as the contract names it; "ids" reads better and works too. */
    json_t *list = json_object_get(doc, "isbns");
    if (!list)
        list = json_object_get(doc, "ids");
    json_t *refresh = json_object_get(doc, "refresh");
    body_err rc = BODY_OK;
    if (!json_is_object(doc))
        rc = fail(BODY_INVALID, "the body must be a JSON object like {\"isbns\": [...]}", why,
                  whylen);
    else if (json_object_get(doc, "isbns") && json_object_get(doc, "ids"))
        rc = fail(BODY_INVALID, "give \"isbns\" or \"ids\", not both", why, whylen);
    else if (!json_is_array(list))
        rc = fail(BODY_INVALID, "\"isbns\" must be an array of strings", why, whylen);
    else if (refresh && !json_is_boolean(refresh))
        rc = fail(BODY_INVALID, "\"refresh\" must be true or false", why, whylen);
    else if (json_array_size(list) > cap)
        rc = fail(BODY_TOO_MANY, "too many ISBNs in one request", why, whylen);
    if (rc == BODY_OK) {
        st->l->refresh = json_is_true(refresh);
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            if (json_is_string(item))
                push(st, i, json_string_value(item), json_string_length(item));
            else
                add_detail(st, i, NULL, 0, "not a string");
        }
    }
    json_decref(doc);
    return rc;
}

typedef struct text_state {
    parse_state *st;
    size_t cap;
    int too_many;
} text_state;

static int text_entry(void *ctx, size_t index, const char *entry, size_t len)
{
    text_state *t = ctx;
    if (index >= t->cap) {
        t->too_many = 1;
        return 1;
    }
    push(t->st, index, entry, len);
    return 0;
}

/* text/plain: the one list rule of SPEC §1 (common/ids.h). */
static body_err parse_text(parse_state *st, const char *body, size_t len, size_t cap, char *why,
                           size_t whylen)
{
    text_state t = {.st = st, .cap = cap};
    (void)id_list_split(body, len, text_entry, &t);
    if (t.too_many) {
        /* As for JSON: too many is the error, not the invalid entries seen so far. */
        forget_details(st);
        return fail(BODY_TOO_MANY, "too many ISBNs in one request", why, whylen);
    }
    return BODY_OK;
}

/* Points the render_detail array at the kept text, once nothing moves it any more. */
static int link_details(parse_state *st)
{
    body_list *l = st->l;
    l->details = calloc(st->ntext, sizeof *l->details);
    if (!l->details)
        return -1;
    for (size_t i = 0; i < st->ntext; i++) {
        const body_detail_text *t = &l->text[i];
        l->details[i] = (render_detail){.index = t->index,
                                        .input = t->is_text ? t->input : NULL,
                                        .input_len = t->len,
                                        .reason = t->reason};
    }
    l->ndetails = st->ntext;
    return 0;
}

body_err body_parse(const char *content_type, const char *body, size_t len, size_t cap,
                    body_list *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (why && whylen)
        why[0] = '\0';
    parse_state st = {.l = out};
    char type[BODY_MEDIA_TYPE_MAX];
    body_media_type(content_type, type, sizeof type);
    if (!body)
        body = "";

    body_err rc;
    if (strcmp(type, "application/json") == 0)
        rc = parse_json(&st, body, len, cap, why, whylen);
    else if (strcmp(type, "text/plain") == 0)
        rc = parse_text(&st, body, len, cap, why, whylen);
    else
        return fail(BODY_UNSUPPORTED_TYPE, "send application/json or text/plain", why, whylen);
    if (st.nomem)
        rc = BODY_NOMEM;
    if (rc != BODY_OK) {
        if (rc == BODY_NOMEM)
            (void)fail(rc, "out of memory", why, whylen);
        /* Only BODY_INVALID_ISBN has details. */
        forget_details(&st);
        return rc;
    }
    if (st.ntext) {
        if (link_details(&st)) {
            body_list_free(out);
            return fail(BODY_NOMEM, "out of memory", why, whylen);
        }
        char msg[96];
        snprintf(msg, sizeof msg, "%zu invalid entr%s; nothing was changed", st.ntext,
                 st.ntext == 1 ? "y" : "ies");
        return fail(BODY_INVALID_ISBN, msg, why, whylen);
    }
    return BODY_OK;
}

/* ---- PATCH ------------------------------------------------------------------------------- */

void body_patch_free(body_patch *p)
{
    if (!p)
        return;
    free(p->strings);
    memset(p, 0, sizeof *p);
}

/* Whether s[0..n) is text a user may set: valid UTF-8, no control characters. */
typedef struct patch_state {
    buf *strings; /* every text, each NUL-terminated; offsets until the end */
    size_t offsets[2 + BODY_MAX_TAGS + 64];
    size_t noffsets;
    char *why;
    size_t whylen;
} patch_state;

/* Keeps a copy of s[0..n) in the strings buffer; its offset, or (size_t)-1 out of memory. */
static size_t keep(patch_state *ps, const char *s, size_t n)
{
    size_t at = ps->strings->len;
    if (buf_append(ps->strings, s, n) != BUF_OK || buf_append(ps->strings, "", 1) != BUF_OK)
        return (size_t)-1;
    return at;
}

/* A text field: null (clears), or a string of 1..max bytes of plain text. 0, 1 (null) or -1. */
static int text_field(patch_state *ps, json_t *v, const char *key, size_t max, int lines,
                      size_t *off)
{
    if (json_is_null(v))
        return 1;
    size_t n = json_string_length(v);
    if (!json_is_string(v) || n == 0 || n > max ||
        !utf8_plain_text(json_string_value(v), n, lines)) {
        snprintf(ps->why, ps->whylen,
                 "\"%s\" must be null or text of 1 to %zu bytes without control "
                 "characters%s",
                 key, max, lines ? " (newlines and tabs are fine)" : "");
        return -1;
    }
    *off = keep(ps, json_string_value(v), n);
    if (*off == (size_t)-1) {
        snprintf(ps->why, ps->whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* A source name as configurations may name one: 1-63 printable ASCII bytes, no comma. */
static int source_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ',')
            return 0;
    return 1;
}

/* A body that must be JSON (PATCH, alert rules): the media type checked, then parsed into *doc
 * (caller decrefs). BODY_OK, BODY_UNSUPPORTED_TYPE or BODY_INVALID_JSON with the reason. */
static body_err load_json_body(const char *content_type, const char *body, size_t len, json_t **doc,
                               char *why, size_t whylen)
{
    char type[BODY_MEDIA_TYPE_MAX];
    body_media_type(content_type, type, sizeof type);
    *doc = NULL;
    if (strcmp(type, "application/json") != 0)
        return fail(BODY_UNSUPPORTED_TYPE, "send application/json", why, whylen);
    json_error_t jerr;
    *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    return *doc ? BODY_OK : fail(BODY_INVALID_JSON, jerr.text, why, whylen);
}

body_err body_parse_patch(const char *content_type, const char *body, size_t len, body_patch *out,
                          char *why, size_t whylen)
{
    char scratch[8];
    if (!why || !whylen) {
        why = scratch;
        whylen = sizeof scratch;
    }
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    json_t *doc;
    body_err lrc = load_json_body(content_type, body, len, &doc, why, whylen);
    if (lrc != BODY_OK)
        return lrc;
    buf strings;
    buf_init(&strings, (size_t)1 << 20);
    patch_state ps = {.strings = &strings, .why = why, .whylen = whylen};
    db_book_patch *p = &out->patch;
    size_t work_at = 0, note_at = 0, tag_at[BODY_MAX_TAGS], source_at[64];
    body_err rc = BODY_OK;
    if (!json_is_object(doc)) {
        rc = fail(BODY_INVALID, "the body must be a JSON object like {\"work\": \"...\"}", why,
                  whylen);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        int r;
        if (strcmp(key, "asin") == 0) {
            p->set |= DB_SET_ASIN;
            if (json_is_null(v))
                continue;
            if (!json_is_string(v) ||
                !asin_normalize(json_string_value(v), json_string_length(v), out->asin)) {
                rc = fail(BODY_INVALID, "\"asin\" must be null or an ASIN like B004VHAZH6", why,
                          whylen);
                goto done;
            }
        } else if (strcmp(key, "asins") == 0) {
            p->set |= DB_SET_ASINS;
            if (json_is_null(v))
                continue;
            const char *store;
            json_t *a;
            if (!json_is_object(v) || json_object_size(v) > BODY_MAX_ASINS) {
                rc = fail(BODY_INVALID,
                          "\"asins\" must be an object like {\"amazon.de\": \"B0...\"}", why,
                          whylen);
                goto done;
            }
            json_object_foreach(v, store, a) {
                db_asin *slot = &out->asins[p->nasins];
                if (!source_name_ok(store, strlen(store)) || !json_is_string(a) ||
                    !asin_normalize(json_string_value(a), json_string_length(a), slot->asin)) {
                    rc = fail(BODY_INVALID, "\"asins\" maps source names to ASINs like B004VHAZH6",
                              why, whylen);
                    goto done;
                }
                snprintf(slot->source, sizeof slot->source, "%s", store);
                p->nasins++;
            }
        } else if (strcmp(key, "sources") == 0) {
            p->set |= DB_SET_SOURCES;
            if (json_is_null(v))
                continue;
            size_t i;
            json_t *name;
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 64) {
                rc = fail(BODY_INVALID,
                          "\"sources\" must be null (every source) or a list of "
                          "source names",
                          why, whylen);
                goto done;
            }
            json_array_foreach(v, i, name) {
                if (!json_is_string(name) ||
                    !source_name_ok(json_string_value(name), json_string_length(name))) {
                    rc = fail(BODY_INVALID, "\"sources\" must be null or a list of source names",
                              why, whylen);
                    goto done;
                }
                if ((source_at[i] = keep(&ps, json_string_value(name), json_string_length(name))) ==
                    (size_t)-1) {
                    rc = fail(BODY_NOMEM, "out of memory", why, whylen);
                    goto done;
                }
            }
            p->nsources = json_array_size(v);
            p->sources = out->sources; /* pointed at the strings at the end */
        } else if (strcmp(key, "work") == 0) {
            p->set |= DB_SET_WORK;
            if ((r = text_field(&ps, v, key, BODY_WORK_MAX, 0, &work_at)) < 0) {
                rc = BODY_INVALID;
                goto done;
            }
            p->work = r ? NULL : "";
        } else if (strcmp(key, "note") == 0) {
            p->set |= DB_SET_NOTE;
            if ((r = text_field(&ps, v, key, BODY_NOTE_MAX, 1, &note_at)) < 0) {
                rc = BODY_INVALID;
                goto done;
            }
            p->note = r ? NULL : "";
        } else if (strcmp(key, "format") == 0) {
            p->set |= DB_SET_FORMAT;
            if (json_is_null(v))
                continue;
            int f = json_is_string(v) ? obs_format_parse(json_string_value(v)) : -1;
            if (f < 0) {
                rc = fail(BODY_INVALID,
                          "\"format\" must be null, paperback, hardcover, kindle, "
                          "audiobook or other",
                          why, whylen);
                goto done;
            }
            p->format = (obs_format)f;
        } else if (strcmp(key, "tags") == 0) {
            p->set |= DB_SET_TAGS;
            if (json_is_null(v))
                continue;
            size_t i;
            json_t *tag;
            if (!json_is_array(v) || json_array_size(v) > BODY_MAX_TAGS) {
                rc = fail(BODY_INVALID, "\"tags\" must be null or a list of at most 64 tags", why,
                          whylen);
                goto done;
            }
            json_array_foreach(v, i, tag) {
                size_t n = json_string_length(tag);
                if (!json_is_string(tag) || n == 0 || n > BODY_TAG_MAX ||
                    !utf8_plain_text(json_string_value(tag), n, 0)) {
                    rc = fail(BODY_INVALID,
                              "a tag is text of 1 to 64 bytes without control characters", why,
                              whylen);
                    goto done;
                }
                if ((tag_at[i] = keep(&ps, json_string_value(tag), n)) == (size_t)-1) {
                    rc = fail(BODY_NOMEM, "out of memory", why, whylen);
                    goto done;
                }
            }
            p->ntags = json_array_size(v);
            p->tags = out->tags;
        } else {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "unknown field \"%.40s\" (asin, asins, sources, work, format, "
                     "tags, note)",
                     key);
            rc = fail(BODY_INVALID, msg, why, whylen);
            goto done;
        }
    }
    if (!p->set) {
        rc = fail(BODY_INVALID, "nothing to change", why, whylen);
        goto done;
    }
    /* The strings no longer move: point the patch at them. */
    out->strings = buf_steal(&strings, NULL);
    if (!out->strings) {
        rc = fail(BODY_NOMEM, "out of memory", why, whylen);
        goto done;
    }
    if (p->set & DB_SET_ASIN)
        p->asin = out->asin[0] ? out->asin : NULL;
    if (p->set & DB_SET_ASINS)
        p->asins = out->asins;
    if (p->work)
        p->work = out->strings + work_at;
    if (p->note)
        p->note = out->strings + note_at;
    for (size_t i = 0; i < p->ntags; i++)
        out->tags[i] = out->strings + tag_at[i];
    for (size_t i = 0; i < p->nsources; i++)
        out->sources[i] = out->strings + source_at[i];
done:
    buf_free(&strings);
    json_decref(doc);
    if (rc != BODY_OK)
        body_patch_free(out);
    return rc;
}

/* ---- POST /api/alerts -------------------------------------------------------------------- */

void body_alert_free(body_alert *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < ALERT_MAX_TARGETS; i++)
        free(a->targets[i]);
    memset(a, 0, sizeof *a);
}

/* "book": null, or an id in any form; BODY_INVALID_ISBN keeps the input and the reason. */
static body_err alert_book(body_alert *out, json_t *v, char *why, size_t whylen)
{
    if (!v || json_is_null(v))
        return BODY_OK;
    if (!json_is_string(v))
        return fail(BODY_INVALID,
                    "\"book\" must be null (every book) or a book id (ISBN, ASIN "
                    "or product URL)",
                    why, whylen);
    const char *text = json_string_value(v);
    size_t n = json_string_length(v);
    if (id_parse(text, n, &out->book, out->detail_reason, sizeof out->detail_reason) != ID_OK) {
        size_t keep_len = n < sizeof out->detail_input ? n : sizeof out->detail_input;
        memcpy(out->detail_input, text, keep_len);
        out->detail = (render_detail){.index = 0,
                                      .input = out->detail_input,
                                      .input_len = keep_len,
                                      .reason = out->detail_reason};
        char msg[220];
        snprintf(msg, sizeof msg, "\"book\" is not a book id: %s", out->detail_reason);
        return fail(BODY_INVALID_ISBN, msg, why, whylen);
    }
    out->has_book = 1;
    return BODY_OK;
}

static body_err alert_fields(json_t *doc, body_alert *out, char *why, size_t whylen)
{
    db_alert_rule *r = &out->rule;
    json_t *kind = NULL, *value = NULL, *book = NULL, *source = NULL, *notify = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        json_t **slot = strcmp(key, "kind") == 0     ? &kind
                        : strcmp(key, "value") == 0  ? &value
                        : strcmp(key, "book") == 0   ? &book
                        : strcmp(key, "source") == 0 ? &source
                        : strcmp(key, "notify") == 0 ? &notify
                                                     : NULL;
        if (!slot) {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown field \"%.40s\" (kind, value, book, source, notify)",
                     key);
            return fail(BODY_INVALID, msg, why, whylen);
        }
        *slot = v;
    }
    int k = json_is_string(kind) ? alert_kind_parse(json_string_value(kind)) : -1;
    if (k < 0)
        return fail(BODY_INVALID,
                    "\"kind\" must be rank_better_than, rank_worse_than, new_best, "
                    "change_pct or trouble",
                    why, whylen);
    snprintf(r->kind, sizeof r->kind, "%s", alert_kind_name((alert_kind)k));
    if (value && !json_is_null(value)) {
        if (!json_is_number(value))
            return fail(BODY_INVALID, "\"value\" must be a number", why, whylen);
        r->has_value = 1;
        r->value = json_number_value(value);
    }
    if (source && !json_is_null(source)) {
        if (!json_is_string(source) ||
            !source_name_ok(json_string_value(source), json_string_length(source)))
            return fail(BODY_INVALID,
                        "\"source\" must be null (every source) or a source name "
                        "like amazon.com",
                        why, whylen);
        snprintf(r->source, sizeof r->source, "%s", json_string_value(source));
    }
    if (!json_is_array(notify))
        return fail(BODY_INVALID,
                    "\"notify\" must be a list of targets like "
                    "[\"webhook:https://...\", \"mailto:you@example.org\"]",
                    why, whylen);
    char reason[200], msg[260];
    if (json_array_size(notify) == 0 || json_array_size(notify) > ALERT_MAX_TARGETS) {
        snprintf(msg, sizeof msg, "\"notify\": a rule needs 1 to %d targets", ALERT_MAX_TARGETS);
        return fail(BODY_INVALID, msg, why, whylen);
    }
    size_t i;
    json_array_foreach(notify, i, v) {
        alert_target_kind tk;
        const char *rest;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            snprintf(msg, sizeof msg, "\"notify\"[%zu]: not a string", i);
            return fail(BODY_INVALID, msg, why, whylen);
        }
        if (alert_target_parse(json_string_value(v), &tk, &rest, reason, sizeof reason)) {
            snprintf(msg, sizeof msg, "\"notify\"[%zu]: %s", i, reason);
            return fail(BODY_INVALID, msg, why, whylen);
        }
        if (!(out->targets[i] = strdup(json_string_value(v))))
            return fail(BODY_NOMEM, "out of memory", why, whylen);
        r->ntargets = i + 1;
    }
    r->targets = out->targets;
    /* The targets are good: what the check still finds is about the value. */
    if (alert_rule_check((alert_kind)k, r->has_value, r->value, (const char *const *)out->targets,
                         r->ntargets, reason, sizeof reason)) {
        snprintf(msg, sizeof msg, "\"value\": %s", reason);
        return fail(BODY_INVALID, msg, why, whylen);
    }
    return alert_book(out, book, why, whylen);
}

body_err body_parse_alert(const char *content_type, const char *body, size_t len, body_alert *out,
                          char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (why && whylen)
        why[0] = '\0';
    json_t *doc;
    body_err lrc = load_json_body(content_type, body, len, &doc, why, whylen);
    if (lrc != BODY_OK)
        return lrc;
    body_err rc = json_is_object(doc)
                      ? alert_fields(doc, out, why, whylen)
                      : fail(BODY_INVALID,
                             "the body must be a JSON object like {\"kind\": "
                             "\"rank_better_than\", \"value\": 1000, \"notify\": [...]}",
                             why, whylen);
    json_decref(doc);
    if (rc != BODY_OK && rc != BODY_INVALID_ISBN) {
        body_alert_free(out);
    } else if (rc == BODY_INVALID_ISBN) {
        /* The detail stays for the caller; the copies go. */
        for (size_t i = 0; i < ALERT_MAX_TARGETS; i++) {
            free(out->targets[i]);
            out->targets[i] = NULL;
        }
        out->rule.targets = NULL;
        out->rule.ntargets = 0;
    }
    return rc;
}
