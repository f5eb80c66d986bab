/*
 * row.js - one book's row of the table: its cells (one line per source), the badges in them,
 * its format, tags and note, and what its buttons do (open the chart, edit, remove the book).
 */
import { apiChange } from './api.js';
import { reportError } from './banner.js';
import { attachedAsin, changeOf, idOf, isAsinOnly, lastOkOf, latestOf, needsAsin, tagsOf } from './books.js';
import { confirmAction } from './dialog.js';
import { el } from './dom.js';
import { openEditor } from './edit.js';
import { exactTime, fmtInt, fmtRank, relTime, STATUS_LABEL, STATUSES } from './format.js';
import { loadBooks, removeLocally, state, toggleExpanded, toggleTagFilter } from './state.js';

/* The <tr class="book" data-id=... data-isbn=...>; now (ms) is the time relative times are
 * counted from; edition: the row sits under its work's heading row. */
export function renderRow(book, now, edition) {
  const id = idOf(book);
  const latest = latestOf(book);
  const expanded = state.expanded === id;
  const multi = latest.length > 1;
  const tr = el('tr', { class: 'book' + (expanded ? ' expanded' : '') + (multi ? ' multi' : '') + (edition ? ' edition' : '') });
  tr.dataset.id = id;
  if (book.isbn13) tr.dataset.isbn = book.isbn13;

  const titleText = book.title ? book.title : '(title not known yet)';
  tr.appendChild(el('td', { class: 'col-title', 'data-label': 'Title' },
    el('button', {
      type: 'button', class: 'title-btn' + (book.title ? '' : ' muted'),
      'aria-expanded': expanded ? 'true' : 'false',
      title: 'Show rank history',
      onclick: () => toggleExpanded(id),
    }, titleText),
    bookMeta(book)));

  tr.appendChild(idCell(book));

  const rankTd = el('td', { class: 'col-rank', 'data-label': 'Rank' });
  const changeTd = el('td', { class: 'col-change', 'data-label': 'Change' });
  const statusTd = el('td', { class: 'col-status', 'data-label': 'Status' });
  const checkedTd = el('td', { class: 'col-checked', 'data-label': 'Last checked' });
  if (!latest.length) {
    rankTd.appendChild(el('span', { class: 'muted' }, '—'));
    changeTd.appendChild(el('span', { class: 'muted' }, ''));
    if (needsAsin(book)) {
      // A 979 ISBN has no ISBN-10, which is what a print book's ASIN is: every refresh skips it.
      statusTd.appendChild(el('button', {
        type: 'button', class: 'badge status-needs_asin needs-asin',
        title: 'This ISBN has no ISBN-10, so the store cannot be asked for it: attach its ASIN',
        onclick: () => openEditor(book, 'asin'),
      }, STATUS_LABEL.needs_asin));
    } else {
      statusTd.appendChild(statusBadge('unchecked', 'No observation yet: press Refresh'));
    }
    checkedTd.appendChild(el('span', { class: 'muted' }, 'never'));
  }
  for (const o of latest) {
    rankTd.appendChild(rankLine(o, multi, now));
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
      onclick: () => toggleExpanded(id) }));
  spark.dataset.id = id;
  if (book.isbn13) spark.dataset.isbn = book.isbn13;
  tr.appendChild(spark);

  tr.append(statusTd, checkedTd);

  tr.appendChild(el('td', { class: 'col-actions' },
    el('button', {
      type: 'button', class: 'edit-btn', title: 'Edit work, format, tags, note and ASIN',
      'aria-label': 'Edit ' + titleText,
      onclick: () => openEditor(book),
    }, 'Edit'),
    el('button', {
      type: 'button', class: 'remove-btn', title: 'Stop tracking this book',
      'aria-label': 'Remove ' + titleText,
      onclick: () => removeBook(book),
    }, 'Remove')));
  return tr;
}

/* The id cell: the ISBN-13 (ISBN-10 on hover), or the ASIN of a book without an ISBN; an ASIN
 * attached to an ISBN book on a line of its own. */
function idCell(book) {
  const id = idOf(book);
  const asins = Object.entries(book.asins || {}).map(([src, a]) => src + ': ' + a);
  const hover = [];
  if (book.isbn10) hover.push('ISBN-10 ' + book.isbn10);
  if (attachedAsin(book)) hover.push('ASIN ' + attachedAsin(book));
  if (asins.length) hover.push('per store: ' + asins.join(', '));
  const td = el('td', { class: 'col-isbn mono', 'data-label': isAsinOnly(book) ? 'ASIN' : 'ISBN',
    title: hover.length ? hover.join('\n') : null });
  if (isAsinOnly(book)) {
    td.append(el('span', { class: 'id-kind' }, 'ASIN'), ' ', el('span', { class: 'id asin' }, id));
  } else {
    td.appendChild(el('span', { class: 'id' }, id));
    if (attachedAsin(book)) td.appendChild(el('div', { class: 'asin-line' }, 'ASIN ' + attachedAsin(book)));
  }
  return td;
}

/* Format, tags (each a filter button) and note under the title; null when there are none. */
function bookMeta(book) {
  const tags = tagsOf(book);
  const note = typeof book.note === 'string' ? book.note : '';
  if (!book.format && !tags.length && !note) return null;
  const box = el('div', { class: 'book-meta' });
  if (book.format) box.appendChild(el('span', { class: 'format' }, String(book.format)));
  for (const t of tags) {
    const active = state.filterTag === t;
    box.appendChild(el('button', {
      type: 'button', class: 'tag' + (active ? ' active' : ''), 'data-tag': t,
      title: active ? 'Show every tag' : 'Show only books tagged ' + t,
      onclick: () => toggleTagFilter(t),
    }, t));
  }
  if (note) box.appendChild(el('span', { class: 'note', title: note }, note));
  return box;
}

function rankLine(o, multi, now) {
  const line = el('div', { class: 'line rank-line' });
  const lastOk = lastOkOf(o);
  if (typeof o.rank === 'number') {
    line.appendChild(el('span', { class: 'rank' }, fmtRank(o.rank)));
    // Plain spaces between the unbreakable parts let a narrow column wrap between them.
    if (o.rank_category) line.append(' ', el('span', { class: 'cat' }, 'in ' + o.rank_category));
  } else if (lastOk) {
    // The latest check failed: what the book ranked when it last worked, and when that was.
    line.appendChild(el('span', {
      class: 'last-ok',
      title: 'Last good rank ' + fmtRank(lastOk.rank) + (lastOk.rank_category ? ' in ' + lastOk.rank_category : '') +
        ', ' + exactTime(lastOk.fetched_at),
    }, 'last ok ' + fmtRank(lastOk.rank) + ', ',
    el('span', { class: 'reltime', 'data-time': lastOk.fetched_at || '' }, relTime(lastOk.fetched_at, now))));
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
  const id = idOf(book);
  const name = book.title ? '“' + book.title + '” (' + id + ')' : id;
  const ok = await confirmAction('Remove book?', 'Stop tracking ' + name + ' and delete its whole rank history? This cannot be undone.', 'Remove');
  if (!ok) return;
  try {
    await apiChange('DELETE', '/api/books/' + encodeURIComponent(id));
    removeLocally(id);
  } catch (e) {
    // Already gone (another tab, a script): show what the server has.
    if (e.status === 404) { await loadBooks(); return; }
    reportError('Could not remove the book', e);
  }
}
