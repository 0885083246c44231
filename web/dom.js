// dom.js - building pages without HTML strings.  Every value that came
// from the API (hostnames, hw_product, reasons, EK issuers ...) becomes a
// text node; nothing is ever parsed as markup (the CSP also enforces
// Trusted Types, so innerHTML could not be used by mistake).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  return append(clear(el), children);
}

const SVGNS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// "#/machines?status=attested" with the query values encoded
export function link(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return '#' + path + (s ? '?' + s : '');
}

export function num(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '–';
}

// API timestamps are naive UTC ("2026-05-14T17:05:00.123456")
export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso.replace(/(\.\d{3})\d*/, '$1').replace(/\+00:00$/, '') + 'Z');
  return Number.isNaN(t) ? null : t;
}

export function fmtTime(iso) {
  const t = parseTime(iso);
  if (t === null) return '–';
  return new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function age(iso, now = Date.now()) {
  const t = parseTime(iso);
  if (t === null) return 'never';
  let s = Math.round((now - t) / 1000);
  const future = s < 0;
  s = Math.abs(s);
  const txt = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86400 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 86400)} d`;
  return future ? `in ${txt}` : `${txt} ago`;
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso + (iso.endsWith('+00:00') ? '' : 'Z'), title: fmtTime(iso) }, age(iso)) : h('span', { class: 'muted' }, 'never');
}

export function badge(status) {
  return h('span', { class: `badge st-${status}` }, (status || 'unknown').replace('_', ' '));
}

export function ekVerdict(m) {
  if (m.ek_verified === true) return h('span', { class: 'badge ok' }, 'verified');
  if (m.ek_verified === false) return h('span', { class: 'badge bad', title: m.ek_chain_error || '' }, 'failed');
  return h('span', { class: 'badge neutral' }, 'unchecked');
}

export function short(s, n = 12) {
  return s && s.length > n ? s.slice(0, n) + '…' : s || '';
}

// A definition list from [label, value] pairs (values may be nodes).
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v === null || v === undefined || v === '' ? h('span', { class: 'muted' }, '–') : v)]));
}

export function section(title, ...body) {
  const id = 'sec-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), body);
}

export function message(kind, ...text) {
  return h('div', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

// A modal <dialog>; resolves with the form's values or null when cancelled.
export function dialog(title, body, { submit = 'Confirm', danger = false, validate } = {}) {
  return new Promise((resolve) => {
    const err = h('p', { class: 'error-text', role: 'alert' });
    const form = h('form', { method: 'dialog' },
      h('h2', null, title), body, err,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', value: 'cancel', on: { click: () => { dlg.close(); } } }, 'Cancel'),
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok' }, submit)));
    const dlg = h('dialog', { class: 'modal' }, form);
    let result = null;
    form.addEventListener('submit', (e) => {
      const values = Object.fromEntries(new FormData(form).entries());
      for (const cb of form.querySelectorAll('input[type=checkbox]')) values[cb.name] = cb.checked;
      const problem = validate ? validate(values) : null;
      if (problem) { e.preventDefault(); err.textContent = problem; return; }
      result = values;
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
