// Real-browser test of the dashboard: Debian's chromium driven by playwright-core against the real
// `bookrank serve` reading from the fixture store, all on loopback.
//   node tests/browser/test_dashboard.mjs      (needs: npm ci --prefix tests/browser)
// Env: BOOKRANK_BIN, FIXTURE_STORE_BIN, FIXTURES (set by tests/run.sh). Prints "ok - ..." /
// "not ok - ..." lines, exits 1 on any failure. Screenshots go to tests/browser/artifacts/.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BUILD = process.env.BUILD || 'build';
const BOOKRANK_BIN = process.env.BOOKRANK_BIN || path.join(ROOT, BUILD, 'bookrank');
const FIXTURE_STORE_BIN = process.env.FIXTURE_STORE_BIN || path.join(ROOT, BUILD, 'tests', 'fixture_store');
const FIXTURES = process.env.FIXTURES || path.join(ROOT, 'tests', 'fixtures');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(HERE, 'artifacts');
const WATCHDOG_MS = 180000;

let failures = 0;
let passes = 0;
function ok(cond, name, detail) {
  if (cond) {
    passes++;
    console.log('ok - ' + name);
  } else {
    failures++;
    console.log('not ok - ' + name + (detail !== undefined ? '\n#   ' + String(detail).split('\n').join('\n#   ') : ''));
  }
  return !!cond;
}

// The books the fixture store plays (keys are ISBN-10s: the source template uses {isbn10}).
const HOSTILE = '<img src=x onerror=window.__xss=1><script>window.__xss=1</script>';
const A = { i10: '0131103628', i13: '9780131103627', title: 'The C Programming Language' };
const B = { i10: '0132269937', i13: '9780132269933', title: HOSTILE };
const C = { i10: '0596007124', i13: '9780596007126' };       // not found
const D = { i10: '1449355730', i13: '9781449355739' };       // captcha: blocked
const E = { i10: '0201633612', i13: '9780201633610' };       // empty page: error
const ALL = [A, B, C, D, E];

function storeConfig(round) {
  const first = round === 1;
  return {
    default: {},
    books: {
      [A.i10]: { title: A.title, rank: first ? 1234 : 1000, category: 'Books',
        categories: [[3, 'C Programming'], [12, 'Software Design']] },
      [B.i10]: { title: B.title, rank: first ? 56789 : 70000, categories: [[7, 'Web Security']] },
      [C.i10]: { page: 'not_found' },
      // Two slow books in round 1 keep the job half done long enough for the progress bar to be seen.
      [D.i10]: { page: 'captcha', delay_ms: first ? 2500 : 0 },
      [E.i10]: { page: 'empty', delay_ms: first ? 2500 : 0 },
    },
  };
}

const children = [];
let tmpDir = null;
let browser = null;

function startProcess(bin, args, stream, pattern, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let seen = '';
    const timer = setTimeout(() => reject(new Error(what + ' did not start in 20 s; output:\n' + seen)), 20000);
    const onData = (chunk) => {
      seen += chunk.toString();
      if (seen.length > 65536) seen = seen.slice(-65536);
      const m = pattern.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), output: () => seen });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(what + ': ' + e.message)); });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(what + ' exited (' + (code ?? sig) + ') before it was ready; output:\n' + seen));
    });
  });
}

async function http(method, url, body, headers = {}) {
  const opts = { method, headers: Object.assign({}, headers) };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(url, opts);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  return { status: res.status, json, text, headers: res.headers };
}

// Watches everything a page loads. expected lists the error answers the test provokes on purpose
// ({method, path, status}); each is allowed once, and must happen. Anything else -- a request that
// fails, an answer >= 400, a console error, an uncaught exception -- is a problem.
function watchPage(page, expected) {
  const base = () => new URL(page.url()).origin;
  const pending = expected.map((x) => Object.assign({ seen: false }, x));
  const problems = [];
  const consoleErrors = [];
  const modules = new Map();   // path of each /js/*.js the page loaded -> its response headers
  let stopped = false;
  const take = (method, p, status) => {
    const x = pending.find((e) => !e.seen && e.method === method && e.path === p && e.status === status);
    if (x) x.seen = true;
    return !!x;
  };
  page.on('requestfailed', (req) => {
    if (!stopped) problems.push('failed: ' + req.method() + ' ' + req.url() + ' ' + ((req.failure() || {}).errorText || ''));
  });
  page.on('response', (res) => {
    if (stopped) return;
    const u = new URL(res.url());
    if (u.origin === base() && /^\/js\/[^/]+\.js$/.test(u.pathname)) modules.set(u.pathname, res.headers());
    if (res.status() < 400) return;
    if (!take(res.request().method(), u.pathname, res.status())) problems.push(res.status() + ': ' + res.request().method() + ' ' + res.url());
  });
  page.on('console', (m) => {
    if (stopped || m.type() !== 'error') return;
    // The browser logs every error answer; those of the provoked requests are expected. They are
    // matched against the list, not against the answers seen: the two events come in either order.
    const url = (m.location() && m.location().url) || '';
    const status = /status of (\d+)/.exec(m.text());
    const p = url ? new URL(url).pathname : '';
    if (status && expected.some((x) => x.status === Number(status[1]) && x.path === p)) return;
    consoleErrors.push(m.text() + (url ? ' (' + url + ')' : ''));
  });
  page.on('pageerror', (e) => { if (!stopped) consoleErrors.push('page error: ' + e.message); });
  return {
    problems,
    consoleErrors,
    modules,
    missed: () => pending.filter((x) => !x.seen).map((x) => x.method + ' ' + x.path + ' ' + x.status),
    // Closing the page aborts whatever it still has in flight; that is not the page's fault.
    stop: () => { stopped = true; },
  };
}

// Every file of web/js/ is served at /js/NAME as JavaScript, under the CSP, byte for byte, and
// the page loaded each of them (a module nobody imports is dead code, or a broken import).
async function checkModules(base, loaded) {
  const dir = path.join(ROOT, 'web', 'js');
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.js')).sort();
  ok(names.includes('main.js') && names.length > 1, 'web/js/ holds main.js and the modules it imports', names.join(' '));
  const bad = [];
  for (const name of names) {
    const res = await fetch(base + '/js/' + name);
    const body = Buffer.from(await res.arrayBuffer());
    const h = res.headers;
    const csp = h.get('content-security-policy') || '';
    const why = [];
    if (res.status !== 200) why.push('status ' + res.status);
    if (h.get('content-type') !== 'text/javascript; charset=utf-8') why.push('type ' + h.get('content-type'));
    if (!/script-src 'self'/.test(csp) || !/default-src 'self'/.test(csp)) why.push('CSP ' + JSON.stringify(csp));
    if (h.get('x-content-type-options') !== 'nosniff') why.push('no nosniff');
    if (!body.equals(fs.readFileSync(path.join(dir, name)))) why.push('body differs from the file');
    if (why.length) bad.push(name + ': ' + why.join(', '));
  }
  ok(bad.length === 0, 'every module is served as text/javascript with the CSP (' + names.length + ' files)', bad.join('\n'));
  const notLoaded = names.filter((n) => !loaded.has('/js/' + n));
  ok(notLoaded.length === 0, 'the page loads every module', 'not loaded: ' + notLoaded.join(' '));
  const wrong = [...loaded].filter(([, h]) => !/^text\/javascript\b/.test(h['content-type'] || '') ||
    !/script-src 'self'/.test(h['content-security-policy'] || '')).map(([p]) => p);
  ok(wrong.length === 0, 'the browser got each module as JavaScript with the CSP', wrong.join(' '));
  const [root, index] = await Promise.all(['/', '/index.html'].map((p) => http('GET', base + p)));
  ok(root.status === 200 && index.status === 200 && root.text === index.text &&
    /<script type="module" src="\/js\/main.js"><\/script>/.test(root.text),
  'index.html is served at / and /index.html and loads /js/main.js as a module', root.status + ' ' + index.status);
}

// SIGTERM, then wait (up to ms) for the exit; a sanitizer report would show as a non-zero code.
function stopProcess(child, ms) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, ms);
    child.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
    child.kill('SIGTERM');
  });
}

function cleanup() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.kill('SIGTERM'); } catch (e) { /* already gone */ }
    }
    try { c.stdin.end(); } catch (e) { /* closed */ }
  }
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

async function main() {
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    ok(false, 'playwright-core is installed (run: npm ci --prefix tests/browser)', e.message);
    return;
  }
  for (const [name, file] of [['BOOKRANK_BIN', BOOKRANK_BIN], ['FIXTURE_STORE_BIN', FIXTURE_STORE_BIN], ['chromium', CHROMIUM]]) {
    if (!ok(fs.existsSync(file), name + ' exists (' + file + ')')) return;
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bookrank-browser-'));
  fs.mkdirSync(ARTIFACTS, { recursive: true });

  const storeArgs = ['--port', '0'];
  if (fs.existsSync(FIXTURES)) storeArgs.push('--fixtures', FIXTURES);
  const store = await startProcess(FIXTURE_STORE_BIN, storeArgs, 'stdout', /PORT (\d+)/, 'fixture store');
  const storeUrl = 'http://127.0.0.1:' + store.port;
  let r = await http('POST', storeUrl + '/_config', storeConfig(1));
  if (!ok(r.status === 200, 'fixture store accepts the scenario', r.status + ' ' + r.text)) return;

  const server = await startProcess(BOOKRANK_BIN, ['serve', '--listen', '127.0.0.1:0',
    '--db', path.join(tmpDir, 'test.db'),
    '--source', 'amazon.com=' + storeUrl + '/dp/{isbn10}',
    '--rate', '0', '--per-host', '8', '--cooldown', '0', '--retries', '0', '--timeout', '10'],
  'stderr', /listening on http:\/\/127\.0\.0\.1:(\d+)/, 'bookrank serve');
  const base = 'http://127.0.0.1:' + server.port;
  ok(true, 'bookrank serve is listening on port ' + server.port);

  const userData = path.join(tmpDir, 'chromium-profile');
  // A persistent context on a fresh directory: the profile starts empty and is removed afterwards.
  const context = await playwright.chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    colorScheme: 'light',
  });
  browser = context;
  const page = await context.newPage();
  // The one error answer this session provokes: the deliberately invalid batch.
  const watch = watchPage(page, [{ method: 'POST', path: '/api/books', status: 400 }]);
  const consoleErrors = watch.consoleErrors;
  const dialogs = [];
  // The page must never raise a native alert/confirm we did not expect (an XSS payload would).
  page.on('dialog', (d) => { dialogs.push(d.type() + ': ' + d.message()); d.dismiss().catch(() => {}); });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
    });
  });

  // ---- first load ----
  const resp = await page.goto(base + '/');
  ok(resp && resp.status() === 200, 'GET / answers 200', resp && resp.status());
  const csp = resp ? resp.headers()['content-security-policy'] || '' : '';
  ok(/script-src 'self'/.test(csp) && /default-src 'self'/.test(csp), 'the dashboard is served with a strict CSP', csp);
  ok((await page.title()) === 'bookrank', 'the page title is bookrank');
  await page.waitForSelector('#empty:not([hidden])');
  ok(/No books tracked/.test(await page.textContent('#empty')), 'an empty database shows the empty state');
  const assets = await Promise.all(['/js/main.js', '/style.css'].map((p) => http('GET', base + p)));
  ok(assets.every((a) => a.status === 200 && a.text.length > 1000), 'js/main.js and style.css are served', assets.map((a) => a.status).join(' '));
  await checkModules(base, watch.modules);

  // ---- add: invalid entries are reported and nothing is added ----
  await page.uncheck('#add-refresh');
  await page.fill('#add-text', A.i10 + '\n0131103629\n' + B.i13 + ', hello-world');
  await page.click('#add-btn');
  await page.waitForSelector('#add-errors:not([hidden]) li');
  const errs = await page.$$eval('#add-errors li', (lis) => lis.map((li) => ({
    input: li.querySelector('.bad-input').textContent, reason: li.querySelector('.reason').textContent })));
  ok(errs.length === 2, 'two invalid entries are listed', JSON.stringify(errs));
  ok(errs.some((e) => e.input === '0131103629') && errs.some((e) => e.input === 'hello-world'),
    'the invalid entries are shown as typed', JSON.stringify(errs));
  ok(errs.every((e) => e.reason.trim().length > 3), 'each invalid entry has a reason', JSON.stringify(errs));
  ok(/Nothing was added/.test(await page.textContent('#add-result')), 'the form says nothing was added');
  r = await http('GET', base + '/api/books');
  ok(r.status === 200 && Array.isArray(r.json) && r.json.length === 0, 'no book was added by the invalid batch', r.text);
  ok((await page.$$('#books-body tr.book')).length === 0, 'the table is still empty');

  // ---- add: fixed list, with hyphens, commas and blank lines ----
  await page.fill('#add-text', '0-13-110362-8\n\n978-0-13-226993-3, 0596007124\n1449355730,0201633612\n');
  await page.click('#add-btn');
  await page.waitForFunction(() => document.querySelectorAll('#books-body tr.book').length === 5);
  ok(/Added 5 books/.test(await page.textContent('#add-result')), 'the form reports 5 books added',
    await page.textContent('#add-result'));
  ok((await page.$$('#add-errors li')).length === 0 && (await page.inputValue('#add-text')) === '',
    'the errors are cleared and the textarea emptied');
  r = await http('GET', base + '/api/books');
  ok(r.json && r.json.length === 5, 'the server tracks 5 books', r.text);
  const unchecked = await page.$$eval('#books-body .badge', (b) => b.map((x) => x.textContent));
  ok(unchecked.length === 5 && unchecked.every((t) => t === 'not checked'), 'new books show as not checked yet', unchecked.join(','));
  const keyed = await page.$$eval('#books-body tr.book', (rows) => rows.map((tr) => [tr.dataset.id, tr.dataset.isbn]));
  ok(keyed.length === 5 && keyed.every(([id, isbn]) => id === isbn) &&
    ALL.every((bk) => keyed.some(([id]) => id === bk.i13)), 'rows are keyed by data-id (the ISBN-13), data-isbn kept', JSON.stringify(keyed));
  ok(await page.isHidden('#filter-tag'), 'the tag filter is hidden while no book has a tag');

  // ---- refresh with live progress ----
  await page.click('#refresh-btn');
  await page.waitForSelector('#job:not([hidden])');
  ok(await page.isDisabled('#refresh-btn'), 'the refresh button is disabled while the job runs');
  // Three books answer at once, two after 2.5 s: the poller must show the half-done state.
  let midway = null;
  try {
    await page.waitForFunction(() => /Checking 3 of 5/.test(document.getElementById('job-label').textContent), null, { timeout: 8000 });
    midway = await page.evaluate(() => ({
      width: parseFloat(document.getElementById('job-bar').style.width),
      counts: document.getElementById('job-counts').textContent,
    }));
  } catch (e) { /* reported below */ }
  ok(midway && midway.width > 50 && midway.width < 70, 'the progress bar shows 3 of 5 done while the job runs', JSON.stringify(midway));
  await page.waitForFunction(() => /^Done/.test(document.getElementById('job-label').textContent), null, { timeout: 30000 });
  const counts = await page.$$eval('#job-counts .chip', (c) => Object.fromEntries(c.map((x) => [x.dataset.status, x.textContent])));
  ok(counts.ok === '2 ok' && counts.not_found === '1 not found' && counts.blocked === '1 blocked' && counts.error === '1 error',
    'the finished job shows its per-status counts', JSON.stringify(counts));
  ok((await page.textContent('#job-label')) === 'Done: 5 of 5 checked', 'the job label says done', await page.textContent('#job-label'));
  await page.waitForFunction((i13) => {
    const row = document.querySelector('tr.book[data-isbn="' + i13 + '"] .rank');
    return row && row.textContent === '#1,234';
  }, A.i13, { timeout: 10000 });
  ok(!(await page.isDisabled('#refresh-btn')), 'the refresh button is enabled again');

  const rowInfo = (i13) => page.$eval('tr.book[data-isbn="' + i13 + '"]', (tr) => ({
    title: tr.querySelector('.title-btn').textContent,
    isbn: tr.querySelector('.col-isbn').textContent,
    rank: (tr.querySelector('.rank') || {}).textContent || '',
    cat: (tr.querySelector('.cat') || {}).textContent || '',
    change: tr.querySelector('.col-change').textContent.trim(),
    changeClass: (tr.querySelector('.change') || { className: '' }).className,
    status: tr.querySelector('.col-status .badge').textContent,
    statusTitle: tr.querySelector('.col-status .badge').getAttribute('title') || '',
    checked: tr.querySelector('.col-checked').textContent.trim(),
    checkedTitle: (tr.querySelector('.reltime') || { title: '' }).title,
  }));
  let a = await rowInfo(A.i13);
  ok(a.title === A.title && a.isbn === A.i13, 'row A shows title and ISBN-13', JSON.stringify(a));
  ok(a.rank === '#1,234' && a.cat === 'in Books', 'row A shows the rank and its category as the store served them', JSON.stringify(a));
  ok(a.status === 'ok' && a.change === 'new', 'row A is ok with no previous rank yet', JSON.stringify(a));
  ok(a.checked === 'just now' && /Z\)$/.test(a.checkedTitle), 'last checked is relative, the exact time on hover', JSON.stringify(a));
  const b = await rowInfo(B.i13);
  ok(b.rank === '#56,789', 'row B shows its rank', JSON.stringify(b));
  ok(b.title === HOSTILE, 'the hostile title is shown as literal text', JSON.stringify(b.title));
  const c = await rowInfo(C.i13);
  ok(c.status === 'not found' && c.rank === '', 'the missing book shows not found without a rank', JSON.stringify(c));
  const d = await rowInfo(D.i13);
  ok(d.status === 'blocked', 'the captcha book shows blocked', JSON.stringify(d));
  const e = await rowInfo(E.i13);
  ok(e.status === 'error' && e.statusTitle.length > 0, 'the broken page shows error with its message on hover', JSON.stringify(e));

  // ---- second refresh: the change column ----
  r = await http('POST', storeUrl + '/_config', storeConfig(2));
  ok(r.status === 200, 'the fixture store takes the second round of ranks');
  await page.click('#refresh-btn');
  await page.waitForFunction((i13) => {
    const row = document.querySelector('tr.book[data-isbn="' + i13 + '"] .rank');
    return row && row.textContent === '#1,000' && !document.getElementById('refresh-btn').disabled;
  }, A.i13, { timeout: 30000 });
  a = await rowInfo(A.i13);
  const b2 = await rowInfo(B.i13);
  ok(a.change === '▲ 234' && /\bup\b/.test(a.changeClass), 'a better rank shows an up arrow and the gain', JSON.stringify(a));
  ok(b2.rank === '#70,000' && b2.change === '▼ 13,211' && /\bdown\b/.test(b2.changeClass), 'a worse rank shows a down arrow and the loss', JSON.stringify(b2));
  const colours = await page.evaluate(() => {
    const rgb = (sel) => getComputedStyle(document.querySelector(sel)).color.match(/\d+/g).map(Number);
    return { up: rgb('.change.up'), down: rgb('.change.down') };
  });
  ok(colours.up[1] > colours.up[0] && colours.down[0] > colours.down[1], 'better is green, worse is red', JSON.stringify(colours));
  await page.waitForFunction(() => document.querySelectorAll('#jobs-body tr.job-row.state-done').length === 2);
  const jobRows = await page.$$eval('#jobs-body tr.job-row', (rows) => rows.map((tr) => ({
    id: Number(tr.dataset.jobId), by: tr.dataset.startedBy, state: tr.querySelector('.job-state').textContent,
    progress: tr.querySelector('.job-progress').textContent, cancel: !!tr.querySelector('.job-cancel') })));
  ok(jobRows.length === 2 && jobRows[0].id > jobRows[1].id && jobRows.every((j) => j.by === 'api' && j.state === 'done' &&
    /^5 of 5/.test(j.progress) && !j.cancel), 'the recent refreshes list both finished jobs, newest first, without a cancel button', JSON.stringify(jobRows));

  // ---- sorting and filtering ----
  const order = () => page.$$eval('#books-body tr.book', (rows) => rows.map((tr) => tr.dataset.isbn));
  await page.click('button.sort[data-sort="rank"]');
  let o = await order();
  const rankSortedDesc = o[0] === B.i13 && o[1] === A.i13;
  if (!rankSortedDesc) await page.click('button.sort[data-sort="rank"]');
  o = await order();
  // whichever direction the first click gave, one of the two directions must show B first
  ok(rankSortedDesc || (o[0] === B.i13 && o[1] === A.i13), 'sorting by rank both ways puts the ranked books first', o.join(' '));
  await page.click('button.sort[data-sort="rank"]');
  o = await order();
  ok(o[0] === A.i13 && o[1] === B.i13 && o.length === 5, 'ascending rank puts #1,000 before #70,000, unranked last', o.join(' '));
  await page.click('button.sort[data-sort="change"]');
  o = await order();
  ok(o[0] === A.i13 && o[1] === B.i13, 'sorting by change puts the biggest gain first', o.join(' '));
  await page.click('button.sort[data-sort="title"]');
  o = await order();
  ok(o[0] === B.i13 && o[1] === A.i13, 'sorting by title orders the titles', o.join(' '));
  await page.fill('#filter-text', 'programming lang');
  o = await order();
  ok(o.length === 1 && o[0] === A.i13, 'the text filter matches titles', o.join(' '));
  await page.fill('#filter-text', 'web secu');
  o = await order();
  ok(o.length === 1 && o[0] === B.i13, 'the text filter matches category names', o.join(' '));
  await page.fill('#filter-text', '978-1449');
  o = await order();
  ok(o.length === 1 && o[0] === D.i13, 'the text filter matches hyphenated ISBNs', o.join(' '));
  await page.fill('#filter-text', '');
  await page.selectOption('#filter-status', 'blocked');
  o = await order();
  ok(o.length === 1 && o[0] === D.i13, 'the status filter keeps only blocked books', o.join(' '));
  await page.selectOption('#filter-status', '');
  ok((await order()).length === 5, 'clearing the filters shows every book');

  // ---- sparkline and chart ----
  await page.waitForSelector('tr.book[data-isbn="' + A.i13 + '"] svg.sparkline polyline');
  const spark = await page.$eval('tr.book[data-isbn="' + A.i13 + '"] svg.sparkline polyline', (p) => p.getAttribute('points'));
  const sparkPts = spark.trim().split(/\s+/).map((pt) => pt.split(',').map(Number));
  ok(sparkPts.length === 2 && sparkPts.every((pt) => pt.length === 2 && pt.every(Number.isFinite)), 'row A has a sparkline with 2 points', spark);
  ok(sparkPts.length === 2 && sparkPts[1][1] < sparkPts[0][1], 'the sparkline rises when the rank gets better', spark);
  await page.click('tr.book[data-isbn="' + A.i13 + '"] .title-btn');
  await page.waitForSelector('tr.detail svg.history-chart .series polyline');
  const chart = await page.$eval('tr.detail svg.history-chart', (s) => ({
    series: s.querySelectorAll('.series:not(.cat)').length,
    cats: s.querySelectorAll('.series.cat').length,
    points: [...s.querySelectorAll('.series:not(.cat) circle')].map((c) => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]),
    xlabels: [...s.querySelectorAll('text.xlab')].map((t) => t.textContent),
    ylabels: [...s.querySelectorAll('text.ylab')].map((t) => t.textContent),
  }));
  ok(chart.series === 1 && chart.points.length === 2, 'the chart has one source line with 2 points', JSON.stringify(chart));
  ok(chart.points.length === 2 && chart.points[1][0] > chart.points[0][0] && chart.points[1][1] < chart.points[0][1],
    'time runs left to right and the better rank is drawn higher', JSON.stringify(chart.points));
  ok(chart.xlabels.length >= 2 && chart.xlabels.every((t) => t.length > 0), 'the x axis has time labels', chart.xlabels.join(' | '));
  ok(chart.ylabels.length >= 2 && chart.ylabels.includes('#1k'), 'the y axis has rank labels', chart.ylabels.join(' | '));
  ok(chart.cats === 0, 'category ranks are hidden by default');
  await page.check('tr.detail .cat-toggle');
  const cats = await page.$eval('tr.detail', (tr) => ({
    lines: tr.querySelectorAll('svg .series.cat').length,
    legend: tr.querySelector('.legend').textContent,
  }));
  ok(cats.lines === 2 && /C Programming/.test(cats.legend) && /Software Design/.test(cats.legend),
    'the checkbox adds the category rank lines', JSON.stringify(cats));
  await page.click('tr.book[data-isbn="' + B.i13 + '"] .title-btn');
  await page.waitForSelector('tr.detail[data-isbn="' + B.i13 + '"] svg.history-chart');
  ok((await page.textContent('tr.detail h3')) === HOSTILE, 'the chart heading shows the hostile title as text');
  await page.click('tr.book[data-isbn="' + A.i13 + '"] .title-btn');
  await page.waitForSelector('tr.detail[data-isbn="' + A.i13 + '"] svg.history-chart .series.cat');

  // ---- the hostile title never ran ----
  const xss = await page.evaluate(() => ({
    flag: typeof window.__xss,
    imgs: document.querySelectorAll('main img').length,
    scripts: document.querySelectorAll('script').length,
  }));
  ok(xss.flag === 'undefined' && xss.imgs === 0 && xss.scripts === 1, 'the hostile title injected no element and ran no script', JSON.stringify(xss));

  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // ---- remove with confirmation ----
  await page.click('tr.book[data-isbn="' + C.i13 + '"] .remove-btn');
  await page.waitForSelector('#confirm-dialog[open]');
  ok((await page.textContent('#confirm-text')).includes(C.i13), 'the confirmation names the book');
  await page.click('#confirm-cancel');
  await page.waitForSelector('#confirm-dialog', { state: 'hidden' });
  ok((await page.$$('tr.book[data-isbn="' + C.i13 + '"]')).length === 1, 'cancel keeps the book');
  await page.click('tr.book[data-isbn="' + C.i13 + '"] .remove-btn');
  await page.waitForSelector('#confirm-dialog[open]');
  await page.click('#confirm-ok');
  await page.waitForFunction((i13) => !document.querySelector('tr.book[data-isbn="' + i13 + '"]'), C.i13);
  r = await http('GET', base + '/api/books');
  ok(r.json && r.json.length === 4 && !r.json.some((bk) => bk.isbn13 === C.i13), 'confirming removes the book on the server', r.text);

  // ---- narrow screen ----
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const narrow = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    view: window.innerWidth,
    head: getComputedStyle(document.querySelector('#books thead')).display,
  }));
  ok(narrow.scroll <= narrow.view + 1 && narrow.head === 'none', 'a narrow screen shows cards without sideways scrolling', JSON.stringify(narrow));
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-narrow.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---- reload: state survives, still clean ----
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#books-body tr.book').length === 4);
  ok(true, 'a reload shows the 4 remaining books');
  const violations = await page.evaluate(() => window.__csp);
  ok(violations.length === 0, 'no CSP violations', violations.join('\n'));
  ok(consoleErrors.length === 0, 'no console errors', consoleErrors.join('\n'));
  ok(watch.problems.length === 0, 'no request of the page failed or was answered with an error', watch.problems.join('\n'));
  ok(watch.missed().length === 0, 'the provoked error answer was seen', watch.missed().join('\n'));
  ok(dialogs.length === 0, 'no native dialog was opened', dialogs.join('\n'));
  ok((await page.evaluate(() => typeof window.__xss)) === 'undefined', 'window.__xss is still undefined');
  watch.stop();
  await page.close();

  const exit = await stopProcess(server.child, 20000);
  ok(exit && exit.code === 0, 'bookrank serve exits 0 on SIGTERM after the session',
    JSON.stringify(exit) + '\n' + server.output().split('\n').slice(-15).join('\n'));

  await tokenPhase(context, storeUrl);
  await idsPhase(context, storeUrl);
}

// A server started with --token: the page asks for the token before the first change, asks again
// when the server refuses it, and keeps the accepted one for the tab.
async function tokenPhase(context, storeUrl) {
  const server = await startProcess(BOOKRANK_BIN, ['serve', '--listen', '127.0.0.1:0',
    '--db', path.join(tmpDir, 'token.db'), '--token', 's3cret-token',
    '--source', 'amazon.com=' + storeUrl + '/dp/{isbn10}', '--rate', '0', '--per-host', '8'],
  'stderr', /listening on http:\/\/127\.0\.0\.1:(\d+)/, 'bookrank serve --token');
  const base = 'http://127.0.0.1:' + server.port;
  const cfg = await http('GET', base + '/api/config');
  ok(cfg.json && cfg.json.auth_required === true, 'GET /api/config says a token is required', cfg.text);
  const page = await context.newPage();
  // The wrong token is refused once; nothing else may fail.
  const watch = watchPage(page, [{ method: 'POST', path: '/api/books', status: 401 }]);
  await page.goto(base + '/');
  await page.waitForSelector('#empty:not([hidden])');
  await page.waitForFunction(() => /bookrank/.test(document.getElementById('version').textContent));
  // "fetch their ranks now" stays checked here: adding starts a job the page follows.
  ok(await page.isChecked('#add-refresh'), 'fetching ranks right after adding is the default');
  await page.fill('#add-text', A.i13);
  await page.click('#add-btn');
  await page.waitForSelector('#token-dialog[open]');
  ok(true, 'the token dialog opens before the first change');
  await page.fill('#token-input', 'wrong-token');
  await page.click('#token-ok');
  await page.waitForSelector('#token-dialog[open] #token-error:not([hidden])');
  ok(/not accepted/.test(await page.textContent('#token-error')), 'a refused token is reported and asked again');
  await page.fill('#token-input', 's3cret-token');
  await page.click('#token-ok');
  await page.waitForFunction(() => document.querySelectorAll('#books-body tr.book').length === 1);
  ok(true, 'the book is added with the right token');
  await page.waitForFunction((i13) => {
    const rank = document.querySelector('tr.book[data-isbn="' + i13 + '"] .rank');
    return rank && rank.textContent === '#1,000' && /^Done/.test(document.getElementById('job-label').textContent);
  }, A.i13, { timeout: 30000 });
  ok(true, 'the refresh started by the add is followed and its rank shown');
  const kept = await page.evaluate(() => sessionStorage.getItem('bookrank.token'));
  ok(kept === 's3cret-token', 'the token is kept in sessionStorage', kept);
  const unauth = await http('DELETE', base + '/api/books/' + A.i13);
  ok(unauth.status === 401 && unauth.json && unauth.json.error && unauth.json.error.code === 'unauthorized',
    'the server refuses a change without the token', unauth.status + ' ' + unauth.text);
  ok(watch.consoleErrors.length === 0, 'no page or console errors with a token', watch.consoleErrors.join('\n'));
  ok(watch.problems.length === 0, 'no request failed with a token but the refused one', watch.problems.join('\n'));
  ok(watch.missed().length === 0, 'the refused token was answered 401', watch.missed().join('\n'));
  watch.stop();
  await page.close();
  await stopProcess(server.child, 20000);
}

// The books of the id phase. The source there is addressed by {asin}: a print book's ASIN is its
// ISBN-10, a book without an ISBN is its ASIN, and a 979 ISBN has none until one is attached.
const P1 = { i10: '0131103628', i13: '9780131103627', title: 'The C Book' };
const P2 = { i10: '0201633612', i13: '9780201633610', title: 'The C Book, second edition' };
const K = { asin: 'B00KINDLE1', title: 'A Kindle Edition' };
const U = { asin: 'B0TESTURL1', title: 'A Linked Book',
  url: 'https://www.amazon.com/A-Linked-Book/dp/B0TESTURL1/ref=sr_1_1?keywords=a,b&qid=17' };
const N = { i13: '9791032305690', typed: '979-10-323-0569-0', asin: 'B0N979ASIN', title: 'Nine Seven Nine' };

function idsStore(round) {
  const ok = (title, rank, extra) => Object.assign({ title, rank, category: 'Books' }, extra || {});
  const books = {
    [P1.i10]: round === 2 ? { page: 'captcha' } : ok(P1.title, round === 3 ? 1400 : 1500),
    [P2.i10]: ok(P2.title, 4000),
    [K.asin]: ok(K.title, round >= 3 ? 3333 : 2222, round === 3 ? { delay_ms: 2500 } : {}),
    [U.asin]: ok(U.title, 9000),
    [N.asin]: ok(N.title, 777),
  };
  // Round 4: every page is slow, so a refresh runs long enough to be cancelled.
  if (round === 4) for (const k of Object.keys(books)) books[k].delay_ms = 1500;
  return { default: round === 4 ? { delay_ms: 1500 } : {}, books };
}

function runToExit(bin, args) {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('error', (e) => resolve({ code: -1, out: out + e.message }));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

// Books known by ISBN, ASIN and product link; a 979 ISBN that needs an ASIN; editing work,
// format, tags, note and ASIN; editions grouped by work; the tag filter; the last good rank of a
// failing book; jobs started by the command line (cron) and cancelling a running job.
async function idsPhase(context, storeUrl) {
  let r = await http('POST', storeUrl + '/_config', idsStore(1));
  ok(r.status === 200, 'the fixture store takes the id scenario', r.status + ' ' + r.text);
  const db = path.join(tmpDir, 'ids.db');
  const source = 'amazon.com=' + storeUrl + '/dp/{asin}';
  // One worker: a job hands the pool only a few fetches at a time, so a cancel can stop the rest.
  const fetchOpts = ['--source', source, '--workers', '1', '--rate', '0', '--per-host', '1', '--cooldown', '0',
    '--retries', '0', '--timeout', '10'];
  const server = await startProcess(BOOKRANK_BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db,
    '--refresh-every', '6h', ...fetchOpts],
  'stderr', /listening on http:\/\/127\.0\.0\.1:(\d+)/, 'bookrank serve (ids)');
  const base = 'http://127.0.0.1:' + server.port;
  const page = await context.newPage();
  const watch = watchPage(page, [
    { method: 'POST', path: '/api/books', status: 400 },
    { method: 'PATCH', path: '/api/books/' + N.i13, status: 409 },
  ]);
  const patches = [];
  page.on('request', (req) => {
    if (req.method() === 'PATCH') patches.push({ path: new URL(req.url()).pathname, body: req.postDataJSON() });
  });
  const book = async (id) => (await http('GET', base + '/api/books/' + encodeURIComponent(id))).json || {};
  const ids = () => page.$$eval('#books-body tr.book', (rows) => rows.map((tr) => tr.dataset.id));
  const row = (id) => 'tr.book[data-id="' + id + '"]';

  await page.goto(base + '/');
  await page.waitForSelector('#empty:not([hidden])');
  await page.waitForSelector('#jobs-card:not([hidden]) #jobs-empty:not([hidden])');
  ok(/^Next scheduled refresh in 6 h$/.test((await page.textContent('#jobs-next')).trim()),
    'the recent refreshes say when the scheduled one is due', await page.textContent('#jobs-next'));

  // ---- a short share link is refused with the server's reason; nothing is added ----
  await page.fill('#add-text', K.asin.toLowerCase() + '\nhttps://a.co/d/3xAmPlE');
  await page.click('#add-btn');
  await page.waitForSelector('#add-errors:not([hidden]) li');
  const refused = await page.$$eval('#add-errors li', (lis) => lis.map((li) => ({
    input: li.querySelector('.bad-input').textContent, reason: li.querySelector('.reason').textContent })));
  ok(refused.length === 1 && refused[0].input === 'https://a.co/d/3xAmPlE' && /product page/.test(refused[0].reason),
    'a short a.co link is listed with the server\'s reason (paste the product page)', JSON.stringify(refused));
  r = await http('GET', base + '/api/books');
  ok(Array.isArray(r.json) && r.json.length === 0, 'the refused batch added nothing, not even the good ASIN', r.text);

  // ---- ISBNs, an ASIN in lower case, a product link with commas in its query, a 979 ISBN ----
  ok(await page.isChecked('#add-refresh'), 'fetching right after adding is on');
  await page.fill('#add-text', '0-13-110362-8, 978-0-201-63361-0\n' + K.asin.toLowerCase() + '\n' + U.url + '\n' + N.typed + '\n');
  await page.click('#add-btn');
  await page.waitForFunction(() => document.querySelectorAll('#books-body tr.book').length === 5);
  ok(/Added 5 books/.test(await page.textContent('#add-result')), 'ISBNs, an ASIN, a product link and a 979 ISBN are added',
    await page.textContent('#add-result'));
  r = await http('GET', base + '/api/books');
  const serverIds = (r.json || []).map((bk) => bk.id).sort();
  ok(JSON.stringify(serverIds) === JSON.stringify([P1.i13, P2.i13, N.i13, K.asin, U.asin].sort()),
    'the server tracks them under their ids (the link under its ASIN)', serverIds.join(' '));
  await page.waitForFunction(() => /^Done/.test(document.getElementById('job-label').textContent), null, { timeout: 30000 });
  await page.waitForFunction((sel) => { const x = document.querySelector(sel + ' .rank'); return x && x.textContent === '#2,222'; },
    row(K.asin), { timeout: 10000 });
  const cell = (id) => page.$eval(row(id), (tr) => ({
    isbn: tr.dataset.isbn === undefined ? null : tr.dataset.isbn,
    id: tr.querySelector('.col-isbn').textContent,
    rank: (tr.querySelector('.rank') || {}).textContent || '',
    status: tr.querySelector('.col-status .badge').textContent,
    asinLine: (tr.querySelector('.asin-line') || {}).textContent || '',
  }));
  const kc = await cell(K.asin);
  const uc = await cell(U.asin);
  const p1c = await cell(P1.i13);
  ok(kc.id === 'ASIN ' + K.asin && kc.isbn === null && kc.rank === '#2,222' && uc.id === 'ASIN ' + U.asin && uc.rank === '#9,000',
    'ASIN-only books show their ASIN, have no data-isbn, and are fetched by it', JSON.stringify([kc, uc]));
  ok(p1c.id === P1.i13 && p1c.isbn === P1.i13 && p1c.rank === '#1,500', 'an ISBN book shows its ISBN-13 and is fetched by its ISBN-10', JSON.stringify(p1c));
  const nc = await cell(N.i13);
  ok(nc.status === 'needs an ASIN' && nc.rank === '', 'the 979 book that no source could address says it needs an ASIN', JSON.stringify(nc));
  const skippedChip = await page.$eval('#job-counts', (x) => x.textContent);
  ok(/1 skipped \(needs an ASIN\)/.test(skippedChip) && /4 ok/.test(skippedChip), 'the finished job counts the skipped book apart', skippedChip);
  await page.waitForSelector('#jobs-body tr.job-row.state-done');
  const firstJob = await page.$eval('#jobs-body tr.job-row', (tr) => ({ by: tr.dataset.startedBy,
    results: tr.querySelector('.job-results').textContent, progress: tr.querySelector('.job-progress').textContent }));
  ok(firstJob.by === 'api' && /1 skipped \(needs an ASIN\)/.test(firstJob.results) && /^4 of 4/.test(firstJob.progress),
    'the recent refreshes list the job with its skipped book', JSON.stringify(firstJob));

  // ---- attaching an ASIN: another book's is refused (409) in the dialog, a free one is saved ----
  await page.click(row(N.i13) + ' .col-status .badge');
  await page.waitForSelector('#edit-dialog[open]');
  ok(await page.evaluate(() => document.activeElement && document.activeElement.id === 'edit-asin'),
    '"needs an ASIN" opens the editor on the ASIN field');
  await page.fill('#edit-asin', K.asin);
  await page.click('#edit-save');
  await page.waitForSelector('#edit-error:not([hidden])');
  const conflict = await page.textContent('#edit-error');
  ok(/belongs to another book/.test(conflict) && (await page.isVisible('#edit-dialog')),
    'an ASIN another book has is refused with the server\'s message and the dialog stays open', conflict);
  ok((await book(N.i13)).asin === null, 'the refused ASIN was not stored');
  await page.fill('#edit-asin', N.asin.toLowerCase());
  await page.click('#edit-save');
  await page.waitForSelector('#edit-dialog', { state: 'hidden' });
  const nb = await book(N.i13);
  ok(nb.asin === N.asin, 'the ASIN is saved (upper-cased)', JSON.stringify(nb));
  const nc2 = await cell(N.i13);
  ok(nc2.asinLine === 'ASIN ' + N.asin && nc2.status === 'not checked', 'the row shows the attached ASIN and no longer needs one', JSON.stringify(nc2));
  const lastPatch = patches[patches.length - 1];
  ok(patches.length === 2 && JSON.stringify(lastPatch.body) === JSON.stringify({ asin: N.asin }),
    'only the changed field is sent', JSON.stringify(patches));

  // ---- an ASIN-only book: its ASIN is its id and cannot be edited; cancel sends nothing ----
  await page.click(row(K.asin) + ' .edit-btn');
  await page.waitForSelector('#edit-dialog[open]');
  const asinField = await page.$eval('#edit-asin', (x) => ({ value: x.value, disabled: x.disabled }));
  ok(asinField.value === K.asin && asinField.disabled, 'an ASIN-only book shows its ASIN as its id, not editable', JSON.stringify(asinField));
  await page.fill('#edit-note', 'not saved');
  await page.click('#edit-cancel');
  await page.waitForSelector('#edit-dialog', { state: 'hidden' });
  ok(patches.length === 2 && (await book(K.asin)).note === null, 'cancel changes nothing');

  // ---- work, format, tags and note ----
  const edit = async (id, fields) => {
    await page.click(row(id) + ' .edit-btn');
    await page.waitForSelector('#edit-dialog[open]');
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'format') await page.selectOption('#edit-format', v);
      else await page.fill('#edit-' + k, v);
    }
    await page.click('#edit-save');
    await page.waitForSelector('#edit-dialog', { state: 'hidden' });
  };
  await edit(P1.i13, { work: 'The C Book', format: 'hardcover', tags: 'c, classic, c', note: 'signed copy' });
  let p1 = await book(P1.i13);
  ok(p1.work === 'The C Book' && p1.format === 'hardcover' && JSON.stringify(p1.tags) === '["c","classic"]' && p1.note === 'signed copy',
    'the editor saves work, format, tags (comma-separated, repeats dropped) and note', JSON.stringify(p1));
  ok(JSON.stringify(Object.keys(patches[patches.length - 1].body).sort()) === '["format","note","tags","work"]',
    'the PATCH carries the four changed fields and no ASIN', JSON.stringify(patches[patches.length - 1]));
  const meta = await page.$eval(row(P1.i13), (tr) => ({
    format: (tr.querySelector('.book-meta .format') || {}).textContent,
    tags: [...tr.querySelectorAll('.book-meta button.tag')].map((t) => t.textContent),
    note: (tr.querySelector('.book-meta .note') || {}).textContent }));
  ok(meta.format === 'hardcover' && JSON.stringify(meta.tags) === '["c","classic"]' && meta.note === 'signed copy',
    'the row shows the format, the tags and the note', JSON.stringify(meta));
  await edit(P2.i13, { work: 'The C Book', tags: 'c', note: HOSTILE });
  const seq = () => page.$$eval('#books-body > tr', (rows) => rows.map((tr) => (tr.classList.contains('work-row')
    ? 'work:' + tr.dataset.work + ':' + tr.querySelector('.work-count').textContent
    : (tr.classList.contains('edition') ? '  ' : '') + tr.dataset.id)));
  let order = await seq();
  const want = ['work:The C Book:2 editions', '  ' + P1.i13, '  ' + P2.i13, K.asin, U.asin, N.i13];
  ok(JSON.stringify(order) === JSON.stringify(want), 'the two editions of the work sit under its heading row, the other books ungrouped', JSON.stringify(order));
  ok((await page.textContent(row(P2.i13) + ' .note')) === HOSTILE && (await page.evaluate(() => typeof window.__xss)) === 'undefined' &&
    (await page.$$('main img')).length === 0, 'a hostile note is shown as text and runs nothing');

  // ---- the tag filter: the select and the chips ----
  const tagOptions = await page.$$eval('#filter-tag option', (o) => o.map((x) => x.value));
  ok(JSON.stringify(tagOptions) === '["","c","classic"]' && (await page.isVisible('#filter-tag')), 'the tag select lists every tag', JSON.stringify(tagOptions));
  await page.selectOption('#filter-tag', 'classic');
  order = await seq();
  ok(JSON.stringify(order) === JSON.stringify(['work:The C Book:1 edition', '  ' + P1.i13]), 'the select keeps only the books with that tag', JSON.stringify(order));
  await page.click(row(P1.i13) + ' button.tag[data-tag="c"]');
  ok(JSON.stringify(await ids()) === JSON.stringify([P1.i13, P2.i13]) && (await page.inputValue('#filter-tag')) === 'c',
    'a tag chip filters by its tag and the select follows', JSON.stringify(await ids()));
  await page.click(row(P2.i13) + ' button.tag.active[data-tag="c"]');
  ok((await ids()).length === 5 && (await page.inputValue('#filter-tag')) === '', 'the active chip again shows every book');
  await page.fill('#filter-text', 'signed');
  ok(JSON.stringify(await ids()) === JSON.stringify([P1.i13]), 'the text filter finds notes', JSON.stringify(await ids()));
  await page.fill('#filter-text', 'b00kindle');
  ok(JSON.stringify(await ids()) === JSON.stringify([K.asin]), 'the text filter finds ASINs', JSON.stringify(await ids()));
  await page.fill('#filter-text', '');
  await edit(P2.i13, { tags: '' });
  const p2 = await book(P2.i13);
  ok(Array.isArray(p2.tags) && p2.tags.length === 0 && patches[patches.length - 1].body.tags === null &&
    (await page.$$(row(P2.i13) + ' button.tag')).length === 0, 'emptying the tags clears them (null)', JSON.stringify(p2));

  // ---- a failing book shows its last good rank; the attached ASIN is fetched ----
  r = await http('POST', storeUrl + '/_config', idsStore(2));
  await page.click('#refresh-btn');
  await page.waitForFunction((sel) => { const x = document.querySelector(sel + ' .rank'); return x && x.textContent === '#777'; },
    row(N.i13), { timeout: 30000 });
  await page.waitForFunction(() => !document.getElementById('refresh-btn').disabled && /^Done/.test(document.getElementById('job-label').textContent));
  const failing = await page.$eval(row(P1.i13), (tr) => ({
    lastOk: (tr.querySelector('.last-ok') || {}).textContent || '',
    title: (tr.querySelector('.last-ok') || { title: '' }).title,
    status: tr.querySelector('.col-status .badge').textContent }));
  ok(/^last ok #1,500, (just now|\d+ min ago)$/.test(failing.lastOk) && failing.status === 'blocked' && /in Books/.test(failing.title),
    'a blocked book shows its last good rank and when it was seen', JSON.stringify(failing));
  ok((await cell(N.i13)).status === 'ok', 'the 979 book is fetched by the ASIN attached in the dashboard');
  ok(!/skipped/.test(await page.textContent('#job-counts')), 'nothing is skipped any more');

  // ---- a refresh from the command line (cron) shows up and, when it ends, its ranks too ----
  r = await http('POST', storeUrl + '/_config', idsStore(3));
  const cli = runToExit(BOOKRANK_BIN, ['refresh', '--quiet', '--db', db, ...fetchOpts]);
  let cliJob = null;
  for (let i = 0; i < 100 && !cliJob; i++) {
    const j = await http('GET', base + '/api/jobs');
    cliJob = ((j.json && j.json.jobs) || []).find((x) => x.started_by === 'cli' && x.state === 'running') || null;
    if (!cliJob) await new Promise((res) => setTimeout(res, 50));
  }
  ok(cliJob, 'the command-line refresh is running');
  await page.click('#jobs-reload');
  const cliRow = cliJob ? '#jobs-body tr.job-row[data-job-id="' + cliJob.id + '"]' : '#none';
  await page.waitForSelector(cliRow, { timeout: 5000 }).catch(() => {});
  const cliShown = await page.$eval(cliRow, (tr) => ({ by: tr.querySelector('.job-by').textContent,
    state: tr.querySelector('.job-state').textContent, cancel: !!tr.querySelector('.job-cancel') })).catch((e) => String(e));
  ok(cliShown.by === 'cli' && cliShown.state === 'running' && cliShown.cancel, 'the dashboard lists the running cli job with a cancel button', JSON.stringify(cliShown));
  const exit = await cli;
  ok(exit.code === 0, 'bookrank refresh exits 0', exit.code + '\n' + exit.out);
  await page.waitForFunction((sel) => { const x = document.querySelector(sel + ' .job-state'); return x && x.textContent === 'done'; },
    cliRow, { timeout: 15000 }).catch(() => {});
  await page.waitForFunction((sel) => { const x = document.querySelector(sel + ' .rank'); return x && x.textContent === '#3,333'; },
    row(K.asin), { timeout: 15000 }).catch(() => {});
  ok((await page.textContent(cliRow + ' .job-state').catch(() => '')) === 'done' && (await cell(K.asin)).rank === '#3,333',
    'the page sees the cli job end and shows the ranks it fetched without a reload', JSON.stringify(await cell(K.asin)));

  // ---- cancelling a running refresh (of more books than the pool is handed at once) ----
  r = await http('POST', storeUrl + '/_config', idsStore(4));
  const extra = Array.from({ length: 8 }, (_, i) => 'B0CANCEL0' + i);
  r = await http('POST', base + '/api/books', { ids: extra });
  ok(r.status === 201, 'eight more books are added by a script', r.status + ' ' + r.text);
  await page.click('#refresh-btn');
  await page.waitForSelector('#jobs-body tr.job-row.state-running .job-cancel', { timeout: 5000 });
  const runningId = Number(await page.$eval('#jobs-body tr.job-row.state-running', (tr) => tr.dataset.jobId));
  await page.click('#jobs-body tr.job-row.state-running .job-cancel');
  await page.waitForFunction(() => /^Cancelled/.test(document.getElementById('job-label').textContent), null, { timeout: 20000 });
  r = await http('GET', base + '/api/jobs/' + runningId);
  const cancelled = r.json && r.json.job;
  ok(cancelled && cancelled.state === 'cancelled' && cancelled.done < cancelled.total, 'the cancel button cancels the running job on the server', r.text);
  await page.waitForFunction((id) => {
    const tr = document.querySelector('#jobs-body tr.job-row[data-job-id="' + id + '"]');
    return tr && tr.querySelector('.job-state').textContent === 'cancelled' && !tr.querySelector('.job-cancel');
  }, runningId, { timeout: 10000 }).catch(() => {});
  ok(await page.$eval('#jobs-body tr.job-row[data-job-id="' + runningId + '"]', (tr) => tr.querySelector('.job-state').textContent === 'cancelled' &&
    !tr.querySelector('.job-cancel')).catch(() => false), 'the list shows it cancelled, without its button');
  const fit = await page.evaluate(() => { const t = document.getElementById('books'); return [t.scrollWidth, t.parentElement.clientWidth]; });
  ok(fit[0] <= fit[1] + 1, 'the table with tags, notes and two buttons per row fits a 1280 px window', JSON.stringify(fit));
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-ids.png'), fullPage: true });

  const violations = await page.evaluate(() => window.__csp);
  ok(violations.length === 0, 'no CSP violations with ids, editions and jobs', violations.join('\n'));
  ok(watch.consoleErrors.length === 0, 'no console errors with ids, editions and jobs', watch.consoleErrors.join('\n'));
  ok(watch.problems.length === 0, 'no request failed but the provoked ones (400 add, 409 ASIN)', watch.problems.join('\n'));
  ok(watch.missed().length === 0, 'the provoked 400 and 409 were answered', watch.missed().join('\n'));
  watch.stop();
  await page.close();
  await stopProcess(server.child, 20000);
}

const watchdog = setTimeout(() => {
  ok(false, 'the test finished within ' + WATCHDOG_MS / 1000 + ' s');
  cleanup();
  process.exit(1);
}, WATCHDOG_MS);

try {
  await main();
} catch (e) {
  ok(false, 'the browser test ran to the end', e && e.stack ? e.stack : e);
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  cleanup();
}
console.log('# dashboard checks: ' + passes + ' ok, ' + failures + ' not ok');
process.exit(failures ? 1 : 0);
