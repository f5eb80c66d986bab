/*
 * jobs.js - the "Recent refreshes" card: the latest jobs of GET /api/jobs whoever started them
 * (this page, a script, the server's schedule, `bookrank refresh` from cron), each with its
 * progress, its per-status counts and what it skipped, a cancel button while it runs
 * (DELETE /api/jobs/{id}), and when the next scheduled refresh is due.
 *
 * While a listed job runs the list is polled; when one ends the books are loaded again, so a
 * refresh started elsewhere shows its ranks here too.
 */
import { apiChange, apiGet } from './api.js';
import { byId, clear, el } from './dom.js';
import { exactTime, relTime, STARTED_BY_LABEL, STATUS_LABEL, STATUSES, untilTime } from './format.js';
import { loadBooks } from './state.js';

const JOBS_SHOWN = 8;
const POLL_MS = 2000;

let pollTimer = null;
let loading = null;        // the request under way, so overlapping callers share it
let running = new Set();   // ids of the jobs last seen queued or running
const cancelling = new Set();   // ids of the jobs asked to cancel (in-flight fetches still end)

export function initJobs() {
  byId('jobs-reload').addEventListener('click', () => loadJobs());
}

const unfinished = (job) => job.state === 'queued' || job.state === 'running';

/* Loads the list again (now); resolves once it is drawn. */
export function loadJobs() {
  if (loading) return loading;
  clearTimeout(pollTimer);
  loading = (async () => {
    let data = null;
    try {
      data = await apiGet('/api/jobs?limit=' + JOBS_SHOWN);
      showError('');
    } catch (e) {
      // An older server has no job list: the card stays hidden.
      if (e.status === 404 || e.status === 405) {
        byId('jobs-card').hidden = true;
        return;
      }
      showError('Could not load the recent refreshes: ' + e.message);
    }
    if (!data) return;
    const jobs = Array.isArray(data.jobs) ? data.jobs : [];
    render(jobs, data.next_scheduled_at);
    const now = new Set(jobs.filter(unfinished).map((j) => j.id));
    const ended = [...running].some((id) => !now.has(id));
    running = now;
    for (const id of cancelling) if (!now.has(id)) cancelling.delete(id);
    if (ended) loadBooks();
    if (running.size) pollTimer = setTimeout(loadJobs, POLL_MS);
  })().finally(() => { loading = null; });
  return loading;
}

function showError(text) {
  const p = byId('jobs-error');
  p.textContent = text;
  p.hidden = !text;
}

function render(jobs, nextAt) {
  const now = Date.now();
  byId('jobs-card').hidden = false;
  const next = byId('jobs-next');
  clear(next);
  if (nextAt) {
    next.append('Next scheduled refresh ',
      el('span', { class: 'next-time', title: exactTime(nextAt), 'data-time': nextAt }, untilTime(nextAt, now)));
  }
  const body = byId('jobs-body');
  clear(body);
  for (const job of jobs) body.appendChild(jobRow(job, now));
  byId('jobs-table').hidden = !jobs.length;
  byId('jobs-empty').hidden = jobs.length > 0;
}

function jobRow(job, now) {
  const by = String(job.started_by || '');
  const tr = el('tr', { class: 'job-row state-' + job.state, 'data-job-id': job.id, 'data-started-by': by });
  tr.appendChild(el('td', { class: 'job-id mono', 'data-label': 'Job' }, '#' + job.id));
  tr.appendChild(el('td', { class: 'job-by', 'data-label': 'Started by',
    title: by === 'cli' ? 'bookrank refresh on the command line (cron)' : by === 'schedule' ? 'the server\'s --refresh-every timer' : 'this dashboard or a script' },
  STARTED_BY_LABEL[by] || by));
  tr.appendChild(el('td', { class: 'job-state', 'data-label': 'State' },
    el('span', { class: 'badge job-state-' + job.state }, String(job.state))));
  const total = job.total || 0;
  tr.appendChild(el('td', { class: 'job-progress', 'data-label': 'Checked' },
    (job.done || 0) + ' of ' + total + (job.all_books ? ' (all books)' : '')));
  const results = el('td', { class: 'job-results', 'data-label': 'Results' });
  const c = job.counts || {};
  for (const s of STATUSES) {
    if (c[s]) results.appendChild(el('span', { class: 'chip small status-' + s, 'data-status': s }, c[s] + ' ' + STATUS_LABEL[s]));
  }
  if (job.skipped) {
    results.appendChild(el('span', { class: 'chip small status-needs_asin skipped',
      title: 'Books a storefront cannot address: a 979 ISBN has no ISBN-10, attach its ASIN' },
    job.skipped + ' skipped (needs an ASIN)'));
  }
  tr.appendChild(results);
  const when = job.finished_at || job.started_at || job.created_at;
  tr.appendChild(el('td', { class: 'job-when', 'data-label': job.finished_at ? 'Ended' : 'Started' },
    el('span', { class: 'reltime', title: exactTime(when), 'data-time': when || '' }, relTime(when, now))));
  const actions = el('td', { class: 'job-actions' });
  if (unfinished(job)) {
    const asked = cancelling.has(job.id);
    actions.appendChild(el('button', {
      type: 'button', class: 'job-cancel', disabled: asked,
      'aria-label': 'Cancel job ' + job.id,
      onclick: (e) => { e.currentTarget.disabled = true; cancelJob(job); },
    }, asked ? 'Cancelling…' : 'Cancel'));
  }
  tr.appendChild(actions);
  return tr;
}

/* 202: the job ends cancelled once its fetches in flight are back; 409: it had ended. */
async function cancelJob(job) {
  let refused = null;
  cancelling.add(job.id);
  try {
    await apiChange('DELETE', '/api/jobs/' + encodeURIComponent(job.id));
  } catch (e) {
    cancelling.delete(job.id);
    refused = e;
  }
  await loadJobs();
  // After the reload, which clears the message of an earlier failed load.
  if (refused) showError('Could not cancel job #' + job.id + ': ' + refused.message);
}
