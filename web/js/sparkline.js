/*
 * sparkline.js - the small rank line in each row's History cell. A row's history is fetched only
 * when its cell comes near the viewport, so a long list does not ask for every history at once.
 */
import { clear, el, svg } from './dom.js';
import { fmtRank } from './format.js';
import { fetchSpark, knownSpark } from './history.js';

const W = 110;
const H = 28;
const PAD = 3;

let observer = null;

/* Fills the History cells of the table just drawn (root), watching the ones not yet known. */
export function observeSparklines(root) {
  if (!observer && 'IntersectionObserver' in window) {
    observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        observer.unobserve(e.target);
        fillSparkline(e.target);
      }
    }, { rootMargin: '200px' });
  }
  // The cells of the previous drawing are gone; stop watching them.
  if (observer) observer.disconnect();
  for (const td of root.querySelectorAll('td.col-history')) {
    // Known sparklines are drawn at once so re-rendering the table does not flicker.
    if (knownSpark(td.dataset.id) !== undefined || !observer) fillSparkline(td);
    else observer.observe(td);
  }
}

async function fillSparkline(td) {
  const id = td.dataset.id;
  if (td.dataset.filled) return;
  if (knownSpark(id) === undefined) {
    try {
      await fetchSpark(id);
    } catch (e) {
      drawInto(td, null);
      return;
    }
  }
  // The table may have been redrawn while the history was on its way.
  if (td.isConnected) drawInto(td, knownSpark(id));
}

/* points: null when the history could not be fetched, [] when it has no rank. */
function drawInto(td, points) {
  const btn = td.querySelector('.spark-btn');
  if (!btn) return;
  td.dataset.filled = '1';
  clear(btn);
  if (!points) btn.appendChild(el('span', { class: 'muted' }, '—'));
  else if (!points.length) btn.appendChild(el('span', { class: 'muted' }, 'no data'));
  else btn.appendChild(sparkline(points));
}

function sparkline(points) {
  const ranks = points.map((p) => p.o.rank);
  const lo = Math.log10(Math.max(1, Math.min(...ranks)));
  const hi = Math.log10(Math.max(1, Math.max(...ranks)));
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const x = (t) => (t1 === t0 ? W / 2 : PAD + (t - t0) / (t1 - t0) * (W - 2 * PAD));
  // Rank 1 is at the top: a rising line means a better-selling book.
  const y = (r) => (hi === lo ? H / 2 : PAD + (Math.log10(Math.max(1, r)) - lo) / (hi - lo) * (H - 2 * PAD));
  const coords = points.map((p) => x(p.t).toFixed(1) + ',' + y(p.o.rank).toFixed(1));
  const first = points[0];
  const last = points[points.length - 1];
  const trend = last.o.rank < first.o.rank ? 'up' : last.o.rank > first.o.rank ? 'down' : 'same';
  const s = svg('svg', {
    class: 'sparkline trend-' + trend, viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
    'aria-label': 'Rank history: ' + points.length + ' points, latest ' + fmtRank(last.o.rank),
  });
  s.appendChild(svg('polyline', { class: 'spark-line', points: coords.join(' ') }));
  s.appendChild(svg('circle', { class: 'spark-dot', cx: x(last.t).toFixed(1), cy: y(last.o.rank).toFixed(1), r: 2.5 }));
  return s;
}
