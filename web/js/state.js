/*
 * state.js - what the page knows and shows that more than one module reads: the tracked books
 * (and loading them), which book's chart is open, the tag the table is filtered by (rows set it
 * from their tag chips, the table from its select), and the signal that the view must be
 * redrawn. Books are keyed by their id (ISBN-13, or ASIN for a book without an ISBN).
 *
 * Modules change the state and call changed(); the table redraws. That keeps the dependencies
 * one way (rows and the chart never import the table that contains them).
 */
import { apiGet } from './api.js';
import { reportError } from './banner.js';
import { idOf, latestStamp } from './books.js';
import { forgetHistory } from './history.js';

export const state = {
  books: [],        // as GET /api/books returns them
  loading: false,   // a load of the books is under way (an empty table then says Loading…)
  expanded: null,   // id of the book whose chart is open
  filterTag: '',    // only books with this tag are shown ('' for all)
};

const listeners = [];

export function onChange(fn) {
  listeners.push(fn);
}

/* Redraws now, synchronously: callers read the DOM right after. */
export function changed() {
  for (const fn of listeners) fn();
}

export function toggleExpanded(id) {
  state.expanded = state.expanded === id ? null : id;
  changed();
}

/* A tag chip toggles the tag filter. */
export function toggleTagFilter(tag) {
  state.filterTag = state.filterTag === tag ? '' : tag;
  changed();
}

export function removeLocally(id) {
  state.books = state.books.filter((b) => idOf(b) !== id);
  forgetHistory(id);
  if (state.expanded === id) state.expanded = null;
  changed();
}

/* Puts a book as the server answered a change of it (PATCH) in place of the one shown. */
export function replaceLocally(book) {
  const id = idOf(book);
  const i = state.books.findIndex((b) => idOf(b) === id);
  if (i >= 0) state.books[i] = book;
  else state.books.push(book);
  changed();
}

export async function loadBooks() {
  state.loading = true;
  try {
    const data = await apiGet('/api/books');
    const books = Array.isArray(data) ? data : (data && Array.isArray(data.books) ? data.books : []);
    // A book checked since the last load (say by a scheduled refresh) needs its history again.
    const seen = new Map(state.books.map((b) => [idOf(b), latestStamp(b)]));
    for (const b of books) {
      const id = idOf(b);
      if (seen.has(id) && seen.get(id) !== latestStamp(b)) forgetHistory(id);
    }
    state.books = books;
  } catch (e) {
    reportError('Could not load books', e);
  } finally {
    state.loading = false;
  }
  changed();
}
