/*
 * add.js - the "Add books" form: a pasted list of ISBNs, ASINs and product links sent as typed
 * (text/plain) in one POST /api/books, the result line, and the list of entries the server
 * refused with its reason for each (then nothing is added). "Fetch their ranks now" then starts
 * a refresh of those books (POST /api/refresh), which the page follows.
 */
import { apiChange } from './api.js';
import { byId, clear, el } from './dom.js';
import { forgetHistory } from './history.js';
import { followJob } from './refresh.js';
import { loadBooks } from './state.js';

export function initAdd() {
  byId('add-form').addEventListener('submit', addBooks);
  // Enter makes new lines in the textarea, so Ctrl/Cmd+Enter submits.
  byId('add-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) byId('add-form').requestSubmit();
  });
}

async function addBooks(ev) {
  ev.preventDefault();
  const textarea = byId('add-text');
  // Sent as typed: the server splits the list (newlines, commas, semicolons; never inside a
  // product URL's query) and numbers the entries in its error details.
  const text = textarea.value;
  resetResult();
  if (!text.trim()) {
    showResult('Paste at least one ISBN, ASIN or product link.', 'error-text');
    return;
  }
  const btn = byId('add-btn');
  btn.disabled = true;
  try {
    const refresh = byId('add-refresh').checked;
    const data = await apiChange('POST', '/api/books', text);
    const added = (data && data.added) || [];
    const already = (data && data.already_tracked) || [];
    const parts = ['Added ' + added.length + (added.length === 1 ? ' book' : ' books')];
    if (already.length) parts.push(already.length + ' already tracked');
    showResult(parts.join(', ') + '.', 'ok-text');
    textarea.value = '';
    // A book removed and added again must not show the history cached before.
    for (const id of added) forgetHistory(id);
    await loadBooks();
    const ids = added.concat(already);
    if (refresh && ids.length) await refreshAdded(ids);
  } catch (e) {
    if (e.status === 400 && e.details.length) showInvalid(e.details);
    else showResult('Could not add: ' + e.message, 'error-text');
  } finally {
    btn.disabled = false;
  }
}

/* The books are tracked by now; a refused refresh (429, 503) leaves them so and says why. */
async function refreshAdded(ids) {
  try {
    const data = await apiChange('POST', '/api/refresh', { ids });
    followJob(data && data.job ? data.job : data);
  } catch (e) {
    const result = byId('add-result');
    result.classList.remove('ok-text');
    showResult(result.textContent + ' Their ranks were not fetched: ' + e.message, 'error-text');
  }
}

function resetResult() {
  const errors = byId('add-errors');
  clear(errors);
  errors.hidden = true;
  const result = byId('add-result');
  result.textContent = '';
  result.className = 'add-result';
  byId('add-text').classList.remove('invalid');
}

function showResult(text, cls) {
  const result = byId('add-result');
  result.textContent = text;
  result.classList.add(cls);
}

/* details: [{index, input, reason}] from the 400 answer; the input is shown as typed. */
function showInvalid(details) {
  byId('add-text').classList.add('invalid');
  showResult(details.length === 1
    ? '1 entry is not a valid ISBN, ASIN or product link. Nothing was added; fix it and try again.'
    : details.length + ' entries are not valid ISBNs, ASINs or product links. Nothing was added; fix them and try again.', 'error-text');
  const errors = byId('add-errors');
  for (const d of details) {
    const input = d.input !== undefined && d.input !== null ? String(d.input) : '';
    errors.appendChild(el('li', null,
      el('span', { class: 'bad-input mono' }, input === '' ? '(empty)' : input),
      el('span', { class: 'reason' }, d.reason || 'invalid'),
      typeof d.index === 'number' ? el('span', { class: 'muted where' }, 'entry ' + (d.index + 1)) : null));
  }
  errors.hidden = false;
}
