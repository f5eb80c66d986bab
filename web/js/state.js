/*
 * state.js - what the page knows and shows that more than one module reads: the tracked books
 * (and loading them), which book's chart is open, and the signal that the view must be redrawn.
 *
 * Modules change the state and call changed(); the table redraws. That keeps the dependencies
 * one way (rows and the chart never import the table that contains them).
 */
import { apiGet } from './api.js';
import { reportError } from './banner.js';
import { latestStamp } from './books.js';
import { forgetHistory } from './history.js';

export const state = {
  books: [],        // as GET /api/books returns them
  loading: false,   // a load of the books is under way (an empty table then says Loading…)
  expanded: null,   // isbn13 of the book whose chart is open
};

const listeners = [];

export function onChange(fn) {
  listeners.push(fn);
}

/* Redraws now, synchronously: callers read the DOM right after. */
export function changed() {
  for (const fn of listeners) fn();
}

export function toggleExpanded(isbn) {
  state.expanded = state.expanded === isbn ? null : isbn;
  changed();
}

export function removeLocally(isbn) {
  state.books = state.books.filter((b) => b.isbn13 !== isbn);
  forgetHistory(isbn);
  if (state.expanded === isbn) state.expanded = null;
  changed();
}

export async function loadBooks() {
  state.loading = true;
  try {
    const data = await apiGet('/api/books');
    const books = Array.isArray(data) ? data : (data && Array.isArray(data.books) ? data.books : []);
    // A book checked since the last load (say by a scheduled refresh) needs its history again.
    const seen = new Map(state.books.map((b) => [b.isbn13, latestStamp(b)]));
    for (const b of books) {
      if (seen.has(b.isbn13) && seen.get(b.isbn13) !== latestStamp(b)) forgetHistory(b.isbn13);
    }
    state.books = books;
  } catch (e) {
    reportError('Could not load books', e);
  } finally {
    state.loading = false;
  }
  changed();
}
