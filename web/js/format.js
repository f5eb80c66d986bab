/*
 * format.js - how numbers, ranks, times and statuses read on the page. Pure functions, no DOM.
 */

export const STATUSES = ['ok', 'no_rank', 'not_found', 'blocked', 'error'];

/* Every status an observation can have, plus "unchecked" for a book never fetched and
 * "needs_asin" for one no storefront can address (a 979 ISBN without an ASIN). */
export const STATUS_LABEL = {
  ok: 'ok', no_rank: 'no rank', not_found: 'not found', blocked: 'blocked', error: 'error',
  unchecked: 'not checked', needs_asin: 'needs an ASIN',
};

/* Who started a job (GET /api/jobs "started_by"), as the jobs list says it. */
export const STARTED_BY_LABEL = { api: 'api', schedule: 'schedule', cli: 'cli' };

// Fixed to en-US so ranks read "#1,234" whatever the browser's language (the tests rely on it).
const intFormat = new Intl.NumberFormat('en-US');

export const fmtInt = (n) => intFormat.format(n);

export const fmtRank = (r) => '#' + intFormat.format(r);

/* An axis label: 1500 -> "1.5k", 2000000 -> "2M". */
export function shortRank(v) {
  const trim = (x) => String(Math.round(x * 10) / 10);
  if (v >= 1e6) return trim(v / 1e6) + 'M';
  if (v >= 1e3) return trim(v / 1e3) + 'k';
  return trim(v);
}

/* "just now", "5 min ago", "3 h ago", "2 days ago", then a date; '' for an unreadable time. */
export function relTime(iso, now) {
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

/* A time to come: "in 5 min", "in 3 h", "in 2 days"; "now" when it is due; '' if unreadable. */
export function untilTime(iso, now) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((t - now) / 1000);
  if (s < 45) return 'now';
  const m = Math.round(s / 60);
  if (m < 60) return 'in ' + m + ' min';
  const h = Math.round(m / 60);
  if (h < 36) return 'in ' + h + ' h';
  const d = Math.round(h / 24);
  return 'in ' + d + (d === 1 ? ' day' : ' days');
}

/* Local time with the server's UTC form after it, for hover titles. */
export function exactTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || '';
  return new Date(t).toLocaleString() + ' (' + iso + ')';
}

/* A time axis label, as precise as the span it labels needs. */
export function fmtTick(t, span) {
  const d = new Date(t);
  if (span < 15 * 60000) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (span < 2 * 86400000) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (span < 300 * 86400000) return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return d.toLocaleDateString([], { year: 'numeric', month: 'short' });
}
