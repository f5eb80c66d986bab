/*
 * chart.js - the detail row under an opened book: its rank history as a chart, one line per
 * source (and, on request, per category rank), the checks without a rank as marks below it.
 */
import { byId, clear, el, svg } from './dom.js';
import { fmtRank, fmtTick, shortRank, STATUS_LABEL } from './format.js';
import { idOf } from './books.js';
import { loadHistory, seriesBySource } from './history.js';
import { toggleExpanded } from './state.js';

const COLOURS = 6;      // .c0 ... .c5 in style.css

let showCategories = false;   // stays as chosen while other books are opened

/* The <tr class="detail"> for book; the chart fills in when its history arrives. */
export function renderDetailRow(book) {
  const td = el('td', { colspan: 8, class: 'detail-cell' });
  const id = idOf(book);
  const tr = el('tr', { class: 'detail' }, td);
  tr.dataset.id = id;
  if (book.isbn13) tr.dataset.isbn = book.isbn13;
  const chartBox = el('div', { class: 'chart-box' }, el('p', { class: 'muted' }, 'Loading history…'));
  const catToggle = el('input', { type: 'checkbox', class: 'cat-toggle' });
  catToggle.checked = showCategories;
  const head = el('div', { class: 'detail-head' },
    el('h3', null, book.title || id),
    el('label', { class: 'check' }, catToggle, ' show category ranks'),
    el('button', { type: 'button', class: 'link close-detail', onclick: () => toggleExpanded(id) }, 'Close'));
  td.append(head, chartBox);

  let observations = null;
  const draw = () => {
    clear(chartBox);
    if (!observations) return;
    // Drawn at the visible table width (not the cell's, which the chart itself would widen)
    // so labels keep their size on any screen.
    const avail = byId('books').parentElement.clientWidth - 64;
    const width = Math.max(280, Math.min(1400, avail));
    chartBox.appendChild(historyChart(observations, showCategories, width));
  };
  catToggle.addEventListener('change', () => {
    showCategories = catToggle.checked;
    draw();
  });
  loadHistory(id).then((obs) => {
    observations = obs;
    draw();
  }, (e) => {
    clear(chartBox);
    chartBox.appendChild(el('p', { class: 'error-text' }, 'Could not load history: ' + e.message));
  });
  return tr;
}

/* Lines to draw ({name, colour, pts: [{t, r, label}], cat}) and marks ({t, status, label}). */
function seriesOf(observations, withCategories) {
  const bySource = seriesBySource(observations);
  const series = [];
  const marks = [];
  // Sources keep the same colour whether or not category lines are shown.
  let srcIdx = 0;
  let catIdx = bySource.size;
  for (const [src, list] of bySource) {
    const colour = srcIdx++ % COLOURS;
    const pts = [];
    const cats = new Map();
    for (const p of list) {
      if (typeof p.o.rank === 'number' && p.o.rank > 0) {
        pts.push({ t: p.t, r: p.o.rank, label: src + ': ' + fmtRank(p.o.rank) + (p.o.rank_category ? ' in ' + p.o.rank_category : '') });
      } else {
        marks.push({ t: p.t, status: p.o.status, label: src + ': ' + (STATUS_LABEL[p.o.status] || p.o.status) + (p.o.error ? ' — ' + p.o.error : '') });
      }
      if (!withCategories) continue;
      for (const c of p.o.categories || []) {
        if (typeof c.rank !== 'number' || c.rank <= 0) continue;
        const key = String(c.category);
        if (!cats.has(key)) cats.set(key, []);
        cats.get(key).push({ t: p.t, r: c.rank, label: src + ': ' + fmtRank(c.rank) + ' in ' + key });
      }
    }
    series.push({ name: src, colour, pts, cat: false });
    for (const [name, cpts] of cats) {
      series.push({ name: name + (bySource.size > 1 ? ' (' + src + ')' : ''), colour: catIdx++ % COLOURS, pts: cpts, cat: true });
    }
  }
  return { series, marks };
}

/* The rank axis is logarithmic with #1 on top; time runs left to right. */
function historyChart(observations, withCategories, width) {
  const { series, marks } = seriesOf(observations, withCategories);
  const all = series.flatMap((s) => s.pts);
  const wrap = el('div', { class: 'chart' });
  if (!all.length && !marks.length) {
    wrap.appendChild(el('p', { class: 'muted' }, 'No observations yet.'));
    return wrap;
  }

  const W = width || 720;
  const H = W < 500 ? 220 : 280;
  const L = 52; const R = 16; const T = 14; const B = 44;   // margins for the axis labels
  const times = all.map((p) => p.t).concat(marks.map((m) => m.t));
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
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
  const llo = Math.log10(rlo);
  const lhi = Math.log10(rhi);
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (r) => T + (Math.log10(r) - llo) / (lhi - llo) * (H - T - B);

  const s = svg('svg', { class: 'history-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
    'aria-label': 'Rank history chart' });
  s.appendChild(axes({ W, H, L, R, T, B, t0, t1, rlo, rhi, x, y }));
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
  wrap.append(s, legend(series, marks));
  return wrap;
}

/* Grid lines with rank labels on the left and time labels below. */
function axes({ W, H, L, R, T, B, t0, t1, rlo, rhi, x, y }) {
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
  const mid = T + (H - T - B) / 2;
  grid.appendChild(svg('text', { x: 12, y: mid, class: 'axis-title',
    transform: 'rotate(-90 12 ' + mid + ')', 'text-anchor': 'middle' }, 'rank (better ↑)'));
  return grid;
}

function legend(series, marks) {
  const ul = el('ul', { class: 'legend' });
  for (const ser of series) {
    if (!ser.pts.length) continue;
    ul.appendChild(el('li', { class: 'c' + ser.colour + (ser.cat ? ' cat' : '') },
      el('span', { class: 'swatch', 'aria-hidden': 'true' }), ser.name + ' (' + ser.pts.length + ')'));
  }
  if (marks.length) {
    ul.appendChild(el('li', { class: 'marks' }, el('span', { class: 'swatch mark-swatch' }),
      marks.length + ' check(s) without a rank'));
  }
  return ul;
}

/* Round ranks between lo and hi, denser when the span is small. */
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

/* n evenly spaced times from t0 to t1, both included. */
function timeTicks(t0, t1, n) {
  if (t1 <= t0) return [t0];
  const out = [];
  for (let i = 0; i < n; i++) out.push(t0 + (t1 - t0) * i / (n - 1));
  return out;
}
