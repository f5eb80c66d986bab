/*
 * edit.js - the "Edit book" dialog: a book's work, format, tags (comma-separated), note and ASIN,
 * sent as one PATCH /api/books/{id} with only the fields that changed. The server's answer
 * replaces the book in the table; a refusal (say 409, an ASIN another book has) is shown in the
 * dialog, which stays open.
 */
import { apiChange } from './api.js';
import { reportError } from './banner.js';
import { attachedAsin, idOf, isAsinOnly, tagsOf, workOf } from './books.js';
import { byId } from './dom.js';
import { loadBooks, replaceLocally } from './state.js';

let editing = null;   // the book the open dialog edits
let saving = false;

export function initEdit() {
  const dlg = byId('edit-dialog');
  // Save is the form's only submit button, so Enter in a one-line field saves too; the dialog
  // closes only once the server took the change.
  byId('edit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    save();
  });
  byId('edit-cancel').addEventListener('click', () => { if (!saving) dlg.close('cancel'); });
  // Escape while a save is on its way would hide its outcome.
  dlg.addEventListener('cancel', (e) => { if (saving) e.preventDefault(); });
  dlg.addEventListener('close', () => { editing = null; });
}

/* Opens the dialog for book; focus: the name of the field to focus first. */
export function openEditor(book, focus) {
  editing = book;
  const id = idOf(book);
  byId('edit-heading').textContent = book.title ? book.title : id;
  byId('edit-id').textContent = (isAsinOnly(book) ? 'ASIN ' : 'ISBN ') + id;
  byId('edit-work').value = workOf(book);
  byId('edit-format').value = book.format || '';
  byId('edit-tags').value = tagsOf(book).join(', ');
  byId('edit-note').value = typeof book.note === 'string' ? book.note : '';
  const asin = byId('edit-asin');
  // A book without an ISBN is known by its ASIN: that is its id, not something to change.
  asin.value = isAsinOnly(book) ? id : attachedAsin(book);
  asin.disabled = isAsinOnly(book);
  showError('');
  setSaving(false);
  const dlg = byId('edit-dialog');
  if (!dlg.open) dlg.showModal();
  const first = byId('edit-' + (focus || 'work'));
  if (first && !first.disabled) first.focus();
}

function showError(text) {
  const p = byId('edit-error');
  p.textContent = text;
  p.hidden = !text;
}

function setSaving(yes) {
  saving = yes;
  byId('edit-save').disabled = yes;
}

/* "a, b,, c ,a" -> ["a", "b", "c"]: trimmed, blanks and repeats dropped, order kept. */
export function parseTags(text) {
  const out = [];
  for (const t of String(text).split(',')) {
    const s = t.trim();
    if (s && !out.includes(s)) out.push(s);
  }
  return out;
}

/* The PATCH body: the fields whose value differs from the book's ('' becomes null: cleared). */
function changes(book) {
  const patch = {};
  const text = (v) => (v === '' ? null : v);
  const work = byId('edit-work').value.trim();
  if (work !== workOf(book)) patch.work = text(work);
  const format = byId('edit-format').value;
  if (format !== (book.format || '')) patch.format = text(format);
  const tags = parseTags(byId('edit-tags').value);
  const had = tagsOf(book);
  if (tags.length !== had.length || tags.some((t, i) => t !== had[i])) patch.tags = tags.length ? tags : null;
  const note = byId('edit-note').value.trim();
  if (note !== (typeof book.note === 'string' ? book.note : '')) patch.note = text(note);
  if (!isAsinOnly(book)) {
    const asin = byId('edit-asin').value.trim().toUpperCase();
    if (asin !== attachedAsin(book)) patch.asin = text(asin);
  }
  return patch;
}

async function save() {
  const book = editing;
  if (!book || saving) return;
  const patch = changes(book);
  const dlg = byId('edit-dialog');
  if (!Object.keys(patch).length) {
    dlg.close('ok');
    return;
  }
  setSaving(true);
  showError('');
  try {
    const updated = await apiChange('PATCH', '/api/books/' + encodeURIComponent(idOf(book)), patch);
    setSaving(false);
    if (editing === book) dlg.close('ok');
    if (updated && updated.id) replaceLocally(updated);
    else await loadBooks();
  } catch (e) {
    setSaving(false);
    if (e.status === 404) {
      // Removed meanwhile (another tab, a script): show what the server has.
      dlg.close('cancel');
      reportError('Could not save the book', e);
      await loadBooks();
      return;
    }
    showError((e.status === 409 ? 'Not saved: ' : 'Could not save: ') + e.message);
  }
}
