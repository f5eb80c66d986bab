/*
 * table.js - the books table as a whole: which books it shows (text, status and tag filters), in
 * which order (the sortable columns), the editions of one work under a heading row for the work,
 * the status chips above it, the count and the empty state. It redraws on every changed()
 * (state.js).
 */
import { attachedAsin, changeOf, idOf, latestOf, primary, statusesOf, tagsOf, workOf } from './books.js';
import { renderDetailRow } from './chart.js';
import { byId, clear, el } from './dom.js';
import { fmtRank, relTime, STATUS_LABEL, STATUSES } from './format.js';
import { renderRow } from './row.js';
import { observeSparklines } from './sparkline.js';
import { changed, onChange, state } from './state.js';

const view = {
  sort: { key: 'rank', dir: 1 },
  filterText: '',
  filterStatus: '',
};

export function initTable() {
  onChange(render);
  byId('filter-text').addEventListener('input', (e) => { view.filterText = e.target.value; changed(); });
  byId('filter-status').addEventListener('change', (e) => { view.filterStatus = e.target.value; changed(); });
  byId('filter-tag').addEventListener('change', (e) => { state.filterTag = e.target.value; changed(); });
  for (const btn of document.querySelectorAll('button.sort')) {
    btn.addEventListener('click', () => {
      const key = btn.dataset.sort;
      if (view.sort.key === key) view.sort.dir = -view.sort.dir;
      else view.sort = { key, dir: 1 };
      changed();
    });
  }
}

/* Rewrites "5 min ago" and the like as time passes, without redrawing the table. */
export function refreshRelativeTimes() {
  const now = Date.now();
  for (const node of document.querySelectorAll('.reltime')) {
    node.textContent = relTime(node.dataset.time, now);
  }
}

function render() {
  const body = byId('books-body');
  const now = Date.now();
  const shown = state.books.filter(matchesFilter).sort(compareBooks);
  clear(body);
  for (const item of groupByWork(shown)) {
    if (item.work) body.appendChild(workRow(item));
    for (const book of item.books) {
      body.appendChild(renderRow(book, now, !!item.work));
      if (state.expanded === idOf(book)) body.appendChild(renderDetailRow(book));
    }
  }
  const total = state.books.length;
  byId('book-count').textContent = total ? '(' + (shown.length === total ? total : shown.length + ' of ' + total) + ')' : '';
  const empty = byId('empty');
  if (!total) {
    empty.textContent = state.loading ? 'Loading…' : 'No books tracked yet. Paste some ISBNs, ASINs or product links above to start.';
    empty.hidden = false;
  } else if (!shown.length) {
    empty.textContent = 'No book matches the filter.';
    empty.hidden = false;
  } else {
    empty.hidden = true;
  }
  renderSummary();
  renderTagFilter();
  updateSortHeaders();
  observeSparklines(body);
}

/*
 * The sorted books as the table shows them: a book without a work on its own ({work: '', books:
 * [book]}), the editions of a work together ({work, books}) where the first of them would be,
 * in the sorted order among themselves.
 */
function groupByWork(sorted) {
  const items = [];
  const works = new Map();
  for (const book of sorted) {
    const work = workOf(book);
    if (!work) {
      items.push({ work: '', books: [book] });
      continue;
    }
    let item = works.get(work);
    if (!item) {
      item = { work, books: [] };
      works.set(work, item);
      items.push(item);
    }
    item.books.push(book);
  }
  return items;
}

/* The heading row of a work: its name, how many editions are shown, their formats and the best
 * rank among them. */
function workRow(item) {
  const n = item.books.length;
  const formats = [...new Set(item.books.map((b) => b.format).filter(Boolean))];
  let best = null;
  for (const b of item.books) {
    const o = primary(b);
    if (o && (!best || o.rank < best.rank)) best = o;
  }
  const tr = el('tr', { class: 'work-row', 'data-work': item.work },
    el('th', { colspan: 8, scope: 'rowgroup', class: 'work-cell' },
      el('span', { class: 'work-name' }, item.work),
      ' ',
      el('span', { class: 'work-count muted' }, n + (n === 1 ? ' edition' : ' editions')),
      formats.length ? el('span', { class: 'work-formats muted' }, formats.join(' · ')) : null,
      best ? el('span', { class: 'work-best' }, 'best ' + fmtRank(best.rank)) : null));
  return tr;
}

/* The tag select: every tag of the tracked books, and the one chosen even if no book has it. */
function renderTagFilter() {
  const select = byId('filter-tag');
  const tags = new Set();
  for (const b of state.books) for (const t of tagsOf(b)) tags.add(t);
  if (state.filterTag) tags.add(state.filterTag);
  const sorted = [...tags].sort((a, b) => a.localeCompare(b));
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.length !== sorted.length || have.some((t, i) => t !== sorted[i])) {
    while (select.options.length > 1) select.remove(1);
    for (const t of sorted) select.appendChild(el('option', { value: t }, t));
  }
  select.value = state.filterTag;
  select.hidden = sorted.length === 0;
}
/* One chip per status with its number of books; a chip toggles the status filter. */
function renderSummary() {
  const box = byId('status-summary');
  clear(box);
  const counts = {};
  for (const b of state.books) for (const s of new Set(statusesOf(b))) counts[s] = (counts[s] || 0) + 1;
  for (const s of [...STATUSES, 'needs_asin', 'unchecked']) {
    if (!counts[s]) continue;
    const active = view.filterStatus === s;
    box.appendChild(el('button', {
      type: 'button',
      class: 'chip status-' + s + (active ? ' active' : ''),
      title: active ? 'Show all' : 'Show only ' + STATUS_LABEL[s],
      onclick: () => {
        view.filterStatus = active ? '' : s;
        byId('filter-status').value = view.filterStatus;
        changed();
      },
    }, String(counts[s]) + ' ' + STATUS_LABEL[s]));
  }
}

function updateSortHeaders() {
  for (const btn of document.querySelectorAll('button.sort')) {
    const th = btn.parentElement;
    const active = btn.dataset.sort === view.sort.key;
    btn.classList.toggle('active', active);
    btn.classList.toggle('desc', active && view.sort.dir < 0);
    if (active) th.setAttribute('aria-sort', view.sort.dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

/* The text filter looks at titles, ids (ISBNs, ASINs), works, tags, notes, sources and category
 * names; "978-1-4493" finds 9781449355739 too. */
function matchesFilter(book) {
  if (view.filterStatus && !statusesOf(book).includes(view.filterStatus)) return false;
  if (state.filterTag && !tagsOf(book).includes(state.filterTag)) return false;
  const q = view.filterText.trim().toLowerCase();
  if (!q) return true;
  const hay = [book.title || '', idOf(book), book.isbn13 || '', book.isbn10 || '', book.asin || '',
    attachedAsin(book), workOf(book), book.note || '', ...tagsOf(book), ...Object.values(book.asins || {})];
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

/* Books without a value for the sorted column go last either way; ties go by id so the order
 * is stable between redraws. */
function compareBooks(a, b) {
  const { key, dir } = view.sort;
  const tie = () => idOf(a).localeCompare(idOf(b));
  if (key === 'title') {
    const ta = (a.title || '').toLowerCase();
    const tb = (b.title || '').toLowerCase();
    if (!ta !== !tb) return ta ? -1 : 1;
    return dir * ta.localeCompare(tb) || tie();
  }
  const va = sortValue(a, key);
  const vb = sortValue(b, key);
  if (va === null && vb === null) return tie();
  if (va === null) return 1;
  if (vb === null) return -1;
  return dir * (va - vb) || tie();
}

function sortValue(book, key) {
  const o = primary(book);
  if (key === 'rank') return o ? o.rank : null;
  // "change" sorts the biggest improvement first.
  const d = changeOf(o);
  return d === null ? null : -d;
}
