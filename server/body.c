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

#include "../common/grow.h"

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
    isbn parsed;
    if (isbn_parse_explain(text, len, &parsed, why, sizeof why) != ISBN_OK) {
        add_detail(st, index, text, len, why);
        return;
    }
    body_list *l = st->l;
    isbn *grown = grow_to(l->items, &st->items_cap, l->n + 1, sizeof *l->items);
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
    json_t *list = json_object_get(doc, "isbns");
    json_t *refresh = json_object_get(doc, "refresh");
    body_err rc = BODY_OK;
    if (!json_is_object(doc))
        rc = fail(BODY_INVALID, "the body must be a JSON object like {\"isbns\": [...]}", why,
                  whylen);
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

static body_err parse_text(parse_state *st, const char *body, size_t len, size_t cap, char *why,
                           size_t whylen)
{
    const char *p = body, *end = body + len;
    size_t index = 0;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != '\n' && *q != ',')
            q++;
        const char *a = p, *b = q;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            if (index >= cap) {
                /* As for JSON: too many is the error, not the invalid entries seen so far. */
                forget_details(st);
                return fail(BODY_TOO_MANY, "too many ISBNs in one request", why, whylen);
            }
            push(st, index++, a, (size_t)(b - a));
        }
        p = q + 1;
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
        snprintf(msg, sizeof msg, "%zu invalid ISBN%s; nothing was changed", st.ntext,
                 st.ntext == 1 ? "" : "s");
        return fail(BODY_INVALID_ISBN, msg, why, whylen);
    }
    return BODY_OK;
}
