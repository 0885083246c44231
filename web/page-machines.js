// page-machines.js - the machine list: filtered, sorted and paged by the
// server (GET /api/v1/machines with X-Total-Count), selection across
// refreshes, and bulk actions that send one audited request per machine.

import { h, replace, link, num, badge, ekVerdict, timeEl, short, message, dialog } from './dom.js';
import { get, call, each, qs, ApiError, forget } from './api.js';

const STATUSES = ['pending_approval', 'registered', 'attested', 'locked', 'revoked'];
const ROLES = ['controlplane', 'worker-infra', 'worker-app'];
const SORTS = [['id', 'registration order'], ['hostname', 'hostname'], ['status', 'status'], ['role', 'role'],
  ['registered_at', 'registered'], ['last_contact_at', 'last contact'], ['ek_manufacturer', 'manufacturer'], ['machine_id', 'machine id']];
const UNKNOWN = '(unknown)';
const FILTERS = ['q', 'status', 'role', 'manufacturer', 'ek_verified', 'silent_for', 'sort', 'per_page', 'page'];

function select(name, label, options, value) {
  return h('label', null, h('span', null, label),
    h('select', { name, id: `f-${name}` }, options.map(([v, t]) => h('option', { value: v, selected: v === (value || '') }, t))));
}

function filterBar(q, apply) {
  const form = h('form', { class: 'filters', id: 'filters', role: 'search', on: { submit: (e) => { e.preventDefault(); apply(form); } } },
    h('label', null, h('span', null, 'Hostname or id prefix'), h('input', { type: 'search', name: 'q', id: 'f-q', value: q.q || '', maxlength: 64, autocomplete: 'off', spellcheck: 'false' })),
    select('status', 'Status', [['', 'any'], ...STATUSES.map((s) => [s, s.replace('_', ' ')])], q.status),
    select('role', 'Role', [['', 'any'], ...ROLES.map((r) => [r, r])], q.role),
    h('label', null, h('span', null, 'TPM manufacturer'), h('input', { type: 'text', name: 'manufacturer', id: 'f-manufacturer', value: q.manufacturer === undefined ? '' : q.manufacturer === '' ? UNKNOWN : q.manufacturer, maxlength: 64, placeholder: `IFX, STM, NTC… or ${UNKNOWN}` })),
    select('ek_verified', 'EK chain', [['', 'any'], ['true', 'verified'], ['false', 'failed'], ['unchecked', 'unchecked']], q.ek_verified),
    select('silent_for', 'Silent for', [['', 'any'], ['900', '> 15 min'], ['3600', '> 1 h'], ['86400', '> 24 h']], q.silent_for),
    select('sort', 'Sort by', SORTS.flatMap(([k, t]) => [[k, `${t} ↑`], [`-${k}`, `${t} ↓`]]), q.sort || 'id'),
    select('per_page', 'Per page', [['25', '25'], ['50', '50'], ['100', '100'], ['200', '200']], q.per_page || '50'),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'));
  for (const el of form.querySelectorAll('select')) el.addEventListener('change', () => apply(form));
  return form;
}

function pager(page, pages, total, per, go) {
  const from = total ? (page - 1) * per + 1 : 0, to = Math.min(total, page * per);
  const btn = (label, p, id) => h('button', { type: 'button', class: 'secondary small', id, disabled: p < 1 || p > pages || p === page, on: { click: () => go(p) } }, label);
  return h('nav', { class: 'pager', 'aria-label': 'pages' },
    h('span', { id: 'range', dataset: { total: String(total) } }, `${num(from)}–${num(to)} of ${num(total)} machines`),
    btn('« first', 1, 'pg-first'), btn('‹ prev', page - 1, 'pg-prev'),
    h('span', null, `page ${num(page)} of ${num(pages)}`),
    btn('next ›', page + 1, 'pg-next'), btn('last »', pages, 'pg-last'));
}

async function bulk(ctx, ids, refresh, log) {
  const values = await dialog(`Bulk action on ${ids.length} machine(s)`, [
    h('p', null, 'Each machine gets its own request, authorised and audited exactly as if done one by one.'),
    h('label', null, 'Action', h('select', { name: 'action', id: 'bulk-action' },
      h('option', { value: 'lock' }, 'lock'), h('option', { value: 'unlock' }, 'unlock'),
      h('option', { value: 'revoke' }, 'revoke'), h('option', { value: 'approve' }, 'approve'))),
    h('label', null, 'Role (approve)', h('select', { name: 'role', id: 'bulk-role' }, ROLES.map((r) => h('option', { value: r, selected: r === 'worker-app' }, r)))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'wipe', id: 'bulk-wipe' }), ' wipe (revoke): the machines erase themselves at their next contact'),
    h('label', null, 'Reason (audited)', h('input', { type: 'text', name: 'reason', id: 'bulk-reason', required: true, maxlength: 1024 })),
    h('label', null, 'To confirm a wipe, type WIPE', h('input', { type: 'text', name: 'confirm', id: 'bulk-confirm', autocomplete: 'off' })),
  ], {
    submit: 'Run', danger: true,
    validate: (v) => (v.action === 'revoke' && v.wipe && v.confirm !== 'WIPE' ? 'Type WIPE to confirm a remote wipe.' : null),
  });
  if (!values) return;
  const body = (v) => (v.action === 'revoke' ? { wipe: !!v.wipe, reason: v.reason } : v.action === 'approve' ? { role: v.role, reason: v.reason } : { reason: v.reason });
  let ok = 0, bad = 0;
  const items = h('ul', { class: 'bulk-log' });
  const head = h('p', { id: 'bulk-progress', role: 'status' }, `0 of ${ids.length} done`);
  replace(log, section2(`Bulk ${values.action}`, head, items));
  await each(ids, (id) => call('POST', `/api/v1/machines/${encodeURIComponent(id)}/${values.action}`, body(values)), (id, success, r) => {
    if (success) ok++; else bad++;
    head.textContent = `${ok + bad} of ${ids.length} done: ${ok} succeeded, ${bad} failed`;
    const note = success && r.status === 202 ? `vote recorded (${r.data.approvals_received} of ${r.data.approvals_required})` : success ? r.data.status : r;
    items.append(h('li', { class: success ? 'ok' : 'bad' }, h('a', { href: `#/machines/${encodeURIComponent(id)}` }, short(id, 13)), ': ', note));
  });
  head.dataset.done = 'true';
  forget('/api/v1/');
  await refresh(true);
}

function section2(title, ...body) {
  return h('section', { class: 'panel' }, h('h2', null, title), body);
}

export default {
  title: 'Machines',
  mount(root, ctx) {
    const q = ctx.query;
    const page = Math.max(1, parseInt(q.page || '1', 10) || 1);
    const per = [25, 50, 100, 200].includes(Number(q.per_page)) ? Number(q.per_page) : 50;
    const selected = new Set();
    const apply = (form) => {
      const v = Object.fromEntries(Object.entries(Object.fromEntries(new FormData(form).entries())).map(([k, x]) => [k, x.trim()]).filter(([, x]) => x !== ''));
      if (v.sort === 'id') delete v.sort;
      if (v.per_page === '50') delete v.per_page;
      if (v.manufacturer === UNKNOWN) v.manufacturer = '';
      ctx.setQuery(v);
    };
    const tableBox = h('div', { id: 'machine-table' });
    const log = h('div', { id: 'bulk-log' });
    const selBar = h('div', { class: 'selbar', id: 'selbar', hidden: true });
    replace(root, h('h1', null, 'Machines'), filterBar(q, apply), selBar, log, tableBox);

    const api = { ...Object.fromEntries(FILTERS.filter((k) => q[k] !== undefined && (q[k] !== '' || k === 'manufacturer') && k !== 'page' && k !== 'per_page').map((k) => [k, q[k]])), page, per_page: per };
    let rows = [];
    const drawSel = () => {
      selBar.hidden = selected.size === 0;
      replace(selBar, h('span', { id: 'sel-count' }, `${selected.size} selected`),
        h('button', { type: 'button', class: 'primary small', id: 'bulk-open', on: { click: () => bulk(ctx, [...selected], refresh, log) } }, 'Bulk action…'),
        h('button', { type: 'button', class: 'secondary small', on: { click: () => { selected.clear(); draw(); } } }, 'Clear selection'));
    };
    let total = 0;
    const draw = () => {
      const pages = Math.max(1, Math.ceil(total / per));
      const all = h('input', { type: 'checkbox', id: 'sel-all', 'aria-label': 'select all on this page', checked: rows.length > 0 && rows.every((m) => selected.has(m.machine_id)),
        on: { change: (e) => { for (const m of rows) e.target.checked ? selected.add(m.machine_id) : selected.delete(m.machine_id); draw(); } } });
      replace(tableBox,
        pager(page, pages, total, per, (p) => ctx.setQuery({ ...q, page: p })),
        h('div', { class: 'table-wrap' }, h('table', { class: 'machines cards' },
          h('caption', { class: 'sr-only' }, 'Machines matching the filters'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, all), ['hostname / machine', 'status', 'role', 'TPM', 'EK chain', 'last contact', 'registered'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, rows.length ? rows.map((m) => h('tr', { dataset: { id: m.machine_id } },
            h('td', { 'data-label': 'select' }, h('input', { type: 'checkbox', class: 'sel', 'aria-label': `select ${m.hostname || m.machine_id}`, checked: selected.has(m.machine_id),
              on: { change: (e) => { e.target.checked ? selected.add(m.machine_id) : selected.delete(m.machine_id); drawSel(); } } })),
            h('td', { 'data-label': 'machine' }, h('a', { href: `#/machines/${encodeURIComponent(m.machine_id)}`, class: 'hostname' }, m.hostname || h('span', { class: 'muted' }, '(no hostname)')),
              h('div', { class: 'sub mono' }, short(m.machine_id, 13)), h('div', { class: 'sub product' }, m.hw_product)),
            h('td', { 'data-label': 'status' }, badge(m.status), m.wipe_pending ? h('span', { class: 'badge bad' }, 'wipe pending') : null),
            h('td', { 'data-label': 'role' }, m.role),
            h('td', { 'data-label': 'TPM' }, m.ek_manufacturer || h('span', { class: 'muted' }, 'unknown'), m.ek_model ? h('div', { class: 'sub' }, m.ek_model) : null),
            h('td', { 'data-label': 'EK chain' }, ekVerdict(m)),
            h('td', { 'data-label': 'last contact' }, timeEl(m.last_contact_at)),
            h('td', { 'data-label': 'registered' }, timeEl(m.registered_at))))
            : h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No machine matches these filters.'))))),
        pages > 1 ? pager(page, pages, total, per, (p) => ctx.setQuery({ ...q, page: p })) : null);
      drawSel();
    };
    const refresh = async (first) => {
      try {
        const r = await get(`/api/v1/machines${qs(api)}`);
        if (first || r.changed) {
          rows = r.data;
          total = r.total || 0;
          draw();
        }
      } catch (e) {
        replace(tableBox, message('error', e instanceof ApiError ? e.explain() : e.message));
        throw e;
      }
    };
    return { refresh };
  },
};
