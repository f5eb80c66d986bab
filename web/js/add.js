/*
 * add.js - the "Add books" form: a pasted list of ISBNs sent in one POST /api/books, the result
 * line, and the list of entries the server refused (then nothing is added).
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

/* Entries as the server numbers them: split on line breaks, commas and semicolons, blanks
 * dropped. Hyphens and spaces inside an ISBN are the server's to ignore. */
function splitIsbns(text) {
  return text.split(/[\n\r,;]+/).map((s) => s.trim()).filter((s) => s.length > 0);
}

async function addBooks(ev) {
  ev.preventDefault();
  const textarea = byId('add-text');
  const entries = splitIsbns(textarea.value);
  resetResult();
  if (!entries.length) {
    showResult('Paste at least one ISBN.', 'error-text');
    return;
  }
  const btn = byId('add-btn');
  btn.disabled = true;
  try {
    const refresh = byId('add-refresh').checked;
    const data = await apiChange('POST', '/api/books', { isbns: entries, refresh });
    const added = (data && data.added) || [];
    const already = (data && data.already_tracked) || [];
    const parts = ['Added ' + added.length + (added.length === 1 ? ' book' : ' books')];
    if (already.length) parts.push(already.length + ' already tracked');
    showResult(parts.join(', ') + '.', 'ok-text');
    textarea.value = '';
    // An ISBN removed and added again must not show the history cached before.
    for (const isbn of added) forgetHistory(isbn);
    await loadBooks();
    if (data && data.job) followJob(data.job);
  } catch (e) {
    if (e.status === 400 && e.details.length) showInvalid(entries, e.details);
    else showResult('Could not add: ' + e.message, 'error-text');
  } finally {
    btn.disabled = false;
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
function showInvalid(entries, details) {
  byId('add-text').classList.add('invalid');
  showResult(details.length === 1
    ? '1 entry is not a valid ISBN. Nothing was added; fix it and try again.'
    : details.length + ' entries are not valid ISBNs. Nothing was added; fix them and try again.', 'error-text');
  const errors = byId('add-errors');
  for (const d of details) {
    const input = d.input !== undefined ? String(d.input) : (typeof d.index === 'number' ? entries[d.index] : '');
    errors.appendChild(el('li', null,
      el('span', { class: 'bad-input mono' }, input === '' ? '(empty)' : input),
      el('span', { class: 'reason' }, d.reason || 'invalid'),
      typeof d.index === 'number' ? el('span', { class: 'muted where' }, 'entry ' + (d.index + 1)) : null));
  }
  errors.hidden = false;
}
