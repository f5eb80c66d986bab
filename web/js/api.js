/*
 * api.js - every request to the bookrank server: JSON in and out (a string body goes as
 * text/plain), errors as ApiError, and the access token (asked for in the token dialog, kept in
 * sessionStorage for this tab only).
 */
import { byId } from './dom.js';
import { openDialog } from './dialog.js';

const TOKEN_KEY = 'bookrank.token';

/* Set from /api/config; a 401 also sets it, for servers that predate that endpoint. */
let authRequired = false;

export function setAuthRequired(yes) {
  authRequired = !!yes;
}

/* status 0 means the server could not be reached; details are the API's error details. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || ('HTTP ' + status));
    this.status = status;
    this.code = code || '';
    this.details = Array.isArray(details) ? details : [];
  }
}

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}

function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage may be disabled; the token then lives for this call only */ }
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const opts = { method, headers, cache: 'no-store' };
  if (typeof body === 'string') {
    // A pasted list goes as typed: the server splits it by the one list rule (docs/API.md).
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    opts.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the bookrank server.');
  }
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code, err.message || ('HTTP ' + res.status), err.details);
  }
  return data;
}

/* A read: never asks for a token (reads do not need one), sends it when there is one. */
export function apiGet(path) {
  return request('GET', path);
}

/* A change: asks for a token first when the server wants one, and once more on a 401. */
export async function apiChange(method, path, body) {
  if (authRequired && !getToken()) {
    if (!(await askToken(''))) throw new ApiError(401, 'unauthorized', 'An access token is needed.');
  }
  try {
    return await request(method, path, body);
  } catch (e) {
    if (e.status === 401) {
      const hadToken = !!getToken();
      setToken('');
      authRequired = true;
      if (await askToken(hadToken ? 'That token was not accepted.' : '')) {
        return request(method, path, body);
      }
    }
    throw e;
  }
}

/* true once the user gave a token (now stored); problem is shown above the input. */
async function askToken(problem) {
  const input = byId('token-input');
  const errEl = byId('token-error');
  input.value = '';
  errEl.textContent = problem || '';
  errEl.hidden = !problem;
  const answer = await openDialog(byId('token-dialog'));
  const token = input.value.trim();
  input.value = '';
  if (answer !== 'ok' || !token) return false;
  setToken(token);
  return true;
}
