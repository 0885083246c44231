// auth.js - operator login in the browser.
//
// OIDC authorization code flow with PKCE (S256) as a public client
// (RFC 7636, OAuth 2.0 for Browser-Based Apps): the verifier, state and
// nonce live in sessionStorage only between the redirect and the
// callback; tokens live in memory only (a reload logs in again through
// the provider's own session).  The access token is refreshed shortly
// before it expires.  Break-glass tokens are typed in, kept in memory
// and sent as X-Break-Glass (or as the ITL_ADMIN_TOKEN bearer).

import { setCredential } from './api.js';

const PKCE_KEY = 'attestation.pkce';
const AUTO_KEY = 'attestation.relogin';   // "1": log in again after a reload (no secret)

let session = null;   // { kind, identity claims, token, refresh, exp, endpoints }
let refreshTimer = null;
const sessionListeners = new Set();

export function onSession(cb) { sessionListeners.add(cb); }
export function current() { return session; }

function emit() { for (const cb of sessionListeners) cb(session); }

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

function jwtClaims(jwt) {
  try {
    const p = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(p + '='.repeat((4 - p.length % 4) % 4)))));
  } catch {
    return {};
  }
}

export function redirectUri() {
  return `${location.origin}/ui/callback`;
}

async function discovery(cfg) {
  const url = cfg.oidc.issuer.replace(/\/$/, '') + '/.well-known/openid-configuration';
  let res;
  try {
    res = await fetch(url, { cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new Error(`the OIDC provider ${cfg.oidc.issuer} cannot be reached from this browser (${e.message})`);
  }
  if (!res.ok) throw new Error(`OIDC discovery failed: HTTP ${res.status}`);
  const d = await res.json();
  if (d.issuer !== cfg.oidc.issuer) throw new Error(`OIDC discovery names issuer ${d.issuer}, expected ${cfg.oidc.issuer}`);
  return d;
}

export async function startLogin(cfg, returnTo) {
  const d = await discovery(cfg);
  const verifier = random(48);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = random(24), nonce = random(24);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, nonce, returnTo: returnTo || '#/' }));
  const q = new URLSearchParams({
    response_type: 'code', client_id: cfg.oidc.client_id, redirect_uri: redirectUri(), scope: cfg.oidc.scope,
    state, nonce, code_challenge: b64url(digest), code_challenge_method: 'S256',
  });
  if (cfg.oidc.resource) q.set('resource', cfg.oidc.resource);
  location.assign(`${d.authorization_endpoint}?${q}`);
}

async function tokenRequest(d, params) {
  const res = await fetch(d.token_endpoint, {
    method: 'POST', cache: 'no-store', credentials: 'omit',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  let j = {};
  try { j = await res.json(); } catch { /* empty */ }
  if (!res.ok || !j.access_token) throw new Error(`token endpoint: ${j.error_description || j.error || 'HTTP ' + res.status}`);
  return j;
}

function adopt(d, cfg, tok, previous) {
  const claims = jwtClaims(tok.access_token);
  session = {
    kind: 'oidc', token: tok.access_token, refresh: tok.refresh_token || (previous && previous.refresh),
    exp: claims.exp ? claims.exp * 1000 : Date.now() + (tok.expires_in || 300) * 1000,
    user: claims.preferred_username || claims.sub || '?', discovery: d, cfg,
  };
  setCredential({ kind: 'oidc', token: session.token });
  sessionStorage.setItem(AUTO_KEY, '1');
  scheduleRefresh();
  emit();
}

// The OIDC callback (/ui/callback?code=&state=): returns the hash to show.
export async function finishLogin(cfg) {
  const params = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, '', '/ui/');
  if (params.get('error')) throw new Error(`the provider refused the login: ${params.get('error_description') || params.get('error')}`);
  if (!saved || !params.get('state') || params.get('state') !== saved.state) throw new Error('login callback with an unknown state — start the login again');
  const d = await discovery(cfg);
  const tok = await tokenRequest(d, {
    grant_type: 'authorization_code', code: params.get('code') || '', redirect_uri: redirectUri(),
    client_id: cfg.oidc.client_id, code_verifier: saved.verifier,
  });
  if (tok.id_token && jwtClaims(tok.id_token).nonce !== saved.nonce) throw new Error('ID token nonce does not match this login');
  adopt(d, cfg, tok, null);
  return saved.returnTo;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session || session.kind !== 'oidc') return;
  const wait = Math.max(5000, session.exp - Date.now() - 60000);
  refreshTimer = setTimeout(refreshNow, wait);
}

export async function refreshNow() {
  const s = session;
  if (!s || s.kind !== 'oidc') return false;
  if (!s.refresh) { expire('the access token expired and the provider issued no refresh token'); return false; }
  try {
    const tok = await tokenRequest(s.discovery, { grant_type: 'refresh_token', refresh_token: s.refresh, client_id: s.cfg.oidc.client_id });
    adopt(s.discovery, s.cfg, tok, s);
    return true;
  } catch (e) {
    expire(`refreshing the session failed (${e.message})`);
    return false;
  }
}

function expire(why) {
  session = { kind: 'expired', why };
  setCredential(null);
  emit();
}

export function shouldAutoLogin() {
  return sessionStorage.getItem(AUTO_KEY) === '1';
}

// Break-glass: kind 'break-glass' (X-Break-Glass) or 'admin' (ITL_ADMIN_TOKEN).
export function breakGlass(kind, token) {
  clearTimeout(refreshTimer);
  session = { kind, token, user: kind === 'admin' ? 'SYSTEM' : 'BREAK_GLASS' };
  setCredential({ kind, token });
  sessionStorage.removeItem(AUTO_KEY);
  emit();
}

// Forget everything held in this tab; the provider's own session (SSO
// cookie) is not ended here (docs/dashboard.md).
export function logout() {
  clearTimeout(refreshTimer);
  session = null;
  setCredential(null);
  sessionStorage.removeItem(AUTO_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  emit();
}
