/*
 * row.js - one book's row of the table: its cells (one line per source), the badges in them,
 * and what its buttons do (open the chart, remove the book).
 */
import { apiChange } from './api.js';
import { reportError } from './banner.js';
import { changeOf, latestOf } from './books.js';
import { confirmAction } from './dialog.js';
import { el } from './dom.js';
import { exactTime, fmtInt, fmtRank, relTime, STATUS_LABEL, STATUSES } from './format.js';
import { loadBooks, removeLocally, state, toggleExpanded } from './state.js';

/* The <tr class="book" data-isbn=...>; now (ms) is the time relative times are counted from. */
export function renderRow(book, now) {
  const latest = latestOf(book);
  const expanded = state.expanded === book.isbn13;
  const multi = latest.length > 1;
  const tr = el('tr', { class: 'book' + (expanded ? ' expanded' : '') + (multi ? ' multi' : '') });
  tr.dataset.isbn = book.isbn13;

  const titleText = book.title ? book.title : '(title not known yet)';
  tr.appendChild(el('td', { class: 'col-title', 'data-label': 'Title' },
    el('button', {
      type: 'button', class: 'title-btn' + (book.title ? '' : ' muted'),
      'aria-expanded': expanded ? 'true' : 'false',
      title: 'Show rank history',
      onclick: () => toggleExpanded(book.isbn13),
    }, titleText)));

  tr.appendChild(el('td', { class: 'col-isbn mono', 'data-label': 'ISBN',
    title: book.isbn10 ? 'ISBN-10 ' + book.isbn10 : null }, book.isbn13));

  const rankTd = el('td', { class: 'col-rank', 'data-label': 'Rank' });
  const changeTd = el('td', { class: 'col-change', 'data-label': 'Change' });
  const statusTd = el('td', { class: 'col-status', 'data-label': 'Status' });
  const checkedTd = el('td', { class: 'col-checked', 'data-label': 'Last checked' });
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
    // refreshRelativeTimes() rewrites these from data-time as time passes.
    checkedTd.appendChild(el('div', { class: 'line reltime', title: exactTime(o.fetched_at),
      'data-time': o.fetched_at || '' }, relTime(o.fetched_at, now)));
  }
  tr.append(rankTd, changeTd);

  // Filled by sparkline.js once the row is near the viewport.
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
    return el('span', { class: 'change up', title: 'Better by ' + fmtInt(d) + ' places (' + was + ', ' + pct + '%)' },
      el('span', { class: 'arrow', 'aria-hidden': 'true' }, '▲'), ' ' + fmtInt(d));
  }
  return el('span', { class: 'change down', title: 'Worse by ' + fmtInt(-d) + ' places (' + was + ', ' + pct + '%)' },
    el('span', { class: 'arrow', 'aria-hidden': 'true' }, '▼'), ' ' + fmtInt(-d));
}

/* An unknown status from a newer server is styled as an error but shown by its name. */
function statusBadge(status, error, o) {
  const known = STATUSES.includes(status) || status === 'unchecked';
  const cls = 'badge status-' + (known ? status : 'error');
  let title = error || null;
  if (!title && o && o.source) title = o.source;
  const badge = el('span', { class: cls, title }, STATUS_LABEL[status] || String(status));
  if (error) badge.classList.add('has-error');
  return badge;
}

async function removeBook(book) {
  const name = book.title ? '“' + book.title + '” (' + book.isbn13 + ')' : book.isbn13;
  const ok = await confirmAction('Remove book?', 'Stop tracking ' + name + ' and delete its whole rank history? This cannot be undone.', 'Remove');
  if (!ok) return;
  try {
    await apiChange('DELETE', '/api/books/' + encodeURIComponent(book.isbn13));
    removeLocally(book.isbn13);
  } catch (e) {
    // Already gone (another tab, a script): show what the server has.
    if (e.status === 404) { await loadBooks(); return; }
    reportError('Could not remove the book', e);
  }
}
