/*
 * books.js - reading a book record of GET /api/books (docs/API.md): its id, the ASIN attached to
 * it, its tags and work, its latest observations, the one that stands for it, its rank change
 * and statuses. Pure functions, no DOM.
 */

/* The book's key: its ISBN-13, or its ASIN when it has no ISBN (older servers: isbn13 only). */
export function idOf(book) {
  return String(book.id || book.isbn13 || '');
}

/* A book known by its ASIN only (a Kindle e-book, an audiobook). */
export function isAsinOnly(book) {
  return !book.isbn13;
}

/* The ASIN the user attached, or '' when the book's asin is just its ISBN-10 (or its own id). */
export function attachedAsin(book) {
  const asin = book.asin ? String(book.asin) : '';
  if (!asin || !book.isbn13 || asin === book.isbn10) return '';
  return asin;
}

/* A 979 ISBN has no ISBN-10, so a storefront addressed by ASIN cannot fetch it until it has an
 * ASIN: such a book never fetched is skipped by every refresh ("needs an ASIN"). */
export function needsAsin(book) {
  return !!book.isbn13 && String(book.isbn13).startsWith('979') && !book.isbn10 && !book.asin &&
    Object.keys(book.asins || {}).length === 0 && latestOf(book).length === 0;
}

export function tagsOf(book) {
  return Array.isArray(book.tags) ? book.tags.map(String) : [];
}

/* The work the book is an edition of, '' for none. */
export function workOf(book) {
  return typeof book.work === 'string' ? book.work.trim() : '';
}

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

/* The last good rank of a source whose latest check is not ok: {rank, rank_category,
 * fetched_at}, or null. */
export function lastOkOf(o) {
  if (!o || o.status === 'ok') return null;
  const l = o.last_ok;
  return l && typeof l.rank === 'number' ? l : null;
}

/* One status per source; 'unchecked' for a book never fetched, 'needs_asin' for one no source
 * can fetch. */
export function statusesOf(book) {
  const l = latestOf(book);
  if (l.length) return l.map((o) => o.status);
  return [needsAsin(book) ? 'needs_asin' : 'unchecked'];
}

/* Changes whenever any source of the book has been fetched again. */
export function latestStamp(book) {
  return latestOf(book).map((o) => o.source + '@' + o.fetched_at).join(' ');
}
