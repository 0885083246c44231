// app.js - the dashboard shell: configuration, login, the identity bar,
// hash routes, and live updates (each page re-reads its data every
// poll_seconds with If-None-Match; unchanged data costs a 304 and no
// redraw).  Pages are modules with mount(root, ctx) -> { refresh }.

import { h, replace, message } from './dom.js';
import * as api from './api.js';
import * as auth from './auth.js';
import loginPage from './page-login.js';
import overview from './page-overview.js';
import machines from './page-machines.js';
import approvals from './page-approvals.js';
import machine from './page-machine.js';
import audit from './page-audit.js';
import pcr from './page-pcr.js';

const routes = [
  { re: /^\/?$/, page: overview, nav: 'overview' },
  { re: /^\/machines$/, page: machines, nav: 'machines' },
  { re: /^\/machines\/([A-Za-z0-9._-]{1,64})$/, page: machine, nav: 'machines' },
  { re: /^\/approvals$/, page: approvals, nav: 'approvals' },
  { re: /^\/audit$/, page: audit, nav: 'audit' },
  { re: /^\/pcr$/, page: pcr, nav: 'pcr' },
];

const state = { cfg: null, whoami: null, current: null, timer: null, lastOk: null, notice: null };
const main = document.getElementById('main');
const bar = document.getElementById('identity');
const banner = document.getElementById('banner');
const live = document.getElementById('live');
const nav = document.getElementById('nav');

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(query || '')) };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function notify(kind, text) {
  state.notice = message(kind, text);
  replace(banner, bannerContent());
  if (kind !== 'error') setTimeout(() => { state.notice = null; replace(banner, bannerContent()); }, 6000);
}

function bannerContent() {
  const s = auth.current();
  const parts = [];
  if (s && (s.kind === 'break-glass' || s.kind === 'admin')) {
    parts.push(h('div', { class: 'breakglass', role: 'status' },
      h('strong', null, 'BREAK-GLASS SESSION'),
      ` — ${s.kind === 'admin' ? 'ITL_ADMIN_TOKEN, audited as SYSTEM' : 'X-Break-Glass token, audited as BREAK_GLASS and logged as a warning'}. Rotate the token after use.`));
  }
  if (state.whoami && !state.whoami.operator) {
    parts.push(message('error', `${state.whoami.identity} is signed in but does not hold the operator role`,
      state.whoami.required_role ? ` (${state.whoami.required_role})` : '', '; every page of the dashboard needs it.'));
  }
  if (state.notice) parts.push(state.notice);
  return parts;
}

function identityBar() {
  const s = auth.current();
  if (!s || !state.whoami) return [];
  const who = state.whoami;
  const roles = Array.isArray(who.roles) ? who.roles.join(', ') : '';
  return [
    h('span', { class: `who ${s.kind !== 'oidc' ? 'who-bg' : ''}`, title: `authenticated by ${who.method}` },
      h('span', { class: 'who-name' }, who.identity),
      h('span', { class: 'who-role' }, who.operator ? 'operator' : 'no operator role', roles ? ` · ${roles}` : '')),
    h('button', { type: 'button', class: 'secondary small', id: 'logout', on: { click: () => { auth.logout(); } } }, 'Log out'),
  ];
}

function markNav(which) {
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.nav === which) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function ctx(query, params) {
  return {
    cfg: state.cfg, query, params, whoami: state.whoami, navigate, notify,
    identity: state.whoami ? state.whoami.identity : null,
    // the label this operator's dual-control votes carry (alice (oidc:<iss>#<sub>))
    voter: state.whoami ? (state.whoami.voter || state.whoami.identity) : null,
    setQuery(q) { navigate(`#${parseHash().path}${api.qs(q)}`); },
  };
}

async function render() {
  clearTimeout(state.timer);
  const s = auth.current();
  if (!s || s.kind === 'expired') {
    nav.hidden = true;
    replace(bar);
    replace(banner, bannerContent());
    markNav(null);
    state.current = null;
    loginPage.mount(main, { cfg: state.cfg, reason: s && s.why, start: startOidc, breakGlass: startBreakGlass });
    return;
  }
  nav.hidden = false;
  const { path, query } = parseHash();
  const route = routes.find((r) => r.re.test(path));
  if (!route) {
    replace(main, message('error', `No page ${path}.`), h('p', null, h('a', { href: '#/' }, 'Go to the overview')));
    return;
  }
  markNav(route.nav);
  const params = path.match(route.re).slice(1);
  const page = route.page.mount(main, ctx(query, params));
  state.current = page;
  document.title = `${route.page.title || 'Dashboard'} — attestation`;
  delete document.body.dataset.view;
  await tick(true);
  if (state.current === page) document.body.dataset.view = location.hash || '#/';   // rendered (tests wait for it)
}

async function tick(first) {
  clearTimeout(state.timer);
  const page = state.current;
  if (!page) return;
  const busy = document.querySelector('dialog[open]') || document.hidden;
  if (first || !busy) {
    try {
      await page.refresh(first);
      state.lastOk = new Date();
      live.textContent = `Live · updated ${state.lastOk.toLocaleTimeString()}`;
      live.classList.remove('stale');
    } catch (e) {
      live.textContent = `Update failed: ${e instanceof api.ApiError ? e.explain() : e.message}`;
      live.classList.add('stale');
    }
  } else {
    live.textContent = document.hidden ? 'Live updates paused (tab hidden)' : 'Live updates paused (dialog open)';
  }
  if (state.current === page) state.timer = setTimeout(() => tick(false), state.cfg.poll_seconds * 1000);
}

async function startOidc() {
  await auth.startLogin(state.cfg, location.hash || '#/');
}

async function startBreakGlass(kind, token) {
  auth.breakGlass(kind, token);
}

// Identity as the service sees it (roles, operator or not).
async function loadWhoami() {
  try {
    const { data } = await api.get('/api/v1/auth/whoami', { remember: false });
    state.whoami = data;
    return null;
  } catch (e) {
    state.whoami = null;
    return e;
  }
}

auth.onSession(async (s) => {
  if (s && (s.kind === 'oidc' || s.kind === 'admin' || s.kind === 'break-glass')) {
    const previous = state.whoami && state.whoami.identity;
    const err = await loadWhoami();
    if (err) {
      auth.logout();
      replace(banner, message('error', `Sign-in not accepted by attestd: ${err instanceof api.ApiError ? err.explain() : err.message}`));
      return;
    }
    replace(bar, identityBar());
    replace(banner, bannerContent());
    if (previous && previous === state.whoami.identity && state.current) return;   // a token refresh
  } else {
    state.whoami = null;
    replace(bar);
  }
  render();
});

api.onAuthProblem((status, detail) => {
  if (status === 401 && auth.current() && auth.current().kind === 'oidc') {
    auth.refreshNow().then((ok) => { if (!ok) notify('error', `Session ended: ${detail}`); });
  }
});

window.addEventListener('hashchange', () => { if (auth.current()) render(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden && state.current) tick(false); });

async function boot() {
  try {
    const res = await fetch('/ui/config.json', { cache: 'no-store' });
    state.cfg = await res.json();
  } catch (e) {
    replace(main, message('error', `Cannot load the dashboard configuration: ${e.message}`));
    return;
  }
  if (location.pathname === '/ui/callback') {
    try {
      const back = await auth.finishLogin(state.cfg);
      if (location.hash !== back) history.replaceState(null, '', '/ui/' + back);
      return;   // onSession renders
    } catch (e) {
      render();
      replace(banner, message('error', `Login failed: ${e.message}`));
      return;
    }
  }
  if (state.cfg.oidc && auth.shouldAutoLogin()) {
    try { await startOidc(); return; } catch (e) { replace(banner, message('error', e.message)); }
  }
  render();
}

boot();
