/*
 * fetch.h - one HTTP GET at a time over one reused libcurl easy handle (private to scraper/).
 *
 * A fetcher belongs to one worker thread: the easy handle inside keeps its connections alive
 * between fetches (keep-alive), which is why it is never shared. Every limit of a fetch lives
 * here: timeouts, low-speed abort, 5 redirects within the source's domain, no private
 * addresses unless the source points there, http/https only, compressed transfer, SCR_MAX_PAGE
 * enforced while receiving, user agent, Accept-Language and proxy.
 *
 * The only cross-thread inputs are abort_flag and scr_fetcher_wake(): another thread sets the
 * flag, then wakes the fetcher, and a running fetch stops at once (FETCH_ABORTED).
 */
#ifndef BOOKRANK_SCRAPER_FETCH_H
#define BOOKRANK_SCRAPER_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "../common/compiler.h"
#include "scraper.h"

/* Room for a fetch's human-readable failure message, NUL included. */
#define SCR_FETCH_WHY_LEN 192

typedef enum scr_fetch_err {
    FETCH_OK = 0,    /* an HTTP answer arrived (any status) */
    FETCH_TIMEOUT,   /* total, connect or low-speed timeout - retryable */
    FETCH_CONNECT,   /* refused, reset, resolve failure, truncated body - retryable */
    FETCH_TOO_BIG,   /* body over SCR_MAX_PAGE */
    FETCH_REDIRECTS, /* more than 5 redirects (a loop) */
    FETCH_ABORTED,   /* abort_flag was set */
    FETCH_NOMEM,
    FETCH_REFUSED, /* a redirect or an address the source's policy does not allow */
    FETCH_OTHER    /* protocol, TLS, bad encoding ... - not retried */
} scr_fetch_err;

typedef struct scr_fetch_result {
    scr_fetch_err err;
    int http_status;      /* last HTTP status seen, 0 when none */
    double retry_after_s; /* Retry-After of the final answer clamped to [0, 60], -1 when none */
    const char *body;     /* borrowed from the fetcher, valid until its next fetch; never NULL */
    size_t len;
    char why[SCR_FETCH_WHY_LEN]; /* what went wrong when err != FETCH_OK ("timeout after 30 s",
                                   * "connection reset"...): the observation's error text */
} scr_fetch_result;

/* What a source allows its fetches, derived once from its URL template (source.c). */
typedef struct scr_fetch_policy {
    const char *accept_language; /* sent as Accept-Language; NULL = none */
    char domain[256];            /* redirects are followed only to this host (the template's,
                                     without a leading "www.") and its subdomains */
    int port;                    /* ...and to this port (0: the scheme's default) */
    int private_ok;              /* the template itself names a loopback, private or
                                     link-local address (or localhost): such addresses are
                                     allowed; otherwise connecting to one is refused */
} scr_fetch_policy;

/* Fills p from an http(s) URL template (already validated). */
void scr_fetch_policy_init(scr_fetch_policy *p, const char *url_template,
                           const char *accept_language);

/* Whether an IPv4 or IPv6 address (network byte order, 4 or 16 bytes) is loopback, private,
 * link-local, unspecified or otherwise not on the public internet. */
int scr_address_is_private(int family, const void *addr);

typedef struct scr_fetcher scr_fetcher;

/*
 * A fetcher configured from cfg (strings are copied: cfg may go away afterwards). abort_flag is
 * borrowed and must outlive the fetcher. NULL with a malloc'd message in *err on failure.
 */
BR_MUST_CHECK scr_fetcher *scr_fetcher_new(const scr_config *cfg, const atomic_int *abort_flag,
                                           char **err);
void scr_fetcher_free(scr_fetcher *f); /* NULL is a no-op */

/* GETs url into out, following up to 5 redirects that policy allows (same scheme or an upgrade
 * to https, the policy's domain and port; see scr_fetch_policy); returns out->err. A redirect
 * elsewhere ends the fetch with FETCH_REFUSED. policy may be NULL (no rules: tests). */
BR_MUST_CHECK scr_fetch_err scr_fetch(scr_fetcher *f, const char *url,
                                      const scr_fetch_policy *policy, scr_fetch_result *out);

/* Makes a fetch running in another thread look at abort_flag now. Any thread; f must be alive. */
void scr_fetcher_wake(scr_fetcher *f);

/* Gives back a large body buffer once the caller is done with the last result's body (which
 * becomes invalid). Same thread as scr_fetch. */
void scr_fetcher_release(scr_fetcher *f);

/* Whether another attempt may help (timeouts and connection-level failures). */
int scr_fetch_retryable(scr_fetch_err err);

#endif
