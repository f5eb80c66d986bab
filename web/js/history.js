/*
 * history.js - the rank history of each book (GET /api/books/{id}/history): fetched once,
 * cached until the book is checked again, and shaped into the points the sparklines and the
 * chart draw.
 */
import { apiGet } from './api.js';

const HISTORY_LIMIT = 500;
const SPARK_POINTS = 60;

const histories = new Map();  // book id -> Promise of observations (newest first)
const sparks = new Map();     // book id -> sparkline points, once the history has been fetched

export function loadHistory(id) {
  let p = histories.get(id);
  if (!p) {
    p = apiGet('/api/books/' + encodeURIComponent(id) + '/history?limit=' + HISTORY_LIMIT)
      .then((d) => (d && Array.isArray(d.observations) ? d.observations : []));
    // A failed fetch is not cached: the next look at the book tries again.
    p.catch(() => forgetHistory(id));
    histories.set(id, p);
  }
  return p;
}

/* Forget cached history (of every book when id is omitted) so it is fetched again. */
export function forgetHistory(id) {
  if (id === undefined) {
    histories.clear();
    sparks.clear();
  } else {
    histories.delete(id);
    sparks.delete(id);
  }
}

/* The sparkline points of a book, or undefined while its history has not been fetched. */
export function knownSpark(id) {
  return sparks.get(id);
}

/* Fetches the history of a book and keeps its sparkline points; rejects like loadHistory. */
export async function fetchSpark(id) {
  sparks.set(id, sparkPoints(await loadHistory(id)));
}

/* Points ({t, o}: time in ms and the observation) per source, oldest first. */
export function seriesBySource(observations) {
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

/* The ranked points of the source with the most of them, oldest first (only the latest few). */
function sparkPoints(observations) {
  let best = [];
  for (const list of seriesBySource(observations).values()) {
    const ranked = list.filter((p) => typeof p.o.rank === 'number');
    if (ranked.length > best.length) best = ranked;
  }
  return best.slice(-SPARK_POINTS);
}
