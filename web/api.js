// api.js - the REST API, with the operator's credential held in memory
// only.  Reads remember the ETag of their last answer and send
// If-None-Match, so polling an unchanged page costs a bodiless 304.

let credential = null;            // { kind: 'oidc'|'admin'|'break-glass', token }
const cache = new Map();          // path -> { etag, data, total }
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
  // What the status means for the operator, with the service's detail.
  explain() {
    switch (this.status) {
      case 0: return `Cannot reach attestd: ${this.detail}`;
      case 401: return `Not signed in or the session ended (401): ${this.detail}`;
      case 403: return `Forbidden (403): ${this.detail}`;
      case 404: return `Not found (404): ${this.detail}`;
      case 409: return `Conflict (409): ${this.detail}`;
      case 422: return `Rejected (422): ${this.detail}`;
      case 503: return `Service unavailable (503): ${this.detail} — the database or the OIDC provider is down; break-glass access still works`;
      default: return `HTTP ${this.status}: ${this.detail}`;
    }
  }
}

export function setCredential(c) {
  credential = c;
  cache.clear();
}

export function getCredential() {
  return credential;
}

// cb(status, detail) on 401/403/503 from any call
export function onAuthProblem(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

function authHeaders() {
  if (!credential) return {};
  if (credential.kind === 'break-glass') return { 'X-Break-Glass': credential.token };
  return { Authorization: `Bearer ${credential.token}` };
}

async function send(path, { method = 'GET', body, etag } = {}) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (etag) headers['If-None-Match'] = etag;
  try {
    return await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, e.message || 'network error');
  }
}

async function failure(res) {
  let detail = res.statusText || 'error';
  try {
    const j = await res.json();
    if (j && typeof j.detail === 'string') detail = j.detail;
  } catch { /* not JSON */ }
  const err = new ApiError(res.status, detail);
  if ([401, 403, 503].includes(res.status)) for (const cb of listeners) cb(res.status, detail);
  return err;
}

// GET with ETag revalidation: { data, total, changed }.  remember=false
// for one-off reads (the chain walk) that should not stay in memory.
export async function get(path, { remember = true } = {}) {
  const prev = remember ? cache.get(path) : null;
  const res = await send(path, { etag: prev && prev.etag });
  if (res.status === 304 && prev) return { data: prev.data, total: prev.total, changed: false };
  if (!res.ok) throw await failure(res);
  const data = await res.json();
  const t = res.headers.get('X-Total-Count');
  const entry = { etag: res.headers.get('ETag'), data, total: t === null ? null : Number(t) };
  if (remember) {
    cache.delete(path);
    cache.set(path, entry);
    if (cache.size > 64) cache.delete(cache.keys().next().value);   // oldest first
  }
  return { data, total: entry.total, changed: true };
}

// POST/PUT/DELETE: { status, data }
export async function call(method, path, body) {
  const res = await send(path, { method, body });
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  return { status: res.status, data: text ? JSON.parse(text) : null };
}

export async function blob(path) {
  const res = await send(path);
  if (!res.ok) throw await failure(res);
  return res.blob();
}

export function forget(prefix) {
  for (const k of cache.keys()) if (k.startsWith(prefix)) cache.delete(k);
}

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// Run fn over items with a few requests in flight; onEach(item, ok, detail).
export async function each(items, fn, onEach, concurrency = 4) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const item = items[next++];
      try {
        const r = await fn(item);
        onEach(item, true, r);
      } catch (e) {
        onEach(item, false, e instanceof ApiError ? e.explain() : String(e));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
