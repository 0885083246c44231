// dashboard.mjs - drives the dashboard in Debian's headless Chromium
// (playwright-core, no browser download) against the attestd and glewlwyd
// that run.sh started.  Prints one line per check: PASS<TAB>what or
// FAIL<TAB>what<TAB>why.  Console errors and CSP violations on the
// dashboard's origin are failures wherever they happen.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const env = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const M = env.m;
let failures = 0;
const out = (kind, what, why) => process.stdout.write(`${kind}\t${what.replace(/\s+/g, ' ')}${why ? '\t' + String(why).replace(/\s+/g, ' ').slice(0, 900) : ''}\n`);
const pass = (what) => out('PASS', what);
const fail = (what, why) => { failures++; out('FAIL', what, why); };
const check = (what, ok, why) => (ok ? pass(what) : fail(what, why));
async function step(what, fn) {
  try {
    const r = await fn();
    if (r === false) fail(what, 'condition false'); else pass(what);
  } catch (e) {
    fail(what, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e);
  }
}
function sql(q) { return execFileSync('sqlite3', [env.db, q], { encoding: 'utf8' }).trim(); }
async function admin(method, path, body) {
  const res = await fetch(env.base + path, {
    method, headers: { Authorization: `Bearer ${env.admin}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, data: text ? JSON.parse(text) : null };
}
const machine = async (id) => (await admin('GET', `/api/v1/machines?machine_id=${id}`)).data[0];

const browser = await chromium.launch({
  executablePath: env.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

// Every page: CSP violations and console errors of our origin are recorded.
const problems = [];
async function newPage(label, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport, acceptDownloads: true });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    const where = (m.location() && m.location().url) || '';
    // Chromium logs every non-2xx fetch; 4xx answers are API verdicts the
    // page shows (and the checks provoke): they are not script errors
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
    if ((m.type() === 'error' || /Content.Security.Policy/i.test(m.text())) && (where.startsWith(env.base) || where === '')) {
      if (page.url().startsWith(env.base)) problems.push(`${label}: console ${m.type()}: ${m.text()} (${where})`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${label}: uncaught ${e.message}`));
  return page;
}
async function cspOf(page) { return page.evaluate(() => window.__csp || []); }

async function login(page, user) {
  await page.goto(env.base + '/');
  await page.click('#login-oidc');
  await page.waitForSelector('#username', { timeout: 15000 });
  await page.fill('#username', user);
  await page.fill('#password', `${user}-pass`);
  await page.click('#loginbut');
  // first login of a user: glewlwyd asks for consent to the scopes
  const grant = page.locator('button', { hasText: 'Grant access' });
  await page.waitForFunction(() => document.querySelector('.who-name') || [...document.querySelectorAll('button')].some((b) => /Grant access|Continue/.test(b.textContent)), null, { timeout: 15000 });
  if (!page.url().startsWith(env.base) && await grant.count()) {
    for (const cb of await page.$$('input[type=checkbox]')) if (await cb.isEnabled() && !(await cb.isChecked())) await cb.check();
    await grant.click();
    await page.waitForTimeout(300);
  }
  if (!page.url().startsWith(env.base)) await page.locator('button', { hasText: 'Continue' }).click();
  await page.waitForSelector('.who-name', { timeout: 15000 });
}
const text = (page, sel) => page.locator(sel).first().innerText();
async function shot(page, name) {
  if (!env.screenshots) return;
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${env.screenshots}/${name}.png`, fullPage: false });
}
async function goto(page, hash, sel) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction(() => document.body.dataset.view === (location.hash || '#/'), null, { timeout: 10000 });
  if (sel) await page.waitForSelector(sel, { timeout: 10000 });
}

// ---- headers -------------------------------------------------------------------
await step('/ redirects to /ui/', async () => {
  const r = await fetch(env.base + '/', { redirect: 'manual' });
  return r.status === 302 && r.headers.get('location') === '/ui/';
});
await step('the page carries a strict CSP: self only, no inline or eval, Trusted Types, frame-ancestors none', async () => {
  const r = await fetch(env.base + '/ui/');
  const csp = r.headers.get('content-security-policy') || '';
  const origin = new URL(env.iss).origin;
  const want = ["default-src 'none'", "script-src 'self';", "style-src 'self';", "frame-ancestors 'none'", "base-uri 'none'",
    "require-trusted-types-for 'script'", `connect-src 'self' ${origin};`];
  const missing = want.filter((w) => !csp.includes(w));
  if (missing.length || /unsafe-|data:|\*|https?:\/\/(?!127\.0\.0\.1)/.test(csp.replace(origin, ''))) throw new Error(`CSP ${csp}; missing ${missing}`);
  if (r.headers.get('x-frame-options') !== 'DENY' || r.headers.get('referrer-policy') !== 'no-referrer') throw new Error('XFO/Referrer-Policy');
  const html = await r.text();
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html) || /\son[a-z]+=/i.test(html) || /style=/i.test(html)) throw new Error('inline script, handler or style in index.html');
});
await step('static files revalidate with their build-time ETag (304)', async () => {
  const r1 = await fetch(env.base + '/ui/app.js');
  const tag = r1.headers.get('etag');
  const r2 = await fetch(env.base + '/ui/app.js', { headers: { 'If-None-Match': tag } });
  return r1.status === 200 && /^"[0-9a-f]{32}"$/.test(tag) && r2.status === 304 && r1.headers.get('content-type').startsWith('text/javascript');
});
await step('unknown /ui/ files are 404, config.json names the public client and no secret', async () => {
  const r = await fetch(env.base + '/ui/nope.js');
  const c = await (await fetch(env.base + '/ui/config.json')).json();
  return r.status === 404 && c.oidc.client_id === 'attestation-dashboard' && c.oidc.issuer === env.iss && !JSON.stringify(c).includes(env.breakGlass) && !JSON.stringify(c).includes(env.admin);
});

// ---- login with PKCE -----------------------------------------------------------
const op1 = await newPage('operator1');
const authRequests = [], tokenRequests = [];
op1.on('request', (r) => {
  if (r.url().startsWith(env.iss + '/auth')) authRequests.push(r.url());
  if (r.url().startsWith(env.iss + '/token')) tokenRequests.push(r.postData() || '');
});
await step('the sign-in page offers the provider and break-glass', async () => {
  await op1.goto(env.base + '/');
  await op1.waitForSelector('#login-oidc');
  await shot(op1, 'login-1280');
  return (await text(op1, '#login-oidc')).includes(new URL(env.iss).host) && (await op1.locator('#bg-form').count()) === 1;
});
await step('operator1 signs in through glewlwyd (authorization code + PKCE)', async () => {
  await login(op1, 'operator1');
  return (await text(op1, '.who-name')) === 'operator1';
});
await step('the authorization request used S256 PKCE, state and nonce', async () => {
  const u = new URL(authRequests[0]);
  const p = u.searchParams;
  return p.get('code_challenge_method') === 'S256' && /^[A-Za-z0-9_-]{43}$/.test(p.get('code_challenge')) && p.get('state') && p.get('nonce') && p.get('client_id') === 'attestation-dashboard' && p.get('redirect_uri') === `${env.base}/ui/callback`;
});
await step('the token request sent the code_verifier (public client, no secret)', async () => {
  const t = new URLSearchParams(tokenRequests[0]);
  return t.get('grant_type') === 'authorization_code' && t.get('code_verifier').length >= 43 && !t.has('client_secret');
});
await step('no token in localStorage or sessionStorage, callback parameters gone from the URL', async () => {
  const s = await op1.evaluate(() => JSON.stringify({ l: { ...localStorage }, s: { ...sessionStorage } }));
  return !/eyJ/.test(s) && !op1.url().includes('code=') && !s.includes('verifier');
});
await step('the identity and role are shown', async () => (await text(op1, '.who-role')).includes('attestation-operator'));

// ---- overview numbers match the API ---------------------------------------------
await step('overview numbers equal /api/v1/fleet/summary', async () => {
  await op1.waitForSelector('#count-total');
  const s = (await admin('GET', '/api/v1/fleet/summary')).data;
  const got = async (id) => Number(await op1.getAttribute(`#${id}`, 'data-count'));
  const pairs = [['count-total', s.total], ...Object.entries(s.by_status).map(([k, v]) => [`count-${k}`, v]),
    ...Object.entries(s.by_role).map(([k, v]) => [`count-role-${k}`, v]), ['att-silent', s.contact.silent], ['att-ekfail', s.ek.failed]];
  for (const [id, want] of pairs) if ((await got(id)) !== want) throw new Error(`${id}: page ${await got(id)}, API ${want}`);
  if (s.total !== 13) throw new Error(`expected 13 seeded machines, API says ${s.total}`);
});
await shot(op1, 'overview-1280');
await step('every status tile links to the list it counts (X-Total-Count)', async () => {
  for (const st of ['pending_approval', 'registered', 'attested']) {
    const want = Number(await op1.getAttribute(`#count-${st}`, 'data-count'));
    await op1.click(`#count-${st}`);
    await op1.waitForFunction((s) => location.hash.includes(`status=${s}`) && document.querySelector('#range'), st);
    await op1.waitForSelector('#range');
    const total = Number(await op1.getAttribute('#range', 'data-total'));
    const rows = await op1.$$eval('table.machines tbody tr[data-id]', (t) => t.length);
    const api = (await admin('GET', `/api/v1/machines?status=${st}&per_page=1`)).headers.get('x-total-count');
    if (total !== want || Number(api) !== want || rows !== Math.min(want, 50)) throw new Error(`${st}: tile ${want}, list ${total}, rows ${rows}, API ${api}`);
    await goto(op1, '#/', '#count-total');
  }
});
await step('the manufacturer table links to the filtered list', async () => {
  await op1.click('#ek-table a[href*="manufacturer=STM"][href*="ek_verified=false"]');
  await op1.waitForSelector('table.machines tbody tr[data-id]');
  const ids = await op1.$$eval('table.machines tbody tr[data-id]', (t) => t.map((r) => r.dataset.id));
  return ids.length === 1 && ids[0] === M.bulk[1];
});

// ---- the list: filters, sort, search -----------------------------------------------
await step('list: status filter from the select, reflected in the URL', async () => {
  await goto(op1, '#/machines', '#f-status');
  await op1.selectOption('#f-status', 'registered');
  await op1.waitForFunction(() => location.hash.includes('status=registered') && document.querySelector('#f-status').value === 'registered');
  await op1.waitForFunction(() => {
    const b = [...document.querySelectorAll('table.machines tbody tr[data-id] .badge[class*="st-"]')].map((x) => x.textContent);
    return b.length > 0 && b.every((x) => x === 'registered');
  });
  const want = (await admin('GET', '/api/v1/machines?status=registered&per_page=1')).headers.get('x-total-count');
  return Number(await op1.getAttribute('#range', 'data-total')) === Number(want);
});
await step('list: hostname prefix search and sort by hostname, descending', async () => {
  await goto(op1, '#/machines?q=BULK&sort=-hostname', 'table.machines tbody tr[data-id]');
  await op1.waitForFunction(() => document.querySelectorAll('table.machines tbody tr[data-id]').length === 4);
  const names = await op1.$$eval('table.machines a.hostname', (a) => a.map((x) => x.textContent));
  return JSON.stringify(names) === JSON.stringify(['bulk-04', 'bulk-03', 'bulk-02', 'bulk-01']);
});
await shot(op1, 'machines-1280');

// ---- XSS through every machine-provided string -------------------------------------
async function inert(page, where) {
  const r = await page.evaluate(() => ({ xss: window.__xss, imgs: document.querySelectorAll('img[src="x"], svg[onload], script:not([src])').length, bold: document.querySelectorAll('main b').length }));
  const csp = await cspOf(page);
  if (r.xss !== undefined || r.imgs || r.bold || csp.length) throw new Error(`${where}: __xss=${r.xss} injected=${r.imgs} bold=${r.bold} csp=${csp}`);
}
await step('XSS: hw_product, hw_serial in the list render as text', async () => {
  await goto(op1, `#/machines?q=xss`, 'table.machines tbody tr[data-id]');
  const t = await text(op1, 'table.machines');
  await inert(op1, 'list');
  return t.includes(env.xss[0]);
});
await step('XSS: EK issuer, TPM manufacturer and model, serial on the machine page render as text', async () => {
  await goto(op1, `#/machines/${M.xss}`, '#d-issuer');
  const body = await text(op1, 'main');
  await inert(op1, 'machine page');
  const m = await machine(M.xss);   // the issuer as stored (RFC 2253: "\\<img ...\\>")
  // (the TPM manufacturer attribute is kept to 15 characters: "<svg onload=win")
  if (!m.ek_issuer.includes('<img src=x') || !m.ek_manufacturer.startsWith('<svg') || m.ek_model !== env.xss[4]) throw new Error(`seed: ${JSON.stringify(m)}`);
  for (const s of [m.hw_product, m.hw_serial, m.ek_issuer, m.ek_manufacturer, m.ek_model]) if (!body.includes(s)) throw new Error(`missing literal ${s}`);
});
await step('XSS: reasons in the audit trail render as text', async () => {
  await goto(op1, `#/audit?machine_id=${M.xss}`, '#audit-table tbody tr[data-id]');
  const t = await text(op1, '#audit-table');
  await inert(op1, 'audit');
  return t.includes(env.xss[0]) && t.includes(env.xss[1]);
});
await step('XSS: the list filtered by a markup manufacturer renders it as text', async () => {
  await goto(op1, `#/?`, '#ek-table');
  const t = await text(op1, '#ek-table');
  await inert(op1, 'overview');
  const man = (await machine(M.xss)).ek_manufacturer;
  await op1.click(`#ek-table a[href*="manufacturer=${encodeURIComponent(man)}"]`);
  await op1.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"]`), M.xss);
  if ((await op1.inputValue('#f-manufacturer')) !== man) throw new Error('filter field');
  await inert(op1, 'list by manufacturer');
  return t.includes(man);
});

// ---- approvals: single and dual control --------------------------------------------
await step('approve (single): hostname with markup is refused with the service\'s 422', async () => {
  await goto(op1, '#/approvals', `#approval-${M.single}`);
  const card = op1.locator(`#approval-${M.single}`);
  await card.locator('select[name=role]').selectOption('worker-infra');
  await card.locator('input[name=hostname]').fill('<b>x</b>');
  await card.locator('button[type=submit]').click();
  await card.locator('.form-error .msg').waitFor();
  const err = await card.locator('.form-error').innerText();
  await inert(op1, 'approvals');
  return err.includes('422') && err.includes('hostname') && (await machine(M.single)).status === 'pending_approval';
});
await shot(op1, 'approvals-1280');
await step('approve (single): role, hostname, IP and reason register the machine', async () => {
  const card = op1.locator(`#approval-${M.single}`);
  await card.locator('input[name=hostname]').fill('k8s-worker-03');
  await card.locator('input[name=assigned_ip]').fill('10.0.1.13/24');
  await card.locator('input[name=reason]').fill('rack 3');
  await card.locator('button[type=submit]').click();
  await op1.waitForSelector(`#approval-${M.single}`, { state: 'detached' });
  const m = await machine(M.single);
  return m.status === 'registered' && m.role === 'worker-infra' && m.hostname === 'k8s-worker-03' && m.assigned_ip === '10.0.1.13/24';
});
await step('dual control: operator1\'s vote is 1 of 2 and their own second vote is disabled with the reason', async () => {
  const card = op1.locator(`#approval-${M.dual}`);
  if ((await card.locator('select[name=role]').inputValue()) !== 'controlplane') throw new Error('role not prefilled');
  await card.locator('input[name=hostname]').fill('cp-01');
  await card.locator('input[name=assigned_ip]').fill('10.0.9.1/24');
  await card.locator('button[type=submit]').click();
  await op1.waitForFunction((id) => document.querySelector(`#approval-${id} .own-vote`), M.dual, { timeout: 10000 });
  const t = await card.innerText();
  const disabled = await card.locator('button[type=submit]').isDisabled();
  return disabled && t.includes('Votes: 1 of 2') && t.includes('operator1') && /already voted/.test(t) && (await machine(M.dual)).status === 'pending_approval';
});
await shot(op1, 'approvals-vote-1280');
const op2 = await newPage('operator2');
await step('dual control: operator2 sees operator1\'s vote and completes the quorum', async () => {
  await login(op2, 'operator2');
  await goto(op2, '#/approvals', `#approval-${M.dual}`);
  const card = op2.locator(`#approval-${M.dual}`);
  const t = await card.innerText();
  if (!t.includes('operator1') || (await card.locator('button[type=submit]').isDisabled())) throw new Error(t);
  if ((await card.locator('input[name=hostname]').inputValue()) !== 'cp-01') throw new Error('hostname not taken from the pending vote');
  await card.locator('input[name=reason]').fill('second pair of eyes');
  await card.locator('button[type=submit]').click();
  await op2.waitForSelector(`#approval-${M.dual}`, { state: 'detached', timeout: 10000 }).catch(async () => {
    throw new Error(`card still there: ${await card.locator('.form-error').innerText()} | banner: ${await text(op2, '#banner')}`);
  });
  const m = await machine(M.dual);
  // votes carry "name (oidc:<iss>#<sub>)": the subject keeps two operators apart
  const votes = (await admin('GET', `/api/v1/machines/${M.dual}/approvals`)).data.map((v) => v.operator_cn);
  const names = votes.map((v) => v.replace(/ \(oidc:[^)]*\)$/, ''));
  return m.status === 'registered' && m.hostname === 'cp-01' && JSON.stringify(names) === '["operator2","operator1"]' &&
    votes.every((v) => / \(oidc:.+#.+\)$/.test(v));
});

// ---- machine detail: lock / unlock / revoke with wipe / downloads ------------------
await step('machine page shows the TPM evidence and last contact', async () => {
  await goto(op1, `#/machines/${M.live}`, '#d-ek');
  const m = await machine(M.live);
  const t = await text(op1, 'main');
  return t.includes(m.ek_fingerprint) && t.includes('no AK bound') && !/last contact\s*never/.test(t) && t.includes('No PCR policy');
});
await shot(op1, 'machine-1280');
await step('lock with a reason, then unlock', async () => {
  await goto(op1, `#/machines/${M.lock}`, '#act-lock');
  await op1.click('#act-lock');
  await op1.fill('#act-reason', 'disk replacement');
  await op1.click('dialog button[type=submit]');
  await op1.waitForSelector('#act-unlock');
  if ((await machine(M.lock)).status !== 'locked') throw new Error('not locked');
  await op1.click('#act-unlock');
  await op1.click('dialog button[type=submit]');
  await op1.waitForSelector('#act-lock');
  const audit = (await admin('GET', `/api/v1/audit?machine_id=${M.lock}&per_page=2`)).data;
  return (await machine(M.lock)).status === 'registered' && audit[1].action === 'lock' && audit[1].detail.includes('disk replacement') && audit[1].operator_cn === 'operator1' && audit[0].action === 'unlock';
});
await step('revoke with wipe: a wrong confirmation is refused, the right one revokes with wipe pending', async () => {
  await goto(op1, `#/machines/${M.wipe}`, '#act-revoke');
  await op1.click('#act-revoke');
  await op1.fill('#act-reason', 'security incident');
  await op1.check('#act-wipe');
  await op1.fill('#act-confirm', 'wipe-02');
  await op1.click('dialog button[type=submit]');
  await op1.waitForFunction(() => /Type wipe-01 exactly/.test(document.querySelector('dialog .error-text').textContent));
  if ((await machine(M.wipe)).status !== 'registered') throw new Error('revoked despite a wrong confirmation');
  await shot(op1, 'revoke-dialog-1280');
  await op1.fill('#act-confirm', 'wipe-01');
  await op1.click('dialog button[type=submit]');
  await op1.waitForFunction(() => /wipe pending/.test(document.querySelector('main h1').textContent));
  const m = await machine(M.wipe);
  return m.status === 'revoked' && m.wipe_pending === true;
});
await step('the signed PDF audit report downloads', async () => {
  await goto(op1, `#/machines/${M.lock}`, '#act-report');
  const [dl] = await Promise.all([op1.waitForEvent('download'), op1.click('#act-report')]);
  const p = await dl.path();
  return fs.readFileSync(p).subarray(0, 5).toString() === '%PDF-' && dl.suggestedFilename() === `machine-audit-${M.lock}.pdf`;
});
await step('the offline bundle downloads after a warning', async () => {
  await op1.click('#act-bundle');
  const [dl] = await Promise.all([op1.waitForEvent('download'), op1.click('dialog button[type=submit]')]);
  const b = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
  return b.machine_id === M.lock && b.enrollment_cert_pem.includes('BEGIN CERTIFICATE') && b.enrollment_key_pem.includes('PRIVATE KEY');
});

// ---- bulk ----------------------------------------------------------------------------
await step('bulk lock of three machines: one audited request each', async () => {
  await goto(op1, '#/machines?q=bulk&sort=hostname', 'table.machines tbody tr[data-id]');
  await op1.waitForFunction(() => document.querySelectorAll('table.machines tbody tr[data-id]').length === 4);
  for (const id of M.bulk.slice(0, 3)) await op1.check(`tr[data-id="${id}"] input.sel`);
  if ((await text(op1, '#sel-count')) !== '3 selected') throw new Error(await text(op1, '#sel-count'));
  await shot(op1, 'machines-bulk-1280');
  await op1.click('#bulk-open');
  await op1.selectOption('#bulk-action', 'lock');
  await op1.fill('#bulk-reason', 'rack 7 power work');
  await op1.click('dialog button[type=submit]');
  await op1.waitForSelector('#bulk-progress[data-done="true"]');
  const prog = await text(op1, '#bulk-progress');
  const states = await Promise.all(M.bulk.map(machine));
  const locks = (await admin('GET', '/api/v1/audit?action=lock&operator_cn=operator1&per_page=50')).data.filter((e) => e.detail && e.detail.includes('rack 7 power work'));
  return prog.includes('3 of 3 done: 3 succeeded, 0 failed') && states.slice(0, 3).every((m) => m.status === 'locked') && states[3].status === 'registered' && locks.length === 3;
});
await step('bulk revoke with wipe needs the typed confirmation; one failure (already revoked) is reported', async () => {
  await op1.check(`tr[data-id="${M.bulk[3]}"] input.sel`);
  await admin('POST', `/api/v1/machines/${M.bulk[3]}/revoke`, { wipe: false, reason: 'raced' });
  await op1.click('#bulk-open');
  await op1.selectOption('#bulk-action', 'revoke');
  await op1.check('#bulk-wipe');
  await op1.fill('#bulk-reason', 'decommission');
  await op1.click('dialog button[type=submit]');
  await op1.waitForFunction(() => /Type WIPE/.test(document.querySelector('dialog .error-text').textContent));
  await op1.fill('#bulk-confirm', 'WIPE');
  await op1.click('dialog button[type=submit]');
  // the lock run's finished progress stays on the page until this run replaces it
  await op1.waitForFunction(() => /^4 of 4 done/.test(document.querySelector('#bulk-progress[data-done="true"]')?.textContent || ''));
  const prog = await text(op1, '#bulk-progress');
  const log = await text(op1, '.bulk-log');
  const states = await Promise.all(M.bulk.map(machine));
  return prog.includes('4 of 4 done: 3 succeeded, 1 failed') && log.includes('409') && states.slice(0, 3).every((m) => m.status === 'revoked' && m.wipe_pending);
});

// ---- live updates ----------------------------------------------------------------------
await step('live update: a change made elsewhere appears without reload, unchanged polls are 304s', async () => {
  let n304 = 0;
  const count = (r) => { if (r.url().includes(`/api/v1/machines?machine_id=${M.live}`) && r.status() === 304) n304++; };
  op1.on('response', count);
  await goto(op1, `#/machines/${M.live}`, '#act-lock');
  await op1.waitForTimeout(4500);
  await admin('POST', `/api/v1/machines/${M.live}/lock`, { reason: 'changed elsewhere' });
  await op1.waitForSelector('#act-unlock', { timeout: 8000 });
  op1.off('response', count);
  return n304 >= 1;
});

// ---- audit chain verification ------------------------------------------------------------
await step('audit: the chain verifies in the browser (green) and the server agrees', async () => {
  await goto(op1, '#/audit', '#verify');
  await op1.click('#verify');
  await op1.waitForSelector('#verify-result .msg', { timeout: 30000 });
  const t = await text(op1, '#verify-result');
  const n = Number(sql('SELECT COUNT(*) FROM audit_log'));
  return (await op1.locator('.verify-ok').count()) === 1 && t.includes(`All ${n.toLocaleString('en-US')} entries`) && t.includes("Server's verdict: valid");
});
await shot(op1, 'audit-1280');
const tampered = Number(sql("SELECT id FROM audit_log WHERE action = 'lock' ORDER BY id LIMIT 1"));
await step(`audit: after entry #${tampered} is altered in the database, verification turns red at that entry`, async () => {
  sql(`UPDATE audit_log SET detail = 'nothing happened here' WHERE id = ${tampered}`);
  await op1.click('#verify');
  await op1.waitForSelector('.verify-bad', { timeout: 30000 });
  const t = await text(op1, '#verify-result');
  return t.includes(`Chain broken at entry #${tampered}`) && t.includes(`entry_hash mismatch at entry id=${tampered}`) && t.includes('nothing happened here') && t.includes('BROKEN');
});
await shot(op1, 'audit-broken-1280');

// ---- PCR policies ---------------------------------------------------------------------------
await step('PCR policy: a malformed line is refused in the page, a valid one is saved (audited)', async () => {
  await goto(op1, '#/pcr', '#pcr-text-worker-infra');
  await op1.fill('#pcr-text-worker-infra', 'sha256:7 is nice');
  await op1.click('form[data-role=worker-infra] button[type=submit]');
  await op1.waitForSelector('form[data-role=worker-infra] .form-error .msg');
  const d = 'a'.repeat(64);
  await op1.fill('#pcr-text-worker-infra', `sha256:7 = ${d}\nsha256:4 = ${'b'.repeat(64)}, ${'c'.repeat(64)}`);
  await op1.fill('#pcr-reason-worker-infra', 'baseline');
  await op1.click('form[data-role=worker-infra] button[type=submit]');
  await op1.waitForFunction(() => /2 PCR\(s\)/.test(document.querySelector('#pcr-policies').textContent));
  const p = (await admin('GET', '/api/v1/pcr-policies/worker-infra')).data;
  return p.pcrs['sha256:7'][0] === d && p.pcrs['sha256:4'].length === 2 && p.updated_by === 'operator1';
});
await step('PCR policy: the service\'s 422 is shown for a wrong digest length', async () => {
  await op1.fill('#pcr-text-worker-infra', 'sha256:7 = abcd');
  await op1.click('form[data-role=worker-infra] button[type=submit]');
  await op1.waitForSelector('form[data-role=worker-infra] .form-error .msg');
  return (await text(op1, 'form[data-role=worker-infra] .form-error')).includes('422');
});
await shot(op1, 'pcr-1280');
await step('the machine page shows its role\'s PCR policy', async () => {
  await goto(op1, `#/machines/${M.single}`, '#pcr-verdict');
  return (await text(op1, '#pcr-verdict')).includes('requires 2 PCR value(s)');
});

// ---- keyboard, phone width -------------------------------------------------------------------
await step('keyboard: Tab reaches the skip link and the navigation, Enter follows a link', async () => {
  await goto(op1, '#/', '#count-total');
  await op1.focus('.skip');
  const first = await op1.evaluate(() => document.activeElement.textContent);
  let reached = false;
  for (let i = 0; i < 8 && !reached; i++) {
    await op1.keyboard.press('Tab');
    reached = await op1.evaluate(() => document.activeElement.dataset.nav === 'audit');
  }
  if (!reached) throw new Error('nav not reachable');
  await op1.keyboard.press('Enter');
  await op1.waitForFunction(() => location.hash === '#/audit');
  return first.includes('Skip to content');
});
const phone = await newPage('phone', { width: 390, height: 844 });
await step('phone width (390x844): every page fits without horizontal scrolling', async () => {
  await phone.goto(env.base + '/');
  await phone.waitForSelector('#login-oidc');
  await shot(phone, 'login-390');
  await login(phone, 'operator1');
  for (const [hash, sel, name] of [['#/', '#count-total', 'overview'], ['#/machines', 'table.machines', 'machines'], ['#/approvals', '#approvals', 'approvals'],
    [`#/machines/${M.live}`, '#d-ek', 'machine'], ['#/audit', '#audit-table', 'audit'], ['#/pcr', '#pcr-policies', 'pcr']]) {
    await goto(phone, hash, sel);
    await phone.waitForTimeout(200);
    const w = await phone.evaluate(() => document.documentElement.scrollWidth);
    if (w > 392) throw new Error(`${hash}: ${w}px wide`);
    await shot(phone, `${name}-390`);
  }
});

// ---- viewer, break-glass -----------------------------------------------------------------------
const viewer = await newPage('viewer1');
await step('viewer1 (no operator role) is told so, and pages show the 403', async () => {
  await login(viewer, 'viewer1');
  await viewer.waitForSelector('#main .msg.error');
  const banner = await text(viewer, '#banner');
  const main = await text(viewer, '#main');
  return banner.includes('viewer1 is signed in but does not hold the operator role') && main.includes('Forbidden (403)');
});
const bg = await newPage('break-glass');
await step('a wrong break-glass token is refused with the 401', async () => {
  await bg.goto(env.base + '/');
  await bg.click('.breakglass-entry summary');
  await bg.fill('#bg-token', 'not-the-token');
  await bg.click('#bg-submit');
  await bg.waitForSelector('#banner .msg.error');
  return (await text(bg, '#banner')).includes('401');
});
await step('break-glass: visibly marked, and actions are audited as BREAK_GLASS', async () => {
  if (!(await bg.locator('#bg-token').isVisible())) await bg.click('.breakglass-entry summary');
  await bg.fill('#bg-token', env.breakGlass);
  await bg.click('#bg-submit');
  await bg.waitForSelector('.breakglass');
  await shot(bg, 'breakglass-1280');
  await goto(bg, `#/machines/${M.single}`, '#act-lock');
  await bg.click('#act-lock');
  await bg.fill('#act-reason', 'provider down');
  await bg.click('dialog button[type=submit]');
  await bg.waitForSelector('#act-unlock');
  const a = (await admin('GET', `/api/v1/audit?machine_id=${M.single}&per_page=1`)).data[0];
  return (await text(bg, '.breakglass')).includes('BREAK-GLASS SESSION') && a.action === 'lock' && a.operator_cn === 'BREAK_GLASS';
});
await step('log out forgets the credential', async () => {
  await bg.click('#logout');
  await bg.waitForSelector('#login-oidc');
  const r = await bg.evaluate(async () => (await fetch('/api/v1/machines', { cache: 'no-store' })).status);
  return r === 401;
});

// ---- the whole run ------------------------------------------------------------------------------
for (const [name, p] of [['operator1', op1], ['operator2', op2], ['phone', phone], ['viewer1', viewer], ['break-glass', bg]]) {
  const v = p.url().startsWith(env.base) ? await cspOf(p) : [];
  for (const x of v) problems.push(`${name}: CSP violation ${x}`);
}
check('no CSP violation and no console error on the dashboard in the whole run', problems.length === 0, problems.join(' || '));
await browser.close();
process.exit(0);
