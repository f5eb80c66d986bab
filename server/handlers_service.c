/*
 * handlers_service.c - what is not a book or a job: the CSV export, /api/config, /healthz,
 * /metrics and the dashboard's files. Threads: see handlers.h.
 */
#include "handlers_internal.h"

#include "../common/metrics.h"
#include "../web/web.h"
#include "limits.h"

typedef struct export_ctx {
    buf *out;
    int rc;                      /* the first BUF_* error of a row */
} export_ctx;

static int export_row(void *ctx, const observation *obs)
{
    export_ctx *e = ctx;
    e->rc = render_csv_row(e->out, obs);
    return e->rc != BUF_OK;
}

void h_export(hctx *h, const char *arg)
{
    (void)arg;
    db *d = h_db(h);
    if (!d) {
        h_store_error(h, DB_ERROR);
        return;
    }
    h_body_cap(h, SRV_EXPORT_MAX);
    export_ctx e = {.out = &h->resp->body, .rc = render_csv_header(&h->resp->body)};
    db_err erc = e.rc == BUF_OK ? db_export(d, export_row, &e) : DB_OK;
    if (erc != DB_OK && e.rc == BUF_OK) {
        h_store_error(h, erc);
        return;
    }
    if (e.rc == BUF_OK &&
        h_header(h, "Content-Disposition", "attachment; filename=\"bookrank.csv\""))
        return;
    h_finish(h, e.rc, HTTP_OK, "text/csv; charset=utf-8",
             "export larger than " SRV_STR(SRV_EXPORT_MAX_MIB) " MiB");
}

void h_healthz(hctx *h, const char *arg)
{
    (void)arg;
    db *d = h_db(h);
    int64_t n;
    int ok = d && db_books_count(d, &n) == DB_OK;
    h_json(h, render_health(&h->resp->body, ok ? "ok" : "unavailable", NULL),
           ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE);
}

void h_metrics(hctx *h, const char *arg)
{
    (void)arg;
    metrics_gauges g = {0};
    db *d = h_db(h);
    if (d && db_books_count(d, &g.books_tracked) != DB_OK)
        g.books_tracked = 0;     /* the other metrics are still worth having */
    scr_pool_stats ps;
    jobs_pool_stats(h->env->runner, &ps);
    g.jobs_active = jobs_active(h->env->runner);
    g.queue_depth = ps.queued;
    g.fetches_in_flight = ps.in_flight;
    jobs_store_state store;
    jobs_store_health(h->env->runner, &store);
    g.store_failing = store.failing;
    g.store_held = store.held;
    g.store_lost = store.lost;
    h_body_cap(h, SRV_METRICS_MAX);
    h_finish(h, metrics_render(&h->resp->body, &g), HTTP_OK,
             "text/plain; version=0.0.4; charset=utf-8", "metrics larger than the limit");
}

void h_config(hctx *h, const char *arg)
{
    (void)arg;
    const srv_config *cfg = h->env->cfg;
    int rc = render_config(&h->resp->body, cfg->token && *cfg->token, BOOKRANK_VERSION,
                           cfg->source_names, cfg->nsources);
    h_json(h, rc, HTTP_OK);
}

void h_asset(hctx *h, const struct web_asset *a)
{
    srv_response *r = h->resp;
    r->status = HTTP_OK;
    r->content_type = a->content_type;
    r->fixed = a->data;
    r->fixed_len = a->len;
    r->dashboard = 1;
}
