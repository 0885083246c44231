// measure.mjs - list-page load time and transfer size of the dashboard
// (bench/dashboard.sh), timed inside the page (performance.now):
//   load:    navigation start -> sign-in form ready (every file fetched, fresh profile)
//   sign-in: break-glass submit -> first page of 50 machines on screen
//            (config, whoami, the list query with its total, rendering)
//   warm:    in-app navigation to another sort -> 50 rows on screen
// Prints JSON with medians.
import { chromium } from 'playwright-core';

const [base, token, runs] = [process.argv[2], process.argv[3], Number(process.argv[4] || 5)];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
// resolves with performance.now() when the list shows 50 rows of the current hash
const untilRows = () => new Promise((res) => {
  const iv = setInterval(() => {
    if (document.body.dataset.view === location.hash && document.querySelectorAll('table.machines tbody tr[data-id]').length === 50) {
      clearInterval(iv);
      res(performance.now());
    }
  }, 2);
});
const r = { load: [], signin: [], warm: [], bytes: [], list: [], requests: [] };
for (let i = 0; i < runs; i++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${base}/ui/#/machines`);
  await page.waitForSelector('#bg-kind', { state: 'attached' });
  const load = await page.evaluate(() => new Promise((res) => {
    const iv = setInterval(() => { if (document.querySelector('#bg-submit')) { clearInterval(iv); res(performance.now()); } }, 2);
  }));
  if (!(await page.locator('#bg-kind').isVisible())) await page.click('.breakglass-entry summary');
  await page.selectOption('#bg-kind', 'admin');
  await page.fill('#bg-token', token);
  const signin = await page.evaluate(async (fn) => {
    const wait = new Function(`return (${fn})()`);
    const t0 = performance.now();
    const done = wait();
    document.querySelector('#bg-submit').click();
    return (await done) - t0;
  }, untilRows.toString());
  const entries = await page.evaluate(() => [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
    .map((e) => ({ name: e.name, size: e.transferSize || 0 })));
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForFunction(() => document.body.dataset.view === '#/');
  const warm = await page.evaluate(async (fn) => {
    const wait = new Function(`return (${fn})()`);
    const t0 = performance.now();
    const done = wait();
    location.hash = '#/machines?sort=-last_contact_at';
    return (await done) - t0;
  }, untilRows.toString());
  r.load.push(load);
  r.signin.push(signin);
  r.warm.push(warm);
  r.bytes.push(entries.reduce((a, e) => a + e.size, 0));
  r.list.push(entries.filter((e) => e.name.includes('/api/v1/machines')).reduce((a, e) => a + e.size, 0));
  r.requests.push(entries.length);
  await ctx.close();
}
const med = (a) => Math.round([...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]);
console.log(JSON.stringify({ runs, load_ms: med(r.load), signin_ms: med(r.signin), warm_ms: med(r.warm), transfer_bytes: med(r.bytes),
  list_json_bytes: med(r.list), requests: med(r.requests), all: r }));
await browser.close();
