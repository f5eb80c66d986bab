/*
 * books.js - reading a book record of GET /api/books (docs/API.md): its latest observations,
 * the one that stands for it, its rank change and statuses. Pure functions, no DOM.
 */

export function latestOf(book) {
  return Array.isArray(book.latest) ? book.latest : [];
}

/* The observation that stands for the book when sorting: its best ranked source. */
export function primary(book) {
  let best = null;
  for (const o of latestOf(book)) {
    if (typeof o.rank === 'number' && (!best || o.rank < best.rank)) best = o;
  }
  return best;
}

/* Places gained since the previous observation (positive: the book sells better), or null. */
export function changeOf(o) {
  if (!o || typeof o.rank !== 'number' || typeof o.previous_rank !== 'number') return null;
  return o.previous_rank - o.rank;
}

/* One status per source; 'unchecked' for a book never fetched. */
export function statusesOf(book) {
  const l = latestOf(book);
  return l.length ? l.map((o) => o.status) : ['unchecked'];
}

/* Changes whenever any source of the book has been fetched again. */
export function latestStamp(book) {
  return latestOf(book).map((o) => o.source + '@' + o.fetched_at).join(' ');
}
