/*
 * request.c - what can be read off a request's headers (arguments, framing, announced length)
 * and building a response. Pure functions on caller-owned data: any thread.
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *srv_request_arg(const srv_request *r, const char *name)
{
    for (size_t i = 0; i < r->nargs; i++)
        if (r->args[i].name && strcasecmp(r->args[i].name, name) == 0)
            return r->args[i].value;
    return NULL;
}

srv_transport_err srv_request_framing(const srv_request *r)
{
    const char *te = r->transfer_encoding;
    if (te && strcasecmp(te, "chunked") != 0)
        return SRV_FRAMING_CODING;
    if (te && r->ncontent_length)
        return SRV_FRAMING_MIXED;
    if (r->ncontent_length > 1)
        return SRV_FRAMING_LENGTHS;
    if (r->ntransfer_encoding > 1)
        return SRV_FRAMING_CODINGS;
    return SRV_TRANSPORT_OK;
}

int srv_request_length(const srv_request *r, unsigned long long *n)
{
    if (!r->content_length)
        return 0;
    char *end;
    unsigned long long v = strtoull(r->content_length, &end, 10);
    if (*end != '\0')
        return 0;
    *n = v;
    return 1;
}

int srv_request_expects_continue(const srv_request *r)
{
    return r->expect && strcasecmp(r->expect, "100-continue") == 0;
}

void srv_response_init(srv_response *r, size_t max)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, max);
}

int srv_response_header(srv_response *r, const char *name, const char *value)
{
    if (r->nheaders >= SRV_RESPONSE_HEADERS)
        return -1;
    srv_header *h = &r->headers[r->nheaders];
    int n = snprintf(h->value, sizeof h->value, "%s", value);
    if (n < 0 || (size_t)n >= sizeof h->value)
        return -1;
    h->name = name;
    r->nheaders++;
    return 0;
}

void srv_response_clear(srv_response *r)
{
    buf_free(&r->body);
    r->fixed = NULL;
    r->fixed_len = 0;
    r->nheaders = 0;
}
