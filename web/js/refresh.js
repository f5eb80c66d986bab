/*
 * refresh.js - refresh jobs: the "Refresh all" button, and following a job (started here or by
 * adding books) with its progress bar and per-status counts until it is done.
 */
import { apiChange, apiGet } from './api.js';
import { reportError } from './banner.js';
import { byId, clear, el } from './dom.js';
import { STATUS_LABEL, STATUSES } from './format.js';
import { forgetHistory } from './history.js';
import { loadJobs } from './jobs.js';
import { loadBooks } from './state.js';

const POLL_MS = 500;
// A failed poll (the server busy or restarting) is retried, but less eagerly.
const POLL_RETRY_MS = POLL_MS * 4;
// The finished job stays visible for a while so its counts can be read.
const HIDE_AFTER_MS = 15000;

let running = false;
let pollTimer = null;
let hideTimer = null;

/* true while a job is followed (the periodic reload waits for it instead). */
export function jobRunning() {
  return running;
}

export function initRefresh() {
  byId('refresh-btn').addEventListener('click', startRefresh);
}

function isFinished(job) {
  return job.state === 'done' || job.state === 'cancelled';
}

/* Follows job (as POST /api/refresh or POST /api/books returned it) until it finishes. */
export function followJob(job) {
  if (!job || !job.id) return;
  clearTimeout(hideTimer);
  clearTimeout(pollTimer);
  running = true;
  const btn = byId('refresh-btn');
  btn.disabled = true;
  btn.textContent = 'Refreshing…';
  renderJob(job);
  loadJobs();
  const poll = async () => {
    let cur = job;
    try {
      cur = await apiGet('/api/jobs/' + encodeURIComponent(job.id));
      if (cur && cur.job) cur = cur.job;
      renderJob(cur);
    } catch (e) {
      // A job the server no longer knows (it restarted) will not finish: stop following it.
      if (e.status === 404) cur = Object.assign({}, job, { state: 'cancelled' });
      else { pollTimer = setTimeout(poll, POLL_RETRY_MS); return; }
    }
    if (isFinished(cur)) finishJob();
    else pollTimer = setTimeout(poll, POLL_MS);
  };
  if (isFinished(job)) finishJob();
  else pollTimer = setTimeout(poll, POLL_MS);
}

async function finishJob() {
  running = false;
  // Every book may have a new observation, so every history may be out of date.
  forgetHistory();
  const btn = byId('refresh-btn');
  btn.disabled = false;
  btn.textContent = 'Refresh all';
  await loadBooks();
  loadJobs();
  hideTimer = setTimeout(() => { byId('job').hidden = true; }, HIDE_AFTER_MS);
}

async function startRefresh() {
  if (running) return;
  const btn = byId('refresh-btn');
  btn.disabled = true;
  try {
    const data = await apiChange('POST', '/api/refresh');
    followJob(data && data.job ? data.job : data);
  } catch (e) {
    btn.disabled = false;
    reportError('Could not start a refresh', e);
  }
}

function renderJob(job) {
  const box = byId('job');
  box.hidden = false;
  const total = job.total || 0;
  const done = job.done || 0;
  const finished = isFinished(job);
  box.classList.toggle('finished', finished);
  byId('job-label').textContent = jobLabel(job.state, done, total);
  // element.style, not a style attribute: the CSP allows the one, not the other.
  const pct = total ? Math.min(100, done / total * 100) : (finished ? 100 : 0);
  byId('job-bar').style.width = pct.toFixed(1) + '%';
  const outer = byId('job-bar-outer');
  outer.setAttribute('role', 'progressbar');
  outer.setAttribute('aria-valuemin', '0');
  outer.setAttribute('aria-valuemax', String(total));
  outer.setAttribute('aria-valuenow', String(done));
  const counts = byId('job-counts');
  clear(counts);
  const c = job.counts || {};
  for (const s of STATUSES) {
    if (!c[s]) continue;
    counts.appendChild(el('span', { class: 'chip small status-' + s, 'data-status': s }, c[s] + ' ' + STATUS_LABEL[s]));
  }
  // Books no storefront can address (a 979 ISBN without an ASIN) are skipped, not failed.
  if (job.skipped) {
    counts.appendChild(el('span', { class: 'chip small status-needs_asin', 'data-status': 'skipped',
      title: 'Not fetched: a 979 ISBN has no ISBN-10; attach its ASIN with Edit' },
    job.skipped + ' skipped (needs an ASIN)'));
  }
}

function jobLabel(state, done, total) {
  if (state === 'queued') return 'Queued…';
  if (state === 'done') return 'Done: ' + done + ' of ' + total + ' checked';
  if (state === 'cancelled') return 'Cancelled: ' + done + ' of ' + total + ' checked';
  return 'Checking ' + done + ' of ' + total + '…';
}
