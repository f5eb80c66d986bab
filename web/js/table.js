/*
 * table.js - the books table as a whole: which books it shows (text and status filters), in
 * which order (the sortable columns), the status chips above it, the count and the empty state.
 * It redraws on every changed() (state.js).
 */
import { changeOf, latestOf, primary, statusesOf } from './books.js';
import { renderDetailRow } from './chart.js';
import { byId, clear, el } from './dom.js';
import { relTime, STATUS_LABEL, STATUSES } from './format.js';
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
  for (const book of shown) {
    body.appendChild(renderRow(book, now));
    if (state.expanded === book.isbn13) body.appendChild(renderDetailRow(book));
  }
  const total = state.books.length;
  byId('book-count').textContent = total ? '(' + (shown.length === total ? total : shown.length + ' of ' + total) + ')' : '';
  const empty = byId('empty');
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
  observeSparklines(body);
}

/* One chip per status with its number of books; a chip toggles the status filter. */
function renderSummary() {
  const box = byId('status-summary');
  clear(box);
  const counts = {};
  for (const b of state.books) for (const s of new Set(statusesOf(b))) counts[s] = (counts[s] || 0) + 1;
  for (const s of [...STATUSES, 'unchecked']) {
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

/* The text filter looks at titles, ISBNs, sources and category names; "978-1-4493" finds
 * 9781449355739 too. */
function matchesFilter(book) {
  if (view.filterStatus && !statusesOf(book).includes(view.filterStatus)) return false;
  const q = view.filterText.trim().toLowerCase();
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

/* Books without a value for the sorted column go last either way; ties go by ISBN so the order
 * is stable between redraws. */
function compareBooks(a, b) {
  const { key, dir } = view.sort;
  if (key === 'title') {
    const ta = (a.title || '').toLowerCase();
    const tb = (b.title || '').toLowerCase();
    if (!ta !== !tb) return ta ? -1 : 1;
    return dir * ta.localeCompare(tb) || a.isbn13.localeCompare(b.isbn13);
  }
  const va = sortValue(a, key);
  const vb = sortValue(b, key);
  if (va === null && vb === null) return a.isbn13.localeCompare(b.isbn13);
  if (va === null) return 1;
  if (vb === null) return -1;
  return dir * (va - vb) || a.isbn13.localeCompare(b.isbn13);
}

function sortValue(book, key) {
  const o = primary(book);
  if (key === 'rank') return o ? o.rank : null;
  // "change" sorts the biggest improvement first.
  const d = changeOf(o);
  return d === null ? null : -d;
}
