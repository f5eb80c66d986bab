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
