#!/usr/bin/env python3
"""Writes the committed seed corpora, tests/fuzz/seeds/<target>/ (run from the repository root).

    python3 tests/fuzz/make_seeds.py [FIXTURES]     (default tests/fixtures)

Extractor seeds are small slices of the real pages (the page head, the title element and the
Best Sellers Rank block, each cut at a tag boundary) plus synthetic pages covering the traps the
rules handle; the other targets' seeds are hand-written. Input formats are described at the top
of each tests/fuzz/fuzz_<target>.c. Re-running rewrites the same files.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def isbn10_check(d9):
    c = (11 - sum(int(d) * (10 - i) for i, d in enumerate(d9)) % 11) % 11
    return "X" if c == 10 else str(c)


def isbn13_check(d12):
    return str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(d12)) % 10) % 10)


def slice_at(page, start, end):
    """page[start:end] widened to the nearest tag boundaries."""
    start = max(0, page.rfind(b"<", 0, max(start, 1)))
    close = page.find(b">", end)
    return page[start:close + 1 if close >= 0 else len(page)]


# ---- extract: status comes from the first byte ('<' = 200, see fuzz_extract.c) -------------
LABEL = re.compile(rb"Best[ -]?[Ss]ellers?[ -]*[Rr]ank|Bestseller-Rang|Classement des meilleures ventes")
TITLE = re.compile(rb"id=[\"']?(?:productTitle|ebooksProductTitle|btAsinTitle)")

if os.path.isdir(FIXTURES):
    for fn in sorted(os.listdir(FIXTURES)):
        if not fn.endswith(".html"):
            continue
        page = open(os.path.join(FIXTURES, fn), "rb").read()
        base = fn[:-5]
        if len(page) <= 8192:
            write("extract", base + ".html", page)
            continue
        parts = [page[:1500].rsplit(b">", 1)[0] + b">"]
        t = TITLE.search(page)
        if t:
            parts.append(slice_at(page, t.start() - 300, t.start() + 1200))
        m = LABEL.search(page)
        if m:
            block = slice_at(page, m.start() - 400, m.start() + 9000)
            parts.append(block)
            write("extract", base + "_block.html", b"<html>" + block)
        write("extract", base + "_slices.html", b"\n".join(parts))

SYNTH = {
    "minimal_ok.html": '<span id="productTitle"> A &amp; B </span><b>Best Sellers Rank:</b> '
                       '#1,234 in Books (See Top 100 in Books)<ul><li>#2 in <a>Books</a> &gt; '
                       '<a>C</a></li><li>#17 in <a>Textbooks</a></li></ul>',
    "de_ok.html": '<span id="productTitle">Das Buch</span><b>Amazon Bestseller-Rang:</b> '
                  'Nr. 13.222 in B\u00fccher (Siehe Top 100 in B\u00fccher)<ul><li>Nr. 3 in '
                  '<a>B\u00fccher</a> \u203a <a>Informatik</a></li></ul>',
    "fr_ok.html": "<span id='productTitle'>L&#39;Espion</span>Classement des meilleures ventes "
                  "d&#39;Amazon : </span> 11\u202f406 en Livres (Voir les 100 premiers en Livres) "
                  "<ul><li> 20 en <a>Services secrets</a></li></ul>",
    "kindle_ok.html": '<h1 id="ebooksProductTitle">Kindle&nbsp;Title&#x2014;x</h1>Best Sellers '
                      'Rank: #8,557 Paid in Kindle Store (See Top 100 Paid in Kindle Store)'
                      '<ul><li>#4 in <a>Kindle eBooks</a> > <a>Cooking</a></li></ul>',
    "decoys.html": '<style>#SalesRank { color: red } Best Sellers Rank</style><script>var x = '
                   '"Best Sellers Rank";</script><!-- Best Sellers Rank: #9 in X --><span '
                   'id=productTitle>T</span><li><b>Best Sellers Rank:</b>\n\n\n<style>.a{}</style>'
                   '\n#5 in Books</li>',
    "no_rank.html": '<span id="productTitle" class="a">\n\n   Only a title   \n</span>',
    "not_found.html": "<html><title>Page Not Found</title>Sorry! We couldn't find that page.</html>",
    "not_found_de.html": "<html>Dies ist keine funktionierende Seite unserer Website.</html>",
    "captcha.html": "<html><title>Robot Check</title><form action=/errors/validateCaptcha>"
                    "Enter the characters you see below</form></html>",
    "garbage.html": "<html><body><p>Nothing to see</p></body></html>",
    "entities.html": '<span id="productTitle">&#0;&#128;&#x10FFFF;&#xD800;&#99999999;&shy;&lt;b'
                     '&gt;&amp;&NewLine;&Tab;&hellip;&euro;&nbsp;&unknown;&#</span>',
}
for name, text in SYNTH.items():
    write("extract", name, text)
# Raw bytes: invalid UTF-8, a Latin-1 no-break space, NULs, and first bytes picking statuses.
write("extract", "invalid_utf8.html",
      b'<span id="productTitle">caf\xe9 \xa0 \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \x00nul</span>'
      b'Best Sellers Rank: #1\xa0234 in B\xfccher')
write("extract", "status_403_captcha.html", b"\x05<title>Robot Check</title>")     # 403
write("extract", "status_404.html", b"\x06<span id=productTitle>T</span>")       # 404
write("extract", "status_503_captcha.html", b"\x0a<form action=validateCaptcha>")  # 503
write("extract", "status_500_ok_page.html", b"\x09" + SYNTH["minimal_ok.html"].encode())  # 500
write("extract", "status_0_ok_page.html", b"\x00" + SYNTH["minimal_ok.html"].encode())    # 0

# ---- isbn -----------------------------------------------------------------------------------
books = ["013110362", "020161622", "059600712", "080442957", "155860832"]
for i, d9 in enumerate(books):
    isbn10 = d9 + isbn10_check(d9)
    write("isbn", "isbn10_%d" % i, isbn10)
    d12 = "978" + d9
    write("isbn", "isbn13_%d" % i, d12 + isbn13_check(d12))
write("isbn", "hyphens", "978-0-13-110362-7")
write("isbn", "spaces_tabs", " 0 13 110362\t8 ")
write("isbn", "lower_x", "080442957x")
write("isbn", "isbn979", "979-10-90636-07-" + isbn13_check("979109063607"))
write("isbn", "bad_check", "9780131103628")
write("isbn", "bad_prefix", "9770131103627")
write("isbn", "x_in_isbn13", "978013110362X")
write("isbn", "too_long", "97801311036270")
write("isbn", "empty_seps", "- -\t")
write("isbn", "bad_byte", b"978\xc3\xa9013110362")

# ---- body: byte 0 = type (bits 0-1: 0 json, 1 text, 3 other) | cap index << 2 ------------------
def body(type_bits, cap_index, text):
    return bytes([type_bits | cap_index << 2]) + text.encode("utf-8")

write("body", "json_ok", body(0, 6, '{"isbns": ["978-0-13-110362-7", "0131103628"], "refresh": true}'))
write("body", "json_empty", body(0, 1, '{"isbns": []}'))
write("body", "json_invalid", body(0, 6, '{"isbns": ["97801311036X7", 5, null, "\u00fc", "", '
                                         '{"a": [1]}], "refresh": false}'))
write("body", "json_too_many", body(0, 1, '{"isbns": ["0131103628", "0201616224"]}'))
write("body", "json_not_object", body(0, 6, '["0131103628"]'))
write("body", "json_bad_refresh", body(0, 6, '{"isbns": [], "refresh": "yes"}'))
write("body", "json_duplicate", body(0, 6, '{"isbns": [], "isbns": []}'))
write("body", "json_broken", body(0, 6, '{"isbns": ["0131103628"'))
write("body", "json_nul", body(0, 6, '{"isbns": ["013110\\u00003628"]}'))
write("body", "text_ok", body(1, 6, "9780131103627\n0-201-61622-X, 979-10-90636-07-"
                                    + isbn13_check("979109063607") + "\r\n\n"))
write("body", "text_too_many", body(1, 2, "0131103628\n0201616224\n0596007124"))
write("body", "text_invalid", body(1, 6, "0131103628\nnot an isbn\n\xe9\n"))
write("body", "text_blank", body(1, 0, " \n , \n"))
write("body", "other_type", body(3, 6, "isbns=0131103628"))

# ---- route: "PATH[?QUERY]" -----------------------------------------------------------------
for name, text in {
    "books": "/api/books",
    "book": "/api/books/978-0-13-110362-7",
    "history": "/api/books/0131103628/history?since=2026-11-24T12:00:05.123+01:00&limit=10",
    "history_date": "/api/books/9780131103627/history?since=2024-02-29",
    "job": "/api/jobs/42",
    "export": "/api/export.csv?since=2026-11-24T00:00Z&source=amazon.com",
    "config": "/api/config",
    "health": "/healthz",
    "metrics": "/metrics?every=1h30m&x=90s&y=3600&z=1d&w=2w",
    "empty_segment": "/api/books//history",
    "trailing_slash": "/api/books/",
    "leap_second": "/api/refresh?since=2016-12-31T23:59:60Z",
    "offset": "/?since=1970-01-01T00:00:00-23:59",
    "fraction": "/?since=9999-12-31t23:59:59.999999999z",
    "duration": "6h",
    "iso": "2026-11-24 12:00",
    "long_segment": "/api/books/" + "9" * 300 + "/history",
}.items():
    write("route", name, text)
print("seeds written to", SEEDS)
