/*
 * fixture_store.c - "the store" on loopback: a libmicrohttpd server that answers book pages with
 * scripted scenarios, injected latency and faults, and counts what it saw. Every integration test
 * and benchmark uses it as the upstream instead of a real store.
 *
 *   fixture_store [--port N] [--fixtures DIR]      (port 0 = ephemeral; DIR default $FIXTURES)
 *
 * Prints "PORT <n>" once listening, then serves until SIGINT/SIGTERM or until stdin (when it is
 * a pipe, socket or terminal) reaches EOF, so a test that dies never leaves it behind. The
 * interface (scenario keys, /_config, /_stats, /_reset) is described in tests/lib/fixture_lib.py
 * and in the project's fixture store spec.
 *
 * Threads: one per connection (delays simply sleep). Everything shared lives in fs_state and is
 * guarded by fs_state.lock; a configuration is immutable once installed and reference counted,
 * so a request keeps the scenario it arrived with even if /_config replaces it meanwhile.
 * Page padding is built once at start-up and shared read-only: a 1 MB page costs a few
 * memcpy()s, not a rebuild, which matters when this is the upstream of a benchmark.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <jansson.h>
#include <microhttpd.h>
#include <zlib.h>

#include "common/buf.h"

#define FS_MAX_CONNECTIONS 1024
#define FS_MAX_CONFIG_BODY (16u << 20) /* a /_config body; 5000 books is ~300 KB */
#define FS_MAX_KEY 128                 /* longer last path segments are not book keys */
#define FS_MAX_HOST 255
#define FS_MAX_HOSTS 256 /* distinct Host headers tracked; the rest share one */
#define FS_MAX_TITLE 65536
#define FS_MAX_CATEGORIES 64
#define FS_MAX_PAGE_SIZE (64u << 20) /* cap on `size` and on a fixture file */
#define FS_MAX_ARRIVALS 1000000
#define FS_MAX_HIT_KEYS 1000000
#define FS_MAX_DELAY_MS 600000
#define FS_HUGE_BYTES (20u << 20)
#define FS_FILLER_BLOCK 1024 /* filler is whole blocks, so a cut never splits a tag */
#define FS_FILLER_BLOCKS 512 /* 512 KiB of distinct filler, then it repeats */
#define FS_READ_BLOCK (64u * 1024u)
#define FS_MAX_SEGS 16
#define FS_CAPTCHA_FILE "amazon_com_captcha_robot_check_2020.html"

enum fs_page {
    PAGE_GENERATED,
    PAGE_FIXTURE,
    PAGE_CAPTCHA,
    PAGE_NOT_FOUND,
    PAGE_NO_RANK,
    PAGE_EMPTY,
    PAGE_INVALID_UTF8
};

enum fs_fault { FAULT_NONE, FAULT_RESET, FAULT_TRUNCATE, FAULT_REDIRECT_LOOP, FAULT_HUGE };

/* A file from the fixtures directory, loaded once per configuration that names it. */
typedef struct fs_file {
    char *name;
    char *data;
    size_t len;
} fs_file;

typedef struct fs_category {
    long long rank;
    char *name; /* " > " separates ladder levels; the last one is the leaf */
} fs_category;

typedef struct fs_scenario {
    enum fs_page page;
    size_t file;    /* index into fs_config.files for PAGE_FIXTURE */
    char *title;    /* NULL = "Fixture Book <key>" */
    int title_raw;  /* put title into the page unescaped (hostile-markup tests) */
    long long rank; /* 0 = derived from the key */
    char *category; /* NULL = "Books" */
    fs_category *categories;
    size_t ncategories;
    int has_categories; /* 0 = the two default category ranks */
    int status;         /* 0 = the page's natural status */
    long delay_ms;
    size_t size;
    int gzip;
    long fail_first;
    int fail_status;
    char *retry_after;
    enum fs_fault fault;
} fs_scenario;

/* Immutable once installed; freed when the last request using it is done. */
typedef struct fs_config {
    atomic_int refs;
    fs_scenario dflt;
    fs_scenario *books;
    size_t nbooks;
    json_t *index; /* key -> integer index into books */
    fs_file *files;
    size_t nfiles;
} fs_config;

typedef struct fs_host {
    char name[FS_MAX_HOST + 1];
    long in_flight;
    long max_in_flight;
} fs_host;

typedef struct fs_state {
    /* Set before the daemon starts, read-only afterwards. */
    const char *fixtures_dir; /* may be NULL */
    char *filler;             /* FS_FILLER_BLOCKS blocks of plain filler */
    char *filler_bad;         /* same with invalid UTF-8 and NULs */
    char *blanks;             /* FS_FILLER_BLOCK bytes of whitespace */
    char *captcha;            /* the robot-check page */
    size_t captcha_len;

    pthread_mutex_t lock; /* guards every member below */
    fs_config *config;
    long requests;
    long in_flight;
    long max_in_flight;
    fs_host hosts[FS_MAX_HOSTS];
    size_t nhosts;
    json_t *hits; /* key -> integer */
    int64_t *arrivals;
    size_t narrivals;
    size_t caparrivals;
} fs_state;

enum fs_req_kind { REQ_OTHER, REQ_CONTROL, REQ_BOOK };

/* Per-request state (libmicrohttpd *req_cls), freed in on_completed(). */
typedef struct fs_request {
    enum fs_req_kind kind;
    buf body; /* control POST body */
    int body_too_big;
    fs_config *cfg; /* book: the config it arrived under (a reference) */
    const fs_scenario *scen;
    long hit;    /* book: this key's hit number, 1-based */
    size_t host; /* book: index into fs_state.hosts */
    char key[FS_MAX_KEY + 1];
} fs_request;

/* A response body as a list of segments; a segment longer than its bytes repeats them. */
typedef struct fs_seg {
    const char *p;
    size_t plen;
    uint64_t len;
} fs_seg;

typedef struct fs_body {
    fs_seg seg[FS_MAX_SEGS];
    size_t nseg;
    uint64_t total;      /* bytes the body has */
    uint64_t send_limit; /* bytes sent before the fault hits (total without one) */
    uint64_t declared;   /* Content-Length, or MHD_SIZE_UNKNOWN */
    enum fs_fault fault;
    int fd;         /* the connection's socket, for `reset` */
    char *owned;    /* per-request bytes the segments point into */
    fs_config *cfg; /* reference held while fixture bytes are being sent */
} fs_body;

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* FNV-1a; the default rank of a key is 1 + fnv1a(key) % 2000000 (fixture_lib.default_rank). */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* "1234567" -> "1,234,567", as amazon.com prints ranks. */
static void format_rank(long long n, char *out, size_t outlen)
{
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lld", n < 0 ? 0 : n);
    size_t o = 0;
    if (nd < 0 || outlen == 0)
        return;
    for (int i = 0; i < nd && o + 1 < outlen; i++) {
        if (i > 0 && (nd - i) % 3 == 0 && o + 2 < outlen)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/*
 * The one place text is escaped into generated markup. keep_amp leaves '&' as it is, which is
 * how the real store prints category names ("Computers & Technology").
 */
static int html_escape_mode(buf *b, const char *s, int keep_amp)
{
    int rc = BUF_OK;
    for (; *s && rc == BUF_OK; s++) {
        switch (*s) {
        case '&':
            rc = keep_amp ? buf_append(b, s, 1) : buf_append_str(b, "&amp;");
            break;
        case '<':
            rc = buf_append_str(b, "&lt;");
            break;
        case '>':
            rc = buf_append_str(b, "&gt;");
            break;
        case '"':
            rc = buf_append_str(b, "&quot;");
            break;
        case '\'':
            rc = buf_append_str(b, "&#39;");
            break;
        default:
            rc = buf_append(b, s, 1);
            break;
        }
    }
    return rc;
}

static int html_escape(buf *b, const char *s)
{
    return html_escape_mode(b, s, 0);
}

static void config_unref(fs_config *cfg)
{
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
        return;
    for (size_t i = 0; i <= cfg->nbooks; i++) {
        fs_scenario *sc = i == 0 ? &cfg->dflt : &cfg->books[i - 1];
        free(sc->title);
        free(sc->category);
        for (size_t c = 0; c < sc->ncategories; c++)
            free(sc->categories[c].name);
        free(sc->categories);
        free(sc->retry_after);
    }
    for (size_t i = 0; i < cfg->nfiles; i++) {
        free(cfg->files[i].name);
        free(cfg->files[i].data);
    }
    free(cfg->files);
    free(cfg->books);
    json_decref(cfg->index);
    free(cfg);
}

static void config_ref(fs_config *cfg)
{
    atomic_fetch_add(&cfg->refs, 1);
}

/* Reads a whole file, at most FS_MAX_PAGE_SIZE bytes. 0 or -1 with a message in err. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int rc = -1;
    buf b;
    buf_init(&b, FS_MAX_PAGE_SIZE);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(&b, chunk, n) != BUF_OK) {
            snprintf(err, errlen, "%s is too large or out of memory", path);
            goto done;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s", path);
        goto done;
    }
    if (!b.data && buf_append(&b, "", 0) != BUF_OK) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    *data = buf_steal(&b, len);
    rc = *data ? 0 : -1;
done:
    if (f)
        fclose(f);
    buf_free(&b);
    return rc;
}

/* ---- filler: realistic page padding, built once --------------------------------------------- */

/* One piece of product-page noise (a widget, inline script or style, blank-line runs). */
static size_t filler_piece(char *out, size_t cap, unsigned i)
{
    unsigned asin = 100000 + i * 7919 % 899999;
    int n;

    switch (i % 4) {
    case 0:
        n = snprintf(out, cap,
                     "<div class=\"a-section a-spacing-small\" data-cel-widget=\"sims-fbt-%u\">\n"
                     "  <span class=\"a-size-base a-color-secondary\">Customers who bought this "
                     "item also bought</span>\n"
                     "  <a class=\"a-link-normal\" href=\"/gp/product/B00%u/ref=pd_sim_14_%u?ie="
                     "UTF8&amp;psc=1\">Related item %u</a>\n"
                     "  <span class=\"a-color-price\">$%u.%02u</span>\n</div>\n",
                     i, asin, i % 20, i, 5 + i % 60, i % 100);
        break;
    case 1:
        n = snprintf(out, cap,
                     "<script type=\"text/javascript\">\nP.when(\"A\", \"ready\").execute("
                     "function(A){ A.state(\"cf-widget-%u\", {\"asin\":\"B00%u\",\"rating\":"
                     "\"4.%u out of 5 stars\",\"reviews\":%u,\"ts\":%u}); });\n</script>\n",
                     i, asin, i % 10, 10 + i % 900, 1524012185u + i);
        break;
    case 2:
        n = snprintf(out, cap,
                     "\n\n\n\n\n\n\n\n\n\n\n\n<style type=\"text/css\">\n.a-widget-%u { margin: "
                     "0 0 %upx 0; padding: 0; }\n.a-widget-%u .a-icon { display: inline-block; "
                     "}\n</style>\n\n\n\n\n\n\n\n",
                     i, i % 12, i);
        break;
    default:
        n = snprintf(out, cap,
                     "<li class=\"a-carousel-card\" role=\"listitem\" aria-setsize=\"100\" "
                     "aria-posinset=\"%u\">\n  <div class=\"a-section p13n-asin\" data-p13n-asin"
                     "-metadata=\"{&quot;ref&quot;:&quot;pd_sbs_14_%u&quot;,&quot;asin&quot;:"
                     "&quot;B00%u&quot;}\">\n    <img alt=\"\" src=\"https://images-na.ssl-"
                     "images-amazon.com/images/I/51%uL._AC_UL160_SR160,160_.jpg\" height=\"160\""
                     " width=\"160\">\n  </div>\n</li>\n",
                     i % 100 + 1, i, asin, asin);
        break;
    }
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/*
 * One filler block: pieces while they fit, then whitespace to exactly FS_FILLER_BLOCK bytes.
 * It holds nothing a rank, title, captcha or not-found rule could match. `bad` adds invalid
 * UTF-8 sequences and a NUL to every block.
 */
static void filler_block(char *out, unsigned i, int bad)
{
    static const char bad_bytes[] =
        "<span class=\"a-size-small\">\xC3\x28 \xFF\xFE \xED\xA0\x80 \xC0\xAF \x00 \xF8\x88\x80"
        "</span>\n";
    size_t room = FS_FILLER_BLOCK - (bad ? sizeof bad_bytes - 1 : 0) - 2;
    size_t len = 0;
    char piece[FS_FILLER_BLOCK];

    for (unsigned j = i * 3;; j++) {
        size_t n = filler_piece(piece, sizeof piece, j);
        if (n == 0 || len + n > room)
            break;
        memcpy(out + len, piece, n);
        len += n;
    }
    if (bad) {
        memcpy(out + len, bad_bytes, sizeof bad_bytes - 1);
        len += sizeof bad_bytes - 1;
    }
    for (size_t k = len; k < FS_FILLER_BLOCK; k++)
        out[k] = k + 1 == FS_FILLER_BLOCK ? '\n' : ' ';
}

static int filler_init(fs_state *st)
{
    size_t total = (size_t)FS_FILLER_BLOCK * FS_FILLER_BLOCKS;
    st->filler = malloc(total);
    st->filler_bad = malloc(total);
    st->blanks = malloc(FS_FILLER_BLOCK);
    if (!st->filler || !st->filler_bad || !st->blanks)
        return -1;
    for (unsigned i = 0; i < FS_FILLER_BLOCKS; i++) {
        filler_block(st->filler + (size_t)i * FS_FILLER_BLOCK, i, 0);
        filler_block(st->filler_bad + (size_t)i * FS_FILLER_BLOCK, i, 1);
    }
    for (size_t k = 0; k < FS_FILLER_BLOCK; k++)
        st->blanks[k] = k % 64 == 63 ? '\n' : ' ';
    return 0;
}

/* ---- bodies --------------------------------------------------------------------------------- */

static void body_add(fs_body *b, const char *p, size_t plen, uint64_t len)
{
    if (len == 0 || b->nseg == FS_MAX_SEGS)
        return;
    b->seg[b->nseg++] = (fs_seg){p, plen, len};
    b->total += len;
}

/* n bytes of padding: whole filler blocks, then blanks for the remainder (never a cut tag). */
static void body_add_filler(fs_body *b, const char *filler, const char *blanks, uint64_t n)
{
    uint64_t whole = n / FS_FILLER_BLOCK * FS_FILLER_BLOCK;
    body_add(b, filler, (size_t)FS_FILLER_BLOCK * FS_FILLER_BLOCKS, whole);
    body_add(b, blanks, FS_FILLER_BLOCK, n - whole);
}

/* Copies body bytes [pos, pos + n) into out; n must not run past total. */
static void body_copy(const fs_body *b, uint64_t pos, char *out, size_t n)
{
    uint64_t start = 0;
    for (size_t i = 0; i < b->nseg && n > 0; i++) {
        const fs_seg *s = &b->seg[i];
        if (pos >= start + s->len) {
            start += s->len;
            continue;
        }
        uint64_t off = pos - start;
        while (off < s->len && n > 0) {
            size_t in = (size_t)(off % s->plen);
            size_t k = s->plen - in;
            if (k > n)
                k = n;
            if (k > s->len - off)
                k = (size_t)(s->len - off);
            memcpy(out, s->p + in, k);
            out += k;
            n -= k;
            off += k;
            pos += k;
        }
        start += s->len;
    }
}

static void body_free(void *cls)
{
    fs_body *b = cls;
    if (!b)
        return;
    free(b->owned);
    config_unref(b->cfg);
    free(b);
}

/*
 * `reset`: abort the connection with a RST, as a crashing or overloaded store does. Give the
 * kernel a moment to push out what was already written first, so the client really receives
 * about half the body. connect(AF_UNSPEC) makes Linux disconnect the TCP socket with a RST
 * while the descriptor stays valid for libmicrohttpd to close as usual.
 */
static void socket_abort(int fd)
{
    if (fd < 0)
        return;
    for (int i = 0; i < 50; i++) {
        int pending = 0;
        if (ioctl(fd, SIOCOUTQ, &pending) != 0 || pending == 0)
            break;
        sleep_ms(2);
    }
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof unspec);
    unspec.sa_family = AF_UNSPEC;
    connect(fd, &unspec, sizeof unspec);
}

static ssize_t body_read(void *cls, uint64_t pos, char *out, size_t max)
{
    fs_body *b = cls;
    if (pos >= b->send_limit) {
        if (b->fault == FAULT_NONE || b->fault == FAULT_HUGE)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (b->fault == FAULT_RESET)
            socket_abort(b->fd);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    uint64_t n = b->send_limit - pos;
    if (n > max)
        n = max;
    body_copy(b, pos, out, (size_t)n);
    return (ssize_t)n;
}

/* Replaces the body's segments with one gzip member of the same bytes. 0 or -1. */
static int body_gzip(fs_body *b)
{
    int rc = -1;
    char *plain = NULL, *packed = NULL;
    z_stream zs;
    int zinit = 0;

    memset(&zs, 0, sizeof zs);
    plain = malloc(b->total ? (size_t)b->total : 1);
    if (!plain)
        goto done;
    body_copy(b, 0, plain, (size_t)b->total);
    /* windowBits 15 + 16 = gzip wrapper; level 1 because speed matters more than ratio here. */
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        goto done;
    zinit = 1;
    uLong bound = deflateBound(&zs, (uLong)b->total);
    packed = malloc(bound);
    if (!packed)
        goto done;
    zs.next_in = (Bytef *)plain;
    zs.avail_in = (uInt)b->total;
    zs.next_out = (Bytef *)packed;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        goto done;
    free(b->owned);
    b->owned = packed;
    packed = NULL;
    b->nseg = 0;
    b->total = 0;
    body_add(b, b->owned, zs.total_out, zs.total_out);
    rc = 0;
done:
    if (zinit)
        deflateEnd(&zs);
    free(plain);
    free(packed);
    return rc;
}

/* ---- pages ---------------------------------------------------------------------------------- */

static const char not_found_page[] =
    "<!DOCTYPE html>\n<html lang=\"en-us\"><head>\n<meta charset=\"utf-8\">\n"
    "<title>Page Not Found</title>\n</head>\n<body>\n"
    "<a href=\"/ref=cs_404_logo\"><img src=\"https://images-na.ssl-images-amazon.com/images/G/"
    "01/error/logo._TTD_.png\" alt=\"Amazon.com\"></a>\n"
    "<table border=\"0\" align=\"center\" style=\"margin-top: 20px;\"><tr><td>\n"
    "<b class=\"h1\">Looking for something?</b><br>\n"
    "We're sorry. The Web address you entered is not a functioning page on our site.<br><br>\n"
    "<b>Go to Amazon.com's <a href=\"/ref=cs_404_link\">Home</a> page</b>\n"
    "</td></tr></table>\n"
    "<div id=\"g\"><div class=\"a-text-center\">Sorry! We couldn't find that page. Try searching "
    "or go to Amazon's home page.</div>\n"
    "<img alt=\"Dogs of Amazon\" src=\"https://images-na.ssl-images-amazon.com/images/G/01/"
    "error/200._TTD_.jpg\"></div>\n</body>\n</html>\n";

/* Used when the fixtures directory has no robot-check page; modelled on the 2020 one. */
static const char captcha_fallback[] =
    "<!DOCTYPE html>\n<html class=\"a-no-js\" lang=\"en-us\"><head>\n"
    "<meta http-equiv=\"content-type\" content=\"text/html; charset=UTF-8\">\n"
    "<meta charset=\"utf-8\">\n<title dir=\"ltr\">Robot Check</title>\n</head>\n<body>\n"
    "<!--\n        To discuss automated access to Amazon data please contact "
    "api-services-support@amazon.com.\n-->\n"
    "<div class=\"a-container a-padding-double-large\">\n"
    "<div class=\"a-box a-alert a-alert-info a-spacing-base\"><div class=\"a-box-inner\">\n"
    "<h4>Enter the characters you see below</h4>\n"
    "<p class=\"a-last\">Sorry, we just need to make sure you're not a robot. For best results, "
    "please make sure your browser is accepting cookies.</p>\n</div></div>\n"
    "<form method=\"get\" action=\"/errors/validateCaptcha\" name=\"\">\n"
    "<h4>Type the characters you see in this image:</h4>\n"
    "<img src=\"https://images-na.ssl-images-amazon.com/captcha/usvmgloq/Captcha_kwrrnqwkph.jpg\">"
    "\n<input autocomplete=\"off\" spellcheck=\"false\" placeholder=\"Type characters\" "
    "id=\"captchacharacters\" name=\"field-keywords\" type=\"text\">\n"
    "<button type=\"submit\" class=\"a-button-text\">Continue shopping</button>\n</form>\n"
    "</div>\n</body></html>\n";

/* Blank-line runs as in the real SalesRank block (the extractor must skip them). */
static int append_blank_lines(buf *b, int n)
{
    int rc = BUF_OK;
    for (int i = 0; i < n && rc == BUF_OK; i++)
        rc = buf_append_str(b, "\n");
    return rc;
}

/* A category ladder: levels split on " > ", the last one bold like the real leaf. */
static int append_ladder(buf *b, const char *name, size_t item)
{
    int rc = BUF_OK;
    size_t level = 0;
    const char *p = name;
    while (rc == BUF_OK) {
        const char *sep = strstr(p, " > ");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        char *part = strndup(p, n);
        if (!part)
            return BUF_NOMEM;
        level++;
        if (!sep)
            rc = buf_append_str(b, "<b>");
        if (rc == BUF_OK)
            rc = buf_printf(b,
                            "<a href=\"https://www.amazon.com/gp/bestsellers/books/%zu/ref=pd_"
                            "zg_hrsr_books_%zu_%zu%s\">",
                            3839 + item * 10 + level, item, level, sep ? "" : "_last");
        if (rc == BUF_OK)
            rc = html_escape_mode(b, part, 1);
        free(part);
        if (rc == BUF_OK)
            rc = buf_append_str(b, sep ? "</a> &gt; " : "</a></b>");
        if (!sep)
            break;
        p = sep + 3;
    }
    return rc;
}

/*
 * A product page in amazon.com's 2019 markup, cut into four parts with padding between them
 * (20% before the title, 50% between title and details, 30% after), like the real page where
 * the title is ~150 KB in and the rank ~500 KB in.
 */
static int page_generated(const fs_state *st, const fs_scenario *sc, const char *key, fs_body *b)
{
    static const char bad_title[] = " \xC3\x28\xFF\xFE \x00 \xED\xA0\x80 end";
    int rc = -1;
    int with_rank = sc->page != PAGE_NO_RANK;
    int bad = sc->page == PAGE_INVALID_UTF8;
    size_t cut[4];
    char rank_text[40];
    buf t, p;

    buf_init(&t, 4 * FS_MAX_TITLE);
    buf_init(&p, 1u << 20);

    /* The title as markup, once; it appears in <title> and in productTitle. */
    if (sc->title && sc->title_raw) {
        if (buf_append_str(&t, sc->title) != BUF_OK)
            goto done;
    } else if (sc->title) {
        if (html_escape(&t, sc->title) != BUF_OK)
            goto done;
    } else {
        if (buf_append_str(&t, "Fixture Book ") != BUF_OK || html_escape(&t, key) != BUF_OK)
            goto done;
    }
    if (bad && buf_append(&t, bad_title, sizeof bad_title - 1) != BUF_OK)
        goto done;

    const char *cat = sc->category ? sc->category : "Books";
    long long rank = sc->rank ? sc->rank : 1 + (long long)(fnv1a(key) % 2000000u);
    format_rank(rank, rank_text, sizeof rank_text);
    size_t keylen = strlen(key);

    int e = BUF_OK;
    e |= buf_append_str(&p, "<!doctype html><html class=\"a-no-js\" data-19ax5a9jf=\"dingo\">"
                            "<!-- sp:feature:head-start -->\n<head><script>var aPageStart = "
                            "(new Date()).getTime();</script><meta charset=\"utf-8\">\n"
                            "<title>Amazon.com: ");
    e |= buf_append(&p, t.data, t.len);
    e |= buf_append_str(&p, ": ");
    e |= html_escape(&p, key);
    e |= buf_append_str(&p, ": Books</title>\n</head>\n<body class=\"a-m-us a-aui_72554-c\">\n"
                            "<div id=\"a-page\">\n");
    cut[0] = p.len;
    e |= buf_append_str(&p, "<div id=\"centerCol\" class=\"centerColAlign\">\n"
                            "  <div class=\"a-section a-spacing-none\">\n"
                            "      <h1 id=\"title\" class=\"a-spacing-none\">\n"
                            "        <span id=\"productTitle\" class=\"a-size-extra-large\">");
    e |= buf_append(&p, t.data, t.len);
    e |= buf_append_str(&p, "</span>\n\n        \n\n        \n        \n        \n"
                            "          <span id=\"bookEdition\" class=\"a-size-large a-color-"
                            "secondary a-text-normal\">Paperback</span>\n      </h1>\n  </div>\n"
                            "</div>\n");
    cut[1] = p.len;
    e |= buf_append_str(&p, "  <div id=\"detail-bullets\">\n<a name=\"productDetails\" "
                            "id=\"productDetails\" aria-hidden=\"true\"></a>\n<hr noshade=\""
                            "noshade\" size=\"1\" class=\"bucketDivider\" />\n<table cellpadding="
                            "\"0\" cellspacing=\"0\" border=\"0\" id=\"productDetailsTable\">\n"
                            "  <tr>\n    <td class=\"bucket\">\n<h2>Product details</h2>\n"
                            "  <div class=\"content\">\n<ul>\n<li><b>Paperback:</b> 272 pages</li>"
                            "\n<li><b>Publisher:</b> Fixture Press; 1 edition (April 1, 2019)"
                            "</li>\n<li><b>Language:</b> English</li>\n");
    e |= buf_append_str(&p, keylen == 13 ? "<li><b>ISBN-13:</b> " : "<li><b>ISBN-10:</b> ");
    e |= html_escape(&p, key);
    e |= buf_append_str(&p, "</li>\n");
    if (with_rank) {
        e |= buf_append_str(&p, "<li id=\"SalesRank\">\n<b>Amazon Best Sellers Rank:</b> \n");
        e |= append_blank_lines(&p, 33);
        e |= buf_printf(&p, "#%s in ", rank_text);
        e |= html_escape_mode(&p, cat, 1);
        e |= buf_append_str(&p, " (<a href=\"https://www.amazon.com/best-sellers-books-Amazon/"
                                "zgbs/books/ref=pd_dp_ts_books_1\">See Top 100 in ");
        e |= html_escape_mode(&p, cat, 1);
        e |= buf_append_str(&p, "</a>)\n \n");
        e |= append_blank_lines(&p, 24);

        static char languages[] = "Programming Languages", design[] = "Software Design";
        fs_category defaults[2] = {{1 + rank % 97, languages}, {1 + rank % 997, design}};
        const fs_category *cats = sc->has_categories ? sc->categories : defaults;
        size_t ncats = sc->has_categories ? sc->ncategories : 2;
        if (ncats > 0) {
            e |= buf_append_str(&p, "<style type=\"text/css\">\n"
                                    ".zg_hrsr { margin: 0; padding: 0; list-style-type: none; }\n"
                                    ".zg_hrsr_item { margin: 0 0 0 10px; }\n"
                                    ".zg_hrsr_rank { display: inline-block; width: 80px; "
                                    "text-align: right; }\n</style>\n<ul class=\"zg_hrsr\">\n");
            for (size_t i = 0; i < ncats; i++) {
                char crank[40];
                format_rank(cats[i].rank, crank, sizeof crank);
                e |= buf_printf(&p,
                                "    <li class=\"zg_hrsr_item\">\n    <span class=\"zg_hrsr_"
                                "rank\">#%s</span>\n    <span class=\"zg_hrsr_ladder\">"
                                "in&nbsp;",
                                crank);
                e |= append_ladder(&p, cats[i].name, i + 1);
                e |= buf_append_str(&p, "</span>\n    </li>\n");
            }
            e |= buf_append_str(&p, "</ul>\n");
        }
        e |= buf_append_str(&p, "</li>\n");
    }
    e |= buf_append_str(&p, "</ul>\n  </div>\n    </td>\n  </tr>\n</table>\n  </div>\n");
    cut[2] = p.len;
    e |= buf_append_str(&p, "</div>\n</body>\n</html>\n");
    cut[3] = p.len;
    if (e != BUF_OK)
        goto done;

    size_t len;
    b->owned = buf_steal(&p, &len);
    if (!b->owned)
        goto done;
    const char *filler = bad ? st->filler_bad : st->filler;
    uint64_t pad = sc->size > len ? sc->size - len : 0;
    uint64_t pads[3] = {pad * 2 / 10, pad * 5 / 10, 0};
    pads[2] = pad - pads[0] - pads[1];
    size_t from = 0;
    for (int i = 0; i < 4; i++) {
        body_add(b, b->owned + from, cut[i] - from, cut[i] - from);
        from = cut[i];
        if (i < 3)
            body_add_filler(b, filler, st->blanks, pads[i]);
    }
    rc = 0;
done:
    buf_free(&t);
    buf_free(&p);
    return rc;
}

/* ---- scenarios from JSON -------------------------------------------------------------------- */

static const char *page_name(enum fs_page pg)
{
    switch (pg) {
    case PAGE_GENERATED:
        return "generated";
    case PAGE_FIXTURE:
        return "fixture";
    case PAGE_CAPTCHA:
        return "captcha";
    case PAGE_NOT_FOUND:
        return "not_found";
    case PAGE_NO_RANK:
        return "no_rank";
    case PAGE_EMPTY:
        return "empty";
    case PAGE_INVALID_UTF8:
        return "invalid_utf8";
    }
    return "?";
}

static int config_file(fs_config *cfg, const char *dir, const char *name, size_t *index, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < cfg->nfiles; i++) {
        if (strcmp(cfg->files[i].name, name) == 0) {
            *index = i;
            return 0;
        }
    }
    if (!dir) {
        snprintf(err, errlen, "no fixtures directory (--fixtures or $FIXTURES)");
        return -1;
    }
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > 255) {
        snprintf(err, errlen, "bad fixture file name '%.60s'", name);
        return -1;
    }
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, errlen, "fixture path too long");
        return -1;
    }
    fs_file *files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof *files);
    if (!files) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cfg->files = files;
    fs_file *f = &files[cfg->nfiles];
    memset(f, 0, sizeof *f);
    if (read_file(path, &f->data, &f->len, err, errlen) != 0)
        return -1;
    f->name = strdup(name);
    if (!f->name) {
        free(f->data);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *index = cfg->nfiles++;
    return 0;
}

static int json_int_field(json_t *v, const char *field, long long lo, long long hi, long long *out,
                          char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "'%s' must be an integer in [%lld, %lld]", field, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int json_str_field(json_t *v, const char *field, size_t max, char **out, char *err,
                          size_t errlen)
{
    if (!json_is_string(v) || json_string_length(v) > max) {
        snprintf(err, errlen, "'%s' must be a string of at most %zu bytes", field, max);
        return -1;
    }
    free(*out);
    *out = strdup(json_string_value(v));
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int scenario_parse(fs_config *cfg, const char *dir, json_t *obj, fs_scenario *sc, char *err,
                          size_t errlen)
{
    const char *k;
    json_t *v;
    long long n;

    sc->fail_status = 503;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "a scenario must be an object");
        return -1;
    }
    json_object_foreach(obj, k, v) {
        if (strcmp(k, "page") == 0) {
            const char *s = json_string_value(v);
            if (!s) {
                snprintf(err, errlen, "'page' must be a string");
                return -1;
            }
            if (strncmp(s, "fixture:", 8) == 0) {
                sc->page = PAGE_FIXTURE;
                if (config_file(cfg, dir, s + 8, &sc->file, err, errlen) != 0)
                    return -1;
                continue;
            }
            enum fs_page all[] = {PAGE_GENERATED, PAGE_CAPTCHA, PAGE_NOT_FOUND,
                                  PAGE_NO_RANK,   PAGE_EMPTY,   PAGE_INVALID_UTF8};
            size_t i;
            for (i = 0; i < sizeof all / sizeof all[0]; i++)
                if (strcmp(s, page_name(all[i])) == 0)
                    break;
            if (i == sizeof all / sizeof all[0]) {
                snprintf(err, errlen, "unknown page '%.60s'", s);
                return -1;
            }
            sc->page = all[i];
        } else if (strcmp(k, "title") == 0) {
            if (json_str_field(v, k, FS_MAX_TITLE, &sc->title, err, errlen) != 0)
                return -1;
        } else if (strcmp(k, "title_raw") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, errlen, "'title_raw' must be a boolean");
                return -1;
            }
            sc->title_raw = json_is_true(v);
        } else if (strcmp(k, "rank") == 0) {
            if (json_int_field(v, k, 1, 1000000000000LL, &sc->rank, err, errlen) != 0)
                return -1;
        } else if (strcmp(k, "category") == 0) {
            if (json_str_field(v, k, 1024, &sc->category, err, errlen) != 0)
                return -1;
        } else if (strcmp(k, "categories") == 0) {
            if (!json_is_array(v) || json_array_size(v) > FS_MAX_CATEGORIES) {
                snprintf(err, errlen, "'categories' must be an array of at most %d [rank, name]",
                         FS_MAX_CATEGORIES);
                return -1;
            }
            sc->has_categories = 1;
            sc->categories = calloc(json_array_size(v) + 1, sizeof *sc->categories);
            if (!sc->categories) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item) {
                fs_category *c = &sc->categories[sc->ncategories];
                if (!json_is_array(item) || json_array_size(item) != 2 ||
                    json_int_field(json_array_get(item, 0), "categories[][0]", 1, 1000000000000LL,
                                   &c->rank, err, errlen) != 0 ||
                    json_str_field(json_array_get(item, 1), "categories[][1]", 1024, &c->name, err,
                                   errlen) != 0) {
                    if (!err[0])
                        snprintf(err, errlen, "each category must be [rank, \"name\"]");
                    if (c->name)
                        sc->ncategories++;
                    return -1;
                }
                sc->ncategories++;
            }
        } else if (strcmp(k, "status") == 0) {
            if (json_int_field(v, k, 100, 599, &n, err, errlen) != 0)
                return -1;
            sc->status = (int)n;
        } else if (strcmp(k, "delay_ms") == 0) {
            if (json_int_field(v, k, 0, FS_MAX_DELAY_MS, &n, err, errlen) != 0)
                return -1;
            sc->delay_ms = (long)n;
        } else if (strcmp(k, "size") == 0) {
            if (json_int_field(v, k, 0, FS_MAX_PAGE_SIZE, &n, err, errlen) != 0)
                return -1;
            sc->size = (size_t)n;
        } else if (strcmp(k, "gzip") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, errlen, "'gzip' must be a boolean");
                return -1;
            }
            sc->gzip = json_is_true(v);
        } else if (strcmp(k, "fail_first") == 0) {
            if (json_int_field(v, k, 0, LONG_MAX, &n, err, errlen) != 0)
                return -1;
            sc->fail_first = (long)n;
        } else if (strcmp(k, "fail_status") == 0) {
            if (json_int_field(v, k, 100, 599, &n, err, errlen) != 0)
                return -1;
            sc->fail_status = (int)n;
        } else if (strcmp(k, "retry_after") == 0) {
            if (json_str_field(v, k, 128, &sc->retry_after, err, errlen) != 0)
                return -1;
            if (strpbrk(sc->retry_after, "\r\n")) {
                snprintf(err, errlen, "'retry_after' must be one line");
                return -1;
            }
        } else if (strcmp(k, "fault") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "reset") == 0)
                sc->fault = FAULT_RESET;
            else if (s && strcmp(s, "truncate") == 0)
                sc->fault = FAULT_TRUNCATE;
            else if (s && strcmp(s, "redirect_loop") == 0)
                sc->fault = FAULT_REDIRECT_LOOP;
            else if (s && strcmp(s, "huge") == 0)
                sc->fault = FAULT_HUGE;
            else if (s && strcmp(s, "none") == 0)
                sc->fault = FAULT_NONE;
            else {
                snprintf(err, errlen, "unknown fault (reset, truncate, redirect_loop, huge)");
                return -1;
            }
        } else {
            /* Reject typos loudly: a silently ignored key makes a test pass for nothing. */
            snprintf(err, errlen, "unknown scenario key '%.60s'", k);
            return -1;
        }
    }
    return 0;
}

/* A config from a /_config body. NULL with a message in err when it is invalid. */
static fs_config *config_parse(const char *dir, json_t *root, char *err, size_t errlen)
{
    fs_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&cfg->refs, 1);
    cfg->dflt.fail_status = 503;
    cfg->index = json_object();
    if (!cfg->index) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!root)
        return cfg;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the config must be an object {\"default\": ..., \"books\": ...}");
        goto fail;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "default") != 0 && strcmp(k, "books") != 0) {
            snprintf(err, errlen, "unknown config key '%.60s'", k);
            goto fail;
        }
    }
    json_t *d = json_object_get(root, "default");
    if (d && !json_is_null(d) && scenario_parse(cfg, dir, d, &cfg->dflt, err, errlen) != 0)
        goto fail;
    json_t *books = json_object_get(root, "books");
    if (books && !json_is_null(books)) {
        if (!json_is_object(books)) {
            snprintf(err, errlen, "'books' must be an object of key -> scenario");
            goto fail;
        }
        cfg->books = calloc(json_object_size(books) + 1, sizeof *cfg->books);
        if (!cfg->books) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        json_object_foreach(books, k, v) {
            fs_scenario *sc = &cfg->books[cfg->nbooks++];
            if (scenario_parse(cfg, dir, v, sc, err, errlen) != 0)
                goto fail;
            if (json_object_set_new(cfg->index, k, json_integer((json_int_t)cfg->nbooks - 1))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
    }
    return cfg;
fail:
    config_unref(cfg);
    return NULL;
}

/* ---- counters ------------------------------------------------------------------------------- */

/* Zeroes the counters; requests still running stay counted as in flight. Lock held. */
static void counters_reset_locked(fs_state *st)
{
    st->requests = 0;
    st->max_in_flight = st->in_flight;
    for (size_t i = 0; i < st->nhosts; i++)
        st->hosts[i].max_in_flight = st->hosts[i].in_flight;
    json_object_clear(st->hits);
    st->narrivals = 0;
}

static size_t host_index_locked(fs_state *st, const char *host)
{
    char name[FS_MAX_HOST + 1];
    snprintf(name, sizeof name, "%s", host ? host : "");
    for (size_t i = 0; i < st->nhosts; i++)
        if (strcmp(st->hosts[i].name, name) == 0)
            return i;
    if (st->nhosts == FS_MAX_HOSTS)
        return FS_MAX_HOSTS - 1; /* overflow hosts share the last slot */
    fs_host *h = &st->hosts[st->nhosts];
    memset(h, 0, sizeof *h);
    memcpy(h->name, name, sizeof name);
    return st->nhosts++;
}

/* A book request arrives: count it, pick its scenario. */
static void book_arrive(fs_state *st, fs_request *rq, struct MHD_Connection *conn)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    int64_t now = mono_ms();

    pthread_mutex_lock(&st->lock);
    rq->cfg = st->config;
    config_ref(rq->cfg);
    json_t *ix = json_object_get(rq->cfg->index, rq->key);
    rq->scen = ix ? &rq->cfg->books[json_integer_value(ix)] : &rq->cfg->dflt;

    st->requests++;
    st->in_flight++;
    if (st->in_flight > st->max_in_flight)
        st->max_in_flight = st->in_flight;
    rq->host = host_index_locked(st, host);
    fs_host *h = &st->hosts[rq->host];
    h->in_flight++;
    if (h->in_flight > h->max_in_flight)
        h->max_in_flight = h->in_flight;

    json_t *hit = json_object_get(st->hits, rq->key);
    if (hit) {
        rq->hit = (long)json_integer_value(hit) + 1;
        json_integer_set(hit, rq->hit);
    } else {
        rq->hit = 1;
        /* json_object_set_new refuses keys that are not UTF-8; those just go uncounted. */
        if (json_object_size(st->hits) < FS_MAX_HIT_KEYS)
            json_object_set_new(st->hits, rq->key, json_integer(1));
    }

    if (st->narrivals == st->caparrivals && st->caparrivals < FS_MAX_ARRIVALS) {
        size_t cap = st->caparrivals ? st->caparrivals * 2 : 4096;
        if (cap > FS_MAX_ARRIVALS)
            cap = FS_MAX_ARRIVALS;
        int64_t *a = realloc(st->arrivals, cap * sizeof *a);
        if (a) {
            st->arrivals = a;
            st->caparrivals = cap;
        }
    }
    if (st->narrivals < st->caparrivals)
        st->arrivals[st->narrivals++] = now;
    pthread_mutex_unlock(&st->lock);
}

static json_t *stats_json(fs_state *st)
{
    json_t *o = json_object(), *byhost = json_object(), *arr = json_array();
    pthread_mutex_lock(&st->lock);
    json_t *hits = json_deep_copy(st->hits);
    json_object_set_new(o, "requests", json_integer(st->requests));
    json_object_set_new(o, "in_flight", json_integer(st->in_flight));
    json_object_set_new(o, "max_in_flight", json_integer(st->max_in_flight));
    for (size_t i = 0; i < st->nhosts; i++)
        if (st->hosts[i].max_in_flight > 0)
            json_object_set_new(byhost, st->hosts[i].name,
                                json_integer(st->hosts[i].max_in_flight));
    for (size_t i = 0; i < st->narrivals; i++)
        json_array_append_new(arr, json_integer(st->arrivals[i]));
    pthread_mutex_unlock(&st->lock);
    json_object_set_new(o, "max_in_flight_by_host", byhost);
    json_object_set_new(o, "hits", hits);
    json_object_set_new(o, "arrivals_ms", arr);
    return o;
}

/* ---- responses ------------------------------------------------------------------------------ */

static enum MHD_Result send_buffer(struct MHD_Connection *conn, unsigned status, const char *type,
                                   const char *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)data,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return send_buffer(conn, 500, "text/plain", "out of memory\n", 14);
    enum MHD_Result ret = send_buffer(conn, status, "application/json", s, strlen(s));
    free(s);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    return send_json(conn, status, json_pack("{s:s}", "error", msg));
}

static int accepts_gzip(struct MHD_Connection *conn)
{
    const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (!ae)
        return 0;
    /* Tokens separated by commas; "gzip;q=0" is a refusal. */
    while (*ae) {
        while (*ae == ' ' || *ae == ',')
            ae++;
        const char *end = strchr(ae, ',');
        size_t n = end ? (size_t)(end - ae) : strlen(ae);
        if ((n >= 4 && strncasecmp(ae, "gzip", 4) == 0 &&
             (n == 4 || ae[4] == ';' || ae[4] == ' ')) ||
            (n >= 1 && ae[0] == '*' && (n == 1 || ae[1] == ';'))) {
            const char *q = memchr(ae, '=', n);
            return !(q && strtod(q + 1, NULL) == 0.0);
        }
        ae += n;
    }
    return 0;
}

static enum MHD_Result answer_fail(struct MHD_Connection *conn, const fs_request *rq)
{
    const fs_scenario *sc = rq->scen;
    const char *reason = MHD_get_reason_phrase_for((unsigned)sc->fail_status);
    char page[512];
    int n = snprintf(page, sizeof page,
                     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n<body><h1>%s</h1>"
                     "\n<p>Injected failure %ld of %ld. Please try again later.</p>\n"
                     "</body></html>\n",
                     sc->fail_status, reason, reason, rq->hit, sc->fail_first);
    if (n < 0 || (size_t)n >= sizeof page)
        n = 0;
    struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, page,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html;charset=UTF-8");
    if (sc->retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, sc->retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)sc->fail_status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_redirect(struct MHD_Connection *conn, const char *url)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    char loc[2048];
    int n;
    if (host && strlen(host) <= FS_MAX_HOST && !strpbrk(host, "\r\n"))
        n = snprintf(loc, sizeof loc, "http://%s%s", host, url);
    else
        n = snprintf(loc, sizeof loc, "%s", url);
    if (n < 0 || (size_t)n >= sizeof loc || strpbrk(loc, "\r\n"))
        return send_error(conn, 400, "url too long for a redirect");
    static const char body[] = "<html><body>Moved</body></html>\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof body - 1, (void *)(uintptr_t)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html;charset=UTF-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_FOUND, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_book(fs_state *st, struct MHD_Connection *conn, const char *url,
                                   fs_request *rq)
{
    const fs_scenario *sc = rq->scen;
    enum MHD_Result ret = MHD_NO;
    int gz = 0;

    if (sc->delay_ms > 0)
        sleep_ms(sc->delay_ms);
    if (rq->hit <= sc->fail_first)
        return answer_fail(conn, rq);
    if (sc->fault == FAULT_REDIRECT_LOOP)
        return answer_redirect(conn, url);

    fs_body *b = calloc(1, sizeof *b);
    if (!b)
        return MHD_NO;
    b->fd = -1;
    b->fault = sc->fault;
    unsigned status = sc->status ? (unsigned)sc->status : 200;

    if (sc->fault == FAULT_HUGE) {
        static const char head[] = "<!doctype html><html><head><meta charset=\"utf-8\">"
                                   "<title>Amazon.com</title></head><body>\n";
        body_add(b, head, sizeof head - 1, sizeof head - 1);
        body_add(b, st->filler, (size_t)FS_FILLER_BLOCK * FS_FILLER_BLOCKS,
                 FS_HUGE_BYTES - (sizeof head - 1));
    } else {
        switch (sc->page) {
        case PAGE_GENERATED:
        case PAGE_NO_RANK:
        case PAGE_INVALID_UTF8:
            if (page_generated(st, sc, rq->key, b) != 0)
                goto done;
            break;
        case PAGE_FIXTURE: {
            const fs_file *f = &rq->cfg->files[sc->file];
            body_add(b, f->data, f->len, f->len);
            break;
        }
        case PAGE_CAPTCHA:
            body_add(b, st->captcha, st->captcha_len, st->captcha_len);
            break;
        case PAGE_NOT_FOUND:
            body_add(b, not_found_page, sizeof not_found_page - 1, sizeof not_found_page - 1);
            if (!sc->status)
                status = MHD_HTTP_NOT_FOUND;
            break;
        case PAGE_EMPTY:
            break;
        }
        gz = sc->gzip && b->total > 0 && accepts_gzip(conn);
        if (gz && body_gzip(b) != 0)
            goto done;
    }

    b->cfg = rq->cfg;
    config_ref(b->cfg);
    b->send_limit = b->total;
    b->declared = b->total;
    if (sc->fault == FAULT_HUGE) {
        b->declared = MHD_SIZE_UNKNOWN;
    } else if (sc->fault == FAULT_RESET) {
        b->send_limit = b->total / 2;
        if (b->total == 0)
            b->declared = 1024;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        b->fd = ci ? ci->connect_fd : -1;
    } else if (sc->fault == FAULT_TRUNCATE) {
        b->declared = b->total + 1024 + b->total / 4;
    }

    struct MHD_Response *r = MHD_create_response_from_callback(b->declared, FS_READ_BLOCK,
                                                               body_read, b, body_free);
    if (!r)
        goto done;
    b = NULL; /* the response owns it now */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html;charset=UTF-8");
    if (sc->gzip)
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
done:
    body_free(b);
    return ret;
}

/* ---- control endpoints ---------------------------------------------------------------------- */

static enum MHD_Result answer_control(fs_state *st, struct MHD_Connection *conn, const char *url,
                                      const char *method, fs_request *rq)
{
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;

    if (strcmp(url, "/_stats") == 0) {
        if (!is_get)
            return send_error(conn, 405, "use GET");
        return send_json(conn, 200, stats_json(st));
    }
    if (strcmp(url, "/_reset") == 0) {
        if (!is_post)
            return send_error(conn, 405, "use POST");
        pthread_mutex_lock(&st->lock);
        counters_reset_locked(st);
        pthread_mutex_unlock(&st->lock);
        return send_json(conn, 200, json_pack("{s:b}", "ok", 1));
    }
    if (strcmp(url, "/_config") == 0) {
        if (!is_post)
            return send_error(conn, 405, "use POST");
        if (rq->body_too_big)
            return send_error(conn, 413, "config body too large");
        json_error_t jerr;
        json_t *root = rq->body.len ? json_loadb(rq->body.data, rq->body.len, 0, &jerr) : NULL;
        if (rq->body.len && !root) {
            char msg[300];
            snprintf(msg, sizeof msg, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
            return send_error(conn, 400, msg);
        }
        char err[300] = "";
        fs_config *cfg = config_parse(st->fixtures_dir, root, err, sizeof err);
        json_decref(root);
        if (!cfg)
            return send_error(conn, 400, err);
        pthread_mutex_lock(&st->lock);
        fs_config *old = st->config;
        st->config = cfg;
        counters_reset_locked(st);
        pthread_mutex_unlock(&st->lock);
        config_unref(old);
        return send_json(conn, 200, json_pack("{s:b}", "ok", 1));
    }
    return send_error(conn, 404, "unknown control path (/_config, /_stats, /_reset)");
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------------- */

/* The last non-empty path segment, or "" when there is none or it is too long. */
static void url_key(const char *url, char *key, size_t keylen)
{
    size_t end = strlen(url);
    while (end > 0 && url[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    key[0] = '\0';
    if (end > start && end - start < keylen) {
        memcpy(key, url + start, end - start);
        key[end - start] = '\0';
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
    fs_state *st = cls;
    fs_request *rq = *req_cls;
    (void)version;

    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *req_cls = rq;
        buf_init(&rq->body, FS_MAX_CONFIG_BODY);
        if (strncmp(url, "/_", 2) == 0) {
            rq->kind = REQ_CONTROL;
        } else if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            url_key(url, rq->key, sizeof rq->key);
            if (rq->key[0]) {
                rq->kind = REQ_BOOK;
                book_arrive(st, rq, conn);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->kind == REQ_CONTROL && !rq->body_too_big &&
            buf_append(&rq->body, upload_data, *upload_size) != BUF_OK)
            rq->body_too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    switch (rq->kind) {
    case REQ_CONTROL:
        return answer_control(st, conn, url, method, rq);
    case REQ_BOOK:
        return answer_book(st, conn, url, rq);
    case REQ_OTHER:
        break;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_error(conn, 405, "book pages answer GET");
    return send_error(conn, 404, "no book key in the path");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    fs_state *st = cls;
    fs_request *rq = *req_cls;
    (void)conn;
    (void)why;
    if (!rq)
        return;
    if (rq->kind == REQ_BOOK) {
        pthread_mutex_lock(&st->lock);
        st->in_flight--;
        st->hosts[rq->host].in_flight--;
        pthread_mutex_unlock(&st->lock);
    }
    config_unref(rq->cfg);
    buf_free(&rq->body);
    free(rq);
    *req_cls = NULL;
}

/* ---- main ----------------------------------------------------------------------------------- */

/* Ends the server when the parent's end of stdin closes (the parent died or is done). */
static void *stdin_watch(void *arg)
{
    char chunk[256];
    (void)arg;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    kill(getpid(), SIGTERM);
    return NULL;
}

/* Only a pipe, socket or terminal can tell us the parent is gone; /dev/null or a file cannot. */
static int stdin_watchable(void)
{
    struct stat sb;
    if (fstat(STDIN_FILENO, &sb) != 0)
        return 0;
    return S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode) || isatty(STDIN_FILENO);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fixture_store [--port N] [--fixtures DIR]\n"
                 "  Serves scripted store pages on 127.0.0.1; prints \"PORT <n>\" when ready.\n"
                 "  Control: POST /_config, GET /_stats, POST /_reset.\n");
}

int main(int argc, char **argv)
{
    static fs_state st;
    int port = 0, rc = 1;
    struct MHD_Daemon *d = NULL;
    sigset_t sigs;

    st.fixtures_dir = getenv("FIXTURES");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 0 || p > 65535) {
                fprintf(stderr, "fixture_store: bad port '%s'\n", argv[i]);
                return 2;
            }
            port = (int)p;
        } else if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc) {
            st.fixtures_dir = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (st.fixtures_dir && !*st.fixtures_dir)
        st.fixtures_dir = NULL;

    /* Up to 1024 connections plus files: lift the soft descriptor limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    /* Blocked in every thread; main collects them with sigwait(). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    pthread_mutex_init(&st.lock, NULL);
    char err[300] = "";
    st.hits = json_object();
    st.config = config_parse(NULL, NULL, err, sizeof err);
    if (!st.hits || !st.config || filler_init(&st) != 0) {
        fprintf(stderr, "fixture_store: out of memory\n");
        goto done;
    }
    if (st.fixtures_dir) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", st.fixtures_dir, FS_CAPTCHA_FILE);
        if (n > 0 && (size_t)n < sizeof path &&
            read_file(path, &st.captcha, &st.captcha_len, err, sizeof err) != 0)
            st.captcha = NULL;
    }
    if (!st.captcha) {
        st.captcha = strdup(captcha_fallback);
        st.captcha_len = sizeof captcha_fallback - 1;
        if (!st.captcha)
            goto done;
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, on_request, &st, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)FS_MAX_CONNECTIONS, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)FS_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, &st, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fixture_store: cannot listen on 127.0.0.1:%d\n", port);
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    if (stdin_watchable()) {
        pthread_t t;
        if (pthread_create(&t, NULL, stdin_watch, NULL) == 0)
            pthread_detach(t);
    }
    int sig;
    while (sigwait(&sigs, &sig) != 0)
        ;
    /* A connection stuck on a stalled client must not keep us alive forever. */
    alarm(10);
    rc = 0;
done:
    if (d)
        MHD_stop_daemon(d);
    config_unref(st.config);
    json_decref(st.hits);
    free(st.arrivals);
    free(st.filler);
    free(st.filler_bad);
    free(st.blanks);
    free(st.captcha);
    return rc;
}
