/*
 * main.js - the entry point (index.html loads it as a module): wires each part of the page to its
 * elements and starts the timers and the first load. Nothing else lives here.
 */
import { apiGet, setAuthRequired } from './api.js';
import { initAdd } from './add.js';
import { initBanner } from './banner.js';
import { byId } from './dom.js';
import { initEdit } from './edit.js';
import { initJobs, loadJobs } from './jobs.js';
import { initRefresh, jobRunning } from './refresh.js';
import { changed, loadBooks, state, toggleExpanded } from './state.js';
import { initTable, refreshRelativeTimes } from './table.js';

const RELOAD_MS = 60000;
const RELTIME_MS = 30000;
const RESIZE_SETTLE_MS = 200;

function initKeys() {
  // Escape closes the open chart, unless it is closing a dialog.
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.expanded && !document.querySelector('dialog[open]')) toggleExpanded(state.expanded);
  });
}

function initTimers() {
  setInterval(refreshRelativeTimes, RELTIME_MS);
  // The open chart is drawn for the table's width; redraw it once a resize has settled.
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.expanded) changed(); }, RESIZE_SETTLE_MS);
  });
  // Picks up scheduled refreshes, cron and other tabs; a followed job reloads when it ends anyway.
  setInterval(() => {
    if (jobRunning() || document.hidden) return;
    loadBooks();
    loadJobs();
  }, RELOAD_MS);
}

function loadConfig() {
  apiGet('/api/config').then((cfg) => {
    setAuthRequired(cfg && cfg.auth_required);
    if (cfg && cfg.version) byId('version').textContent = 'bookrank ' + cfg.version;
  }, () => { /* an older server without /api/config: find out on the first 401 */ });
}

// Module scripts run once the document is parsed, so the elements are there.
initBanner();
initTable();
initAdd();
initEdit();
initJobs();
initRefresh();
initKeys();
initTimers();
loadConfig();
state.loading = true;
changed();
loadBooks();
loadJobs();
