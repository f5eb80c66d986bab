/*
 * bookrank dashboard.
 *
 * Everything shown here that came from a store page (titles, categories, error messages) is
 * untrusted, so the DOM is built only with createElement / textContent / setAttribute on known
 * attribute names; nothing is ever parsed as HTML. The page runs under a strict CSP (no inline
 * script or style), so styles are set through classes or element.style.
 */
'use strict';

(function () {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TOKEN_KEY = 'bookrank.token';
  const POLL_MS = 500;
  const RELOAD_MS = 60000;
  const STATUSES = ['ok', 'no_rank', 'not_found', 'blocked', 'error'];
  const STATUS_LABEL = {
    ok: 'ok', no_rank: 'no rank', not_found: 'not found', blocked: 'blocked', error: 'error',
    unchecked: 'not checked',
  };

  const state = {
    books: [],
    authRequired: false,
    sort: { key: 'rank', dir: 1 },
    filterText: '',
    filterStatus: '',
    expanded: null,          // isbn13 of the book whose chart is open
    showCategories: false,
    history: new Map(),      // isbn13 -> Promise of observations (newest first)
    sparks: new Map(),       // isbn13 -> sparkline points, once history has been fetched
    jobRunning: false,
    loading: false,
  };

  const $ = (id) => document.getElementById(id);
  const fmtInt = new Intl.NumberFormat('en-US');

  /* ---------- DOM helpers ---------- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) setAttrs(node, attrs);
    for (const c of children) append(node, c);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    if (attrs) setAttrs(node, attrs);
    for (const c of children) append(node, c);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.setAttribute('class', v);
      else if (k === 'text') node.textContent = String(v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { for (const c of child) append(node, c); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  /* ---------- API ---------- */

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message || code || ('HTTP ' + status));
      this.status = status;
      this.code = code || '';
      this.details = Array.isArray(details) ? details : [];
    }
  }

  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage may be disabled; the token then lives for this call only */ }
  }

  async function rawApi(method, path, body) {
    const headers = { Accept: 'application/json' };
    const opts = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const token = getToken();
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach the bookrank server.');
    }
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      if (text) {
        try { data = JSON.parse(text); } catch (e) { data = null; }
      }
    }
    if (!res.ok) {
      const err = data && data.error ? data.error : {};
      throw new ApiError(res.status, err.code, err.message || ('HTTP ' + res.status), err.details);
    }
    return data;
  }

  /* Mutating calls ask for a token first when the server wants one, and once more on a 401. */
  async function api(method, path, body) {
    const mutating = method !== 'GET';
    if (mutating && state.authRequired && !getToken()) {
      if (!(await askToken(''))) throw new ApiError(401, 'unauthorized', 'An access token is needed.');
    }
    try {
      return await rawApi(method, path, body);
    } catch (e) {
      if (e.status === 401 && mutating) {
        const hadToken = !!getToken();
        setToken('');
        state.authRequired = true;
        if (await askToken(hadToken ? 'That token was not accepted.' : '')) {
          return rawApi(method, path, body);
        }
      }
      throw e;
    }
  }

  /* ---------- dialogs ---------- */

  function openDialog(dlg) {
    return new Promise((resolve) => {
      const onClose = () => {
        dlg.removeEventListener('close', onClose);
        resolve(dlg.returnValue);
      };
      dlg.returnValue = '';
      dlg.addEventListener('close', onClose);
      dlg.showModal();
    });
  }

  async function askToken(problem) {
    const dlg = $('token-dialog');
    const input = $('token-input');
    const errEl = $('token-error');
    input.value = '';
    errEl.textContent = problem || '';
    errEl.hidden = !problem;
    const answer = await openDialog(dlg);
    const token = input.value.trim();
    input.value = '';
    if (answer !== 'ok' || !token) return false;
    setToken(token);
    return true;
  }

  async function confirmAction(title, text, okLabel) {
    const dlg = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    return (await openDialog(dlg)) === 'ok';
  }

  /* ---------- banner ---------- */

  function showBanner(message, kind) {
    $('banner-text').textContent = message;
    $('banner').className = 'banner ' + (kind || 'error');
    $('banner').hidden = false;
  }

  function hideBanner() { $('banner').hidden = true; }

  function reportError(prefix, e) {
    showBanner(prefix + ': ' + (e && e.message ? e.message : String(e)), 'error');
  }

  /* ---------- formatting ---------- */

  function fmtRank(r) { return '#' + fmtInt.format(r); }

  function relTime(iso, now) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    const s = Math.round((now - t) / 1000);
    if (s < 45) return 'just now';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min ago';
    const h = Math.round(m / 60);
    if (h < 36) return h + ' h ago';
    const d = Math.round(h / 24);
    if (d < 60) return d + (d === 1 ? ' day ago' : ' days ago');
    return new Date(t).toLocaleDateString();
  }

  function exactTime(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return iso || '';
    return new Date(t).toLocaleString() + ' (' + iso + ')';
  }

  /* ---------- book helpers ---------- */

  function latestOf(book) { return Array.isArray(book.latest) ? book.latest : []; }

  /* The observation that stands for the book when sorting: its best ranked source. */
  function primary(book) {
    let best = null;
    for (const o of latestOf(book)) {
      if (typeof o.rank === 'number' && (!best || o.rank < best.rank)) best = o;
    }
    return best;
  }

  function changeOf(o) {
    if (!o || typeof o.rank !== 'number' || typeof o.previous_rank !== 'number') return null;
    return o.previous_rank - o.rank;   // positive: the rank number fell, so the book sells better
  }

  function statusesOf(book) {
    const l = latestOf(book);
    return l.length ? l.map((o) => o.status) : ['unchecked'];
  }

  function matchesFilter(book) {
    if (state.filterStatus && !statusesOf(book).includes(state.filterStatus)) return false;
    const q = state.filterText.trim().toLowerCase();
    if (!q) return true;
    const hay = [book.title || '', book.isbn13 || '', book.isbn10 || ''];
    for (const o of latestOf(book)) {
      hay.push(o.source || '', o.rank_category || '');
      for (const c of o.categories || []) hay.push(c.category || '');
    }
    const qDigits = q.replace(/[\s-]/g, '');
    return hay.some((h) => {
      const s = String(h).toLowerCase();
      return s.includes(q) || (qDigits && s.includes(qDigits));
    });
  }

  function compareBooks(a, b) {
    const { key, dir } = state.sort;
    if (key === 'title') {
      const ta = (a.title || '').toLowerCase();
      const tb = (b.title || '').toLowerCase();
      if (!ta !== !tb) return ta ? -1 : 1;
      return dir * ta.localeCompare(tb) || a.isbn13.localeCompare(b.isbn13);
    }
    let va; let vb;
    if (key === 'rank') {
      va = primary(a); vb = primary(b);
      va = va ? va.rank : null; vb = vb ? vb.rank : null;
    } else {
      // "change" sorts the biggest improvement first.
      va = changeOf(primary(a)); vb = changeOf(primary(b));
      va = va === null ? null : -va; vb = vb === null ? null : -vb;
    }
    if (va === null && vb === null) return a.isbn13.localeCompare(b.isbn13);
    if (va === null) return 1;            // books without a value always go last
    if (vb === null) return -1;
    return dir * (va - vb) || a.isbn13.localeCompare(b.isbn13);
  }

  /* ---------- table ---------- */

  function render() {
    const body = $('books-body');
    const now = Date.now();
    const shown = state.books.filter(matchesFilter).sort(compareBooks);
    if (sparkObserver) sparkObserver.disconnect();
    clear(body);
    for (const book of shown) {
      body.appendChild(renderRow(book, now));
      if (state.expanded === book.isbn13) body.appendChild(renderDetailRow(book));
    }
    const total = state.books.length;
    $('book-count').textContent = total ? '(' + (shown.length === total ? total : shown.length + ' of ' + total) + ')' : '';
    const empty = $('empty');
    if (!total) {
      empty.textContent = state.loading ? 'Loading…' : 'No books tracked yet. Paste some ISBNs above to start.';
      empty.hidden = false;
    } else if (!shown.length) {
      empty.textContent = 'No book matches the filter.';
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    renderSummary();
    updateSortHeaders();
    observeSparklines();
  }

  function renderSummary() {
    const box = $('status-summary');
    clear(box);
    const counts = {};
    for (const b of state.books) for (const s of new Set(statusesOf(b))) counts[s] = (counts[s] || 0) + 1;
    for (const s of [...STATUSES, 'unchecked']) {
      if (!counts[s]) continue;
      const chip = el('button', {
        type: 'button',
        class: 'chip status-' + s + (state.filterStatus === s ? ' active' : ''),
        title: state.filterStatus === s ? 'Show all' : 'Show only ' + STATUS_LABEL[s],
        onclick: () => {
          state.filterStatus = state.filterStatus === s ? '' : s;
          $('filter-status').value = state.filterStatus;
          render();
        },
      }, String(counts[s]) + ' ' + STATUS_LABEL[s]);
      box.appendChild(chip);
    }
  }

  function updateSortHeaders() {
    for (const btn of document.querySelectorAll('button.sort')) {
      const th = btn.parentElement;
      const active = btn.dataset.sort === state.sort.key;
      btn.classList.toggle('active', active);
      btn.classList.toggle('desc', active && state.sort.dir < 0);
      if (active) th.setAttribute('aria-sort', state.sort.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  function renderRow(book, now) {
    const latest = latestOf(book);
    const tr = el('tr', { class: 'book' + (state.expanded === book.isbn13 ? ' expanded' : '') +
      (latest.length > 1 ? ' multi' : '') });
    tr.dataset.isbn = book.isbn13;

    const titleText = book.title ? book.title : '(title not known yet)';
    tr.appendChild(el('td', { class: 'col-title', 'data-label': 'Title' },
      el('button', {
        type: 'button', class: 'title-btn' + (book.title ? '' : ' muted'),
        'aria-expanded': state.expanded === book.isbn13 ? 'true' : 'false',
        title: 'Show rank history',
        onclick: () => toggleExpanded(book.isbn13),
      }, titleText)));

    tr.appendChild(el('td', { class: 'col-isbn mono', 'data-label': 'ISBN',
      title: book.isbn10 ? 'ISBN-10 ' + book.isbn10 : null }, book.isbn13));

    const rankTd = el('td', { class: 'col-rank', 'data-label': 'Rank' });
    const changeTd = el('td', { class: 'col-change', 'data-label': 'Change' });
    const statusTd = el('td', { class: 'col-status', 'data-label': 'Status' });
    const checkedTd = el('td', { class: 'col-checked', 'data-label': 'Last checked' });
    const multi = latest.length > 1;

    if (!latest.length) {
      rankTd.appendChild(el('span', { class: 'muted' }, '—'));
      changeTd.appendChild(el('span', { class: 'muted' }, ''));
      statusTd.appendChild(statusBadge('unchecked', 'No observation yet: press Refresh'));
      checkedTd.appendChild(el('span', { class: 'muted' }, 'never'));
    }
    for (const o of latest) {
      rankTd.appendChild(rankLine(o, multi));
      changeTd.appendChild(el('div', { class: 'line' }, changeBadge(o)));
      statusTd.appendChild(el('div', { class: 'line' }, statusBadge(o.status, o.error, o)));
      checkedTd.appendChild(el('div', { class: 'line reltime', title: exactTime(o.fetched_at),
        'data-time': o.fetched_at || '' }, relTime(o.fetched_at, now)));
    }
    tr.append(rankTd, changeTd);

    const spark = el('td', { class: 'col-history', 'data-label': 'History' },
      el('button', { type: 'button', class: 'spark-btn', title: 'Show rank history',
        'aria-label': 'Show rank history of ' + titleText,
        onclick: () => toggleExpanded(book.isbn13) }));
    spark.dataset.isbn = book.isbn13;
    tr.appendChild(spark);

    tr.append(statusTd, checkedTd);

    tr.appendChild(el('td', { class: 'col-actions' },
      el('button', {
        type: 'button', class: 'remove-btn', title: 'Stop tracking this book',
        'aria-label': 'Remove ' + titleText,
        onclick: () => removeBook(book),
      }, 'Remove')));
    return tr;
  }

  function rankLine(o, multi) {
    const line = el('div', { class: 'line rank-line' });
    if (typeof o.rank === 'number') {
      line.appendChild(el('span', { class: 'rank' }, fmtRank(o.rank)));
      // Plain spaces between the unbreakable parts let a narrow column wrap between them.
      if (o.rank_category) line.append(' ', el('span', { class: 'cat' }, 'in ' + o.rank_category));
    } else {
      line.appendChild(el('span', { class: 'muted' }, '—'));
    }
    if (multi) line.append(' ', el('span', { class: 'source' }, o.source || ''));
    const cats = Array.isArray(o.categories) ? o.categories : [];
    if (cats.length) {
      // The best category rank is shown; all of them are on hover.
      const top = cats.reduce((m, c) => (typeof c.rank === 'number' && (!m || c.rank < m.rank) ? c : m), null);
      if (top) line.appendChild(el('span', { class: 'subrank' }, fmtRank(top.rank) + ' in ' + top.category));
      line.title = cats.map((c) => fmtRank(c.rank) + ' in ' + c.category).join('\n');
    }
    return line;
  }

  function changeBadge(o) {
    const d = changeOf(o);
    if (d === null) {
      if (typeof o.rank === 'number') return el('span', { class: 'change new', title: 'First rank seen' }, 'new');
      return el('span', { class: 'muted' }, '');
    }
    const was = 'was ' + fmtRank(o.previous_rank);
    if (d === 0) return el('span', { class: 'change same', title: 'Unchanged (' + was + ')' }, '= 0');
    const pct = Math.round(Math.abs(d) / o.previous_rank * 100);
    if (d > 0) {
      return el('span', { class: 'change up', title: 'Better by ' + fmtInt.format(d) + ' places (' + was + ', ' + pct + '%)' },
        el('span', { class: 'arrow', 'aria-hidden': 'true' }, '▲'), ' ' + fmtInt.format(d));
    }
    return el('span', { class: 'change down', title: 'Worse by ' + fmtInt.format(-d) + ' places (' + was + ', ' + pct + '%)' },
      el('span', { class: 'arrow', 'aria-hidden': 'true' }, '▼'), ' ' + fmtInt.format(-d));
  }

  function statusBadge(status, error, o) {
    const known = STATUSES.includes(status) || status === 'unchecked';
    const cls = 'badge status-' + (known ? status : 'error');
    let title = error || null;
    if (!title && o && o.source) title = o.source;
    const badge = el('span', { class: cls, title }, STATUS_LABEL[status] || String(status));
    if (error) badge.classList.add('has-error');
    return badge;
  }

  function refreshRelativeTimes() {
    const now = Date.now();
    for (const node of document.querySelectorAll('.reltime')) {
      node.textContent = relTime(node.dataset.time, now);
    }
  }

  /* ---------- history: sparklines and chart ---------- */

  function loadHistory(isbn) {
    let p = state.history.get(isbn);
    if (!p) {
      p = rawApi('GET', '/api/books/' + encodeURIComponent(isbn) + '/history?limit=500')
        .then((d) => (d && Array.isArray(d.observations) ? d.observations : []));
      p.catch(() => forgetHistory(isbn));
      state.history.set(isbn, p);
    }
    return p;
  }

  let sparkObserver = null;

  function observeSparklines() {
    if (!sparkObserver && 'IntersectionObserver' in window) {
      sparkObserver = new IntersectionObserver((entries) => {
        for (const e of entries) {
          if (!e.isIntersecting) continue;
          sparkObserver.unobserve(e.target);
          fillSparkline(e.target);
        }
      }, { rootMargin: '200px' });
    }
    for (const td of document.querySelectorAll('td.col-history')) {
      // Known sparklines are drawn at once so re-rendering the table does not flicker.
      if (state.sparks.has(td.dataset.isbn) || !sparkObserver) fillSparkline(td);
      else sparkObserver.observe(td);
    }
  }

  /* Ranked points per source, oldest first. */
  function seriesBySource(observations) {
    const map = new Map();
    for (const o of observations) {
      const t = Date.parse(o.fetched_at);
      if (Number.isNaN(t)) continue;
      const src = o.source || '?';
      if (!map.has(src)) map.set(src, []);
      map.get(src).push({ t, o });
    }
    for (const list of map.values()) list.sort((a, b) => a.t - b.t);
    return map;
  }

  /* The ranked points of the source with the most of them, oldest first (at most the last 60). */
  function sparkPoints(observations) {
    let best = [];
    for (const list of seriesBySource(observations).values()) {
      const ranked = list.filter((p) => typeof p.o.rank === 'number');
      if (ranked.length > best.length) best = ranked;
    }
    return best.slice(-60);
  }

  function drawSparkline(td, points) {
    const btn = td.querySelector('.spark-btn');
    if (!btn) return;
    td.dataset.filled = '1';
    clear(btn);
    if (!points) btn.appendChild(el('span', { class: 'muted' }, '—'));
    else if (!points.length) btn.appendChild(el('span', { class: 'muted' }, 'no data'));
    else btn.appendChild(sparkline(points));
  }

  async function fillSparkline(td) {
    const isbn = td.dataset.isbn;
    if (td.dataset.filled) return;
    if (!state.sparks.has(isbn)) {
      try {
        state.sparks.set(isbn, sparkPoints(await loadHistory(isbn)));
      } catch (e) {
        drawSparkline(td, null);
        return;
      }
    }
    if (td.isConnected) drawSparkline(td, state.sparks.get(isbn));
  }

  /* Forget cached history (all books when isbn is omitted) so it is fetched again. */
  function forgetHistory(isbn) {
    if (isbn === undefined) {
      state.history.clear();
      state.sparks.clear();
    } else {
      state.history.delete(isbn);
      state.sparks.delete(isbn);
    }
  }

  function sparkline(points) {
    const W = 110; const H = 28; const P = 3;
    const ranks = points.map((p) => p.o.rank);
    const lo = Math.log10(Math.max(1, Math.min(...ranks)));
    const hi = Math.log10(Math.max(1, Math.max(...ranks)));
    const t0 = points[0].t; const t1 = points[points.length - 1].t;
    const x = (t) => (t1 === t0 ? W / 2 : P + (t - t0) / (t1 - t0) * (W - 2 * P));
    // Rank 1 is at the top: a rising line means a better-selling book.
    const y = (r) => (hi === lo ? H / 2 : P + (Math.log10(Math.max(1, r)) - lo) / (hi - lo) * (H - 2 * P));
    const coords = points.map((p) => x(p.t).toFixed(1) + ',' + y(p.o.rank).toFixed(1));
    const last = points[points.length - 1];
    const first = points[0];
    const trend = last.o.rank < first.o.rank ? 'up' : last.o.rank > first.o.rank ? 'down' : 'same';
    const s = svg('svg', { class: 'sparkline trend-' + trend, viewBox: '0 0 ' + W + ' ' + H,
      width: W, height: H, role: 'img',
      'aria-label': 'Rank history: ' + points.length + ' points, latest ' + fmtRank(last.o.rank) });
    s.appendChild(svg('polyline', { class: 'spark-line', points: coords.join(' ') }));
    s.appendChild(svg('circle', { class: 'spark-dot', cx: x(last.t).toFixed(1), cy: y(last.o.rank).toFixed(1), r: 2.5 }));
    return s;
  }

  function toggleExpanded(isbn) {
    state.expanded = state.expanded === isbn ? null : isbn;
    render();
  }

  function renderDetailRow(book) {
    const td = el('td', { colspan: 8, class: 'detail-cell' });
    const tr = el('tr', { class: 'detail' }, td);
    tr.dataset.isbn = book.isbn13;
    const chartBox = el('div', { class: 'chart-box' }, el('p', { class: 'muted' }, 'Loading history…'));
    const catToggle = el('input', { type: 'checkbox', class: 'cat-toggle' });
    catToggle.checked = state.showCategories;
    const head = el('div', { class: 'detail-head' },
      el('h3', null, book.title || book.isbn13),
      el('label', { class: 'check' }, catToggle, ' show category ranks'),
      el('button', { type: 'button', class: 'link close-detail', onclick: () => toggleExpanded(book.isbn13) }, 'Close'));
    td.append(head, chartBox);

    let observations = null;
    const draw = () => {
      clear(chartBox);
      if (!observations) return;
      // Drawn at the visible table width (not the cell's, which the chart itself would widen)
      // so labels keep their size on any screen.
      const avail = $('books').parentElement.clientWidth - 64;
      const width = Math.max(280, Math.min(1400, avail));
      chartBox.appendChild(historyChart(observations, state.showCategories, width));
    };
    catToggle.addEventListener('change', () => {
      state.showCategories = catToggle.checked;
      draw();
    });
    loadHistory(book.isbn13).then((obs) => {
      observations = obs;
      draw();
    }, (e) => {
      clear(chartBox);
      chartBox.appendChild(el('p', { class: 'error-text' }, 'Could not load history: ' + e.message));
    });
    return tr;
  }

  function niceLogTicks(lo, hi) {
    const ticks = [];
    const span = Math.log10(hi) - Math.log10(lo);
    const mult = span < 0.8 ? [1, 1.5, 2, 3, 4, 5, 6, 8] : span < 1.5 ? [1, 2, 5] : span < 3 ? [1, 3] : [1];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mult) {
        const v = m * Math.pow(10, e);
        if (v >= lo && v <= hi) ticks.push(v);
      }
    }
    return ticks;
  }

  function shortRank(v) {
    const trim = (x) => String(Math.round(x * 10) / 10);
    if (v >= 1e6) return trim(v / 1e6) + 'M';
    if (v >= 1e3) return trim(v / 1e3) + 'k';
    return trim(v);
  }

  function timeTicks(t0, t1, n) {
    if (t1 <= t0) return [t0];
    const out = [];
    for (let i = 0; i < n; i++) out.push(t0 + (t1 - t0) * i / (n - 1));
    return out;
  }

  function fmtTick(t, span) {
    const d = new Date(t);
    if (span < 15 * 60000) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (span < 2 * 86400000) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (span < 300 * 86400000) return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
    return d.toLocaleDateString([], { year: 'numeric', month: 'short' });
  }

  /* One line per source (and optionally per category rank), rank axis logarithmic with #1 on top. */
  function historyChart(observations, withCategories, width) {
    const bySource = seriesBySource(observations);
    const series = [];
    const marks = [];     // observations without a rank, shown as ticks under the plot
    // Sources keep the same colour whether or not category lines are shown.
    let srcIdx = 0;
    let catIdx = bySource.size;
    for (const [src, list] of bySource) {
      const colour = srcIdx++ % 6;
      const pts = [];
      const cats = new Map();
      for (const p of list) {
        if (typeof p.o.rank === 'number' && p.o.rank > 0) {
          pts.push({ t: p.t, r: p.o.rank, label: src + ': ' + fmtRank(p.o.rank) + (p.o.rank_category ? ' in ' + p.o.rank_category : '') });
        } else {
          marks.push({ t: p.t, status: p.o.status, label: src + ': ' + (STATUS_LABEL[p.o.status] || p.o.status) + (p.o.error ? ' — ' + p.o.error : '') });
        }
        if (withCategories) {
          for (const c of p.o.categories || []) {
            if (typeof c.rank !== 'number' || c.rank <= 0) continue;
            const key = String(c.category);
            if (!cats.has(key)) cats.set(key, []);
            cats.get(key).push({ t: p.t, r: c.rank, label: src + ': ' + fmtRank(c.rank) + ' in ' + key });
          }
        }
      }
      series.push({ name: src, colour, pts, cat: false });
      for (const [name, cpts] of cats) {
        series.push({ name: name + (bySource.size > 1 ? ' (' + src + ')' : ''), colour: catIdx++ % 6, pts: cpts, cat: true });
      }
    }
    const all = series.flatMap((s) => s.pts);
    const wrap = el('div', { class: 'chart' });
    if (!all.length && !marks.length) {
      wrap.appendChild(el('p', { class: 'muted' }, 'No observations yet.'));
      return wrap;
    }

    const W = width || 720; const H = W < 500 ? 220 : 280;
    const L = 52; const R = 16; const T = 14; const B = 44;
    const times = all.map((p) => p.t).concat(marks.map((m) => m.t));
    let t0 = Math.min(...times); let t1 = Math.max(...times);
    if (t0 === t1) { t0 -= 3600000; t1 += 3600000; }
    let rlo = all.length ? Math.min(...all.map((p) => p.r)) : 1;
    let rhi = all.length ? Math.max(...all.map((p) => p.r)) : 10;
    rlo = Math.max(1, rlo / 1.15);
    rhi = rhi * 1.15;
    // A nearly flat history still gets a readable band (a factor of 4) centred on it.
    if (rhi / rlo < 4) {
      const mid = Math.sqrt(rlo * rhi);
      rlo = Math.max(1, mid / 2);
      rhi = Math.max(rlo * 4, mid * 2);
    }
    const llo = Math.log10(rlo); const lhi = Math.log10(rhi);
    const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
    const y = (r) => T + (Math.log10(r) - llo) / (lhi - llo) * (H - T - B);

    const s = svg('svg', { class: 'history-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'Rank history chart' });
    const grid = svg('g', { class: 'grid' });
    for (const v of niceLogTicks(rlo, rhi)) {
      const yy = y(v).toFixed(1);
      grid.appendChild(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy }));
      grid.appendChild(svg('text', { x: L - 6, y: yy, class: 'ylab', 'dominant-baseline': 'middle', 'text-anchor': 'end' }, '#' + shortRank(v)));
    }
    const span = t1 - t0;
    let lastLabel = '';
    // As many time labels as fit without overlapping (about 7 px per character at 11 px).
    const labelWidth = fmtTick(t1, span).length * 7.2 + 28;
    const nTicks = Math.max(2, Math.min(6, Math.floor((W - L - R) / labelWidth) + 1));
    for (const t of timeTicks(t0, t1, nTicks)) {
      const label = fmtTick(t, span);
      if (label === lastLabel) continue;   // short spans round several ticks to the same label
      lastLabel = label;
      const xx = x(t).toFixed(1);
      // The last label ends at its tick so it is not cut off at the right edge.
      const anchor = t === t1 && t1 > t0 ? 'end' : 'middle';
      grid.appendChild(svg('line', { x1: xx, x2: xx, y1: T, y2: H - B, class: 'vgrid' }));
      grid.appendChild(svg('text', { x: xx, y: H - B + 16, class: 'xlab', 'text-anchor': anchor }, label));
    }
    grid.appendChild(svg('text', { x: 12, y: T + (H - T - B) / 2, class: 'axis-title',
      transform: 'rotate(-90 12 ' + (T + (H - T - B) / 2) + ')', 'text-anchor': 'middle' }, 'rank (better ↑)'));
    s.appendChild(grid);

    for (const ser of series) {
      if (!ser.pts.length) continue;
      const g = svg('g', { class: 'series c' + ser.colour + (ser.cat ? ' cat' : '') });
      const coords = ser.pts.map((p) => x(p.t).toFixed(1) + ',' + y(p.r).toFixed(1)).join(' ');
      g.appendChild(svg('polyline', { points: coords }));
      for (const p of ser.pts) {
        g.appendChild(svg('circle', { cx: x(p.t).toFixed(1), cy: y(p.r).toFixed(1), r: ser.cat ? 2 : 3.2 },
          svg('title', null, p.label + '\n' + new Date(p.t).toLocaleString())));
      }
      s.appendChild(g);
    }
    for (const m of marks) {
      const xx = x(m.t).toFixed(1);
      s.appendChild(svg('rect', { class: 'mark status-' + m.status, x: (xx - 2).toFixed(1), y: H - B + 22, width: 4, height: 8 },
        svg('title', null, m.label + '\n' + new Date(m.t).toLocaleString())));
    }
    wrap.appendChild(s);

    const legend = el('ul', { class: 'legend' });
    for (const ser of series) {
      if (!ser.pts.length) continue;
      legend.appendChild(el('li', { class: 'c' + ser.colour + (ser.cat ? ' cat' : '') },
        el('span', { class: 'swatch', 'aria-hidden': 'true' }), ser.name + ' (' + ser.pts.length + ')'));
    }
    if (marks.length) legend.appendChild(el('li', { class: 'marks' }, el('span', { class: 'swatch mark-swatch' }),
      marks.length + ' check(s) without a rank'));
    wrap.appendChild(legend);
    return wrap;
  }

  /* ---------- loading and actions ---------- */

  function latestStamp(book) {
    return latestOf(book).map((o) => o.source + '@' + o.fetched_at).join(' ');
  }

  async function loadBooks() {
    state.loading = true;
    try {
      const data = await rawApi('GET', '/api/books');
      const books = Array.isArray(data) ? data : (data && Array.isArray(data.books) ? data.books : []);
      // A book checked since the last load (say by a scheduled refresh) needs its history again.
      const seen = new Map(state.books.map((b) => [b.isbn13, latestStamp(b)]));
      for (const b of books) {
        if (seen.has(b.isbn13) && seen.get(b.isbn13) !== latestStamp(b)) forgetHistory(b.isbn13);
      }
      state.books = books;
    } catch (e) {
      reportError('Could not load books', e);
    } finally {
      state.loading = false;
    }
    render();
  }

  function splitIsbns(text) {
    return text.split(/[\n\r,;]+/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  async function addBooks(ev) {
    ev.preventDefault();
    const textarea = $('add-text');
    const errors = $('add-errors');
    const result = $('add-result');
    const entries = splitIsbns(textarea.value);
    clear(errors);
    errors.hidden = true;
    result.textContent = '';
    result.className = 'add-result';
    textarea.classList.remove('invalid');
    if (!entries.length) {
      result.textContent = 'Paste at least one ISBN.';
      result.classList.add('error-text');
      return;
    }
    const btn = $('add-btn');
    btn.disabled = true;
    try {
      const refresh = $('add-refresh').checked;
      const data = await api('POST', '/api/books', { isbns: entries, refresh });
      const added = (data && data.added) || [];
      const already = (data && data.already_tracked) || [];
      const parts = [];
      parts.push('Added ' + added.length + (added.length === 1 ? ' book' : ' books'));
      if (already.length) parts.push(already.length + ' already tracked');
      result.textContent = parts.join(', ') + '.';
      result.classList.add('ok-text');
      textarea.value = '';
      for (const isbn of added) forgetHistory(isbn);
      await loadBooks();
      if (data && data.job) followJob(data.job);
    } catch (e) {
      if (e.status === 400 && e.details.length) {
        textarea.classList.add('invalid');
        result.textContent = e.details.length === 1
          ? '1 entry is not a valid ISBN. Nothing was added; fix it and try again.'
          : e.details.length + ' entries are not valid ISBNs. Nothing was added; fix them and try again.';
        result.classList.add('error-text');
        for (const d of e.details) {
          const input = d.input !== undefined ? String(d.input) : (typeof d.index === 'number' ? entries[d.index] : '');
          errors.appendChild(el('li', null,
            el('span', { class: 'bad-input mono' }, input === '' ? '(empty)' : input),
            el('span', { class: 'reason' }, d.reason || 'invalid'),
            typeof d.index === 'number' ? el('span', { class: 'muted where' }, 'entry ' + (d.index + 1)) : null));
        }
        errors.hidden = false;
      } else {
        result.textContent = 'Could not add: ' + e.message;
        result.classList.add('error-text');
      }
    } finally {
      btn.disabled = false;
    }
  }

  async function removeBook(book) {
    const name = book.title ? '“' + book.title + '” (' + book.isbn13 + ')' : book.isbn13;
    const ok = await confirmAction('Remove book?', 'Stop tracking ' + name + ' and delete its whole rank history? This cannot be undone.', 'Remove');
    if (!ok) return;
    try {
      await api('DELETE', '/api/books/' + encodeURIComponent(book.isbn13));
      state.books = state.books.filter((b) => b.isbn13 !== book.isbn13);
      forgetHistory(book.isbn13);
      if (state.expanded === book.isbn13) state.expanded = null;
      render();
    } catch (e) {
      if (e.status === 404) { await loadBooks(); return; }
      reportError('Could not remove the book', e);
    }
  }

  /* ---------- refresh jobs ---------- */

  function renderJob(job) {
    const box = $('job');
    box.hidden = false;
    const total = job.total || 0;
    const done = job.done || 0;
    const finished = job.state === 'done' || job.state === 'cancelled';
    box.classList.toggle('finished', finished);
    let label;
    if (job.state === 'queued') label = 'Queued…';
    else if (finished) label = (job.state === 'cancelled' ? 'Cancelled: ' : 'Done: ') + done + ' of ' + total + ' checked';
    else label = 'Checking ' + done + ' of ' + total + '…';
    $('job-label').textContent = label;
    const bar = $('job-bar');
    bar.style.width = (total ? Math.min(100, done / total * 100) : (finished ? 100 : 0)).toFixed(1) + '%';
    $('job-bar-outer').setAttribute('role', 'progressbar');
    $('job-bar-outer').setAttribute('aria-valuemin', '0');
    $('job-bar-outer').setAttribute('aria-valuemax', String(total));
    $('job-bar-outer').setAttribute('aria-valuenow', String(done));
    const counts = $('job-counts');
    clear(counts);
    const c = job.counts || {};
    for (const s of STATUSES) {
      if (!c[s]) continue;
      counts.appendChild(el('span', { class: 'chip small status-' + s, 'data-status': s }, c[s] + ' ' + STATUS_LABEL[s]));
    }
  }

  let jobTimer = null;
  let hideJobTimer = null;

  function followJob(job) {
    if (!job || !job.id) return;
    clearTimeout(hideJobTimer);
    clearTimeout(jobTimer);
    state.jobRunning = true;
    $('refresh-btn').disabled = true;
    $('refresh-btn').textContent = 'Refreshing…';
    renderJob(job);
    const poll = async () => {
      let cur = job;
      try {
        cur = await rawApi('GET', '/api/jobs/' + encodeURIComponent(job.id));
        if (cur && cur.job) cur = cur.job;
        renderJob(cur);
      } catch (e) {
        if (e.status === 404) cur = Object.assign({}, job, { state: 'cancelled' });
        else { jobTimer = setTimeout(poll, POLL_MS * 4); return; }
      }
      if (cur.state === 'done' || cur.state === 'cancelled') {
        finishJob();
        return;
      }
      jobTimer = setTimeout(poll, POLL_MS);
    };
    if (job.state === 'done' || job.state === 'cancelled') finishJob();
    else jobTimer = setTimeout(poll, POLL_MS);
  }

  async function finishJob() {
    state.jobRunning = false;
    forgetHistory();
    $('refresh-btn').disabled = false;
    $('refresh-btn').textContent = 'Refresh all';
    await loadBooks();
    hideJobTimer = setTimeout(() => { $('job').hidden = true; }, 15000);
  }

  async function startRefresh() {
    if (state.jobRunning) return;
    const btn = $('refresh-btn');
    btn.disabled = true;
    try {
      const data = await api('POST', '/api/refresh');
      const job = data && data.job ? data.job : data;
      followJob(job);
    } catch (e) {
      btn.disabled = false;
      reportError('Could not start a refresh', e);
    }
  }

  /* ---------- wiring ---------- */

  async function init() {
    $('add-form').addEventListener('submit', addBooks);
    $('add-text').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('add-form').requestSubmit();
    });
    $('refresh-btn').addEventListener('click', startRefresh);
    $('banner-close').addEventListener('click', hideBanner);
    $('filter-text').addEventListener('input', (e) => { state.filterText = e.target.value; render(); });
    $('filter-status').addEventListener('change', (e) => { state.filterStatus = e.target.value; render(); });
    for (const btn of document.querySelectorAll('button.sort')) {
      btn.addEventListener('click', () => {
        const key = btn.dataset.sort;
        if (state.sort.key === key) state.sort.dir = -state.sort.dir;
        else state.sort = { key, dir: 1 };
        render();
      });
    }
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.expanded && !document.querySelector('dialog[open]')) toggleExpanded(state.expanded);
    });
    setInterval(refreshRelativeTimes, 30000);
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (state.expanded) render(); }, 200);
    });
    setInterval(() => { if (!state.jobRunning && !document.hidden) loadBooks(); }, RELOAD_MS);

    rawApi('GET', '/api/config').then((cfg) => {
      state.authRequired = !!(cfg && cfg.auth_required);
      if (cfg && cfg.version) $('version').textContent = 'bookrank ' + cfg.version;
    }, () => { /* an older server without /api/config: find out on the first 401 */ });
    state.loading = true;
    render();
    await loadBooks();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
