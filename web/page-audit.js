// page-audit.js - the audit log, paged and filtered, and "verify chain":
// every entry's SHA-256 recomputed here with WebCrypto (canon.js), from
// the first entry to the last, showing where the chain breaks.  The
// service's own verdict (/api/v1/audit/verify) is shown beside it.

import { h, replace, fmtTime, short, message, num } from './dom.js';
import { get, qs, ApiError } from './api.js';
import { verifyChain, canonical } from './canon.js';

const ACTIONS = ['register', 'self_register', 're_register', 'approve', 'approve_vote', 'attest', 'config_token_reissued',
  'attest_rejected', 'config_fetch', 'lock', 'unlock', 'revoke', 'wipe_delivered', 'offline_bundle', 'import', 'ak_bound',
  'ak_activation_failed', 'pcr_policy_set', 'pcr_policy_deleted', 'airgap_export', 'airgap_import'];

function filters(q, ctx) {
  const form = h('form', { class: 'filters', id: 'audit-filters', role: 'search', on: { submit: (e) => {
    e.preventDefault();
    const v = Object.fromEntries([...new FormData(form).entries()].map(([k, x]) => [k, x.trim()]).filter(([, x]) => x !== ''));
    ctx.setQuery(v);
  } } },
  h('label', null, h('span', null, 'Machine id'), h('input', { type: 'text', name: 'machine_id', value: q.machine_id || '', maxlength: 64, spellcheck: 'false' })),
  h('label', null, h('span', null, 'Action'), h('input', { type: 'text', name: 'action', value: q.action || '', list: 'actions', maxlength: 64 })),
  h('datalist', { id: 'actions' }, ACTIONS.map((a) => h('option', { value: a }))),
  h('label', null, h('span', null, 'Operator'), h('input', { type: 'text', name: 'operator_cn', value: q.operator_cn || '', maxlength: 256 })),
  h('button', { type: 'submit', class: 'primary' }, 'Apply'));
  return form;
}

function table(entries, broken) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'audit cards', id: 'audit-table' },
    h('thead', null, h('tr', null, ['#', 'time', 'operator', 'action', 'machine', 'state', 'detail', 'entry hash'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, entries.length ? entries.map((e) => h('tr', { class: broken === e.id ? 'broken' : null, dataset: { id: String(e.id) } },
      h('td', { 'data-label': '#' }, String(e.id)), h('td', { 'data-label': 'time' }, fmtTime(e.timestamp)),
      h('td', { 'data-label': 'operator' }, e.operator_cn), h('td', { 'data-label': 'action' }, e.action),
      h('td', { 'data-label': 'machine' }, e.machine_id ? h('a', { href: `#/machines/${encodeURIComponent(e.machine_id)}`, class: 'mono' }, short(e.machine_id, 13)) : ''),
      h('td', { 'data-label': 'state' }, `${e.prev_state || '–'} → ${e.new_state || '–'}`),
      h('td', { 'data-label': 'detail', class: 'detail' }, e.detail || ''),
      h('td', { 'data-label': 'hash', class: 'mono', title: e.entry_hash }, short(e.entry_hash, 12))))
      : h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No entries match.')))));
}

export default {
  title: 'Audit log',
  mount(root, ctx) {
    const q = ctx.query;
    const page = Math.max(1, parseInt(q.page || '1', 10) || 1);
    const result = h('div', { id: 'verify-result', 'aria-live': 'polite' });
    const progress = h('span', { id: 'verify-progress', role: 'status' });
    const box = h('div', { id: 'audit-box' });
    let abort = null, broken = null, rows = [];
    const verifyBtn = h('button', { type: 'button', class: 'primary', id: 'verify', on: { click: async () => {
      if (abort) { abort.abort(); return; }
      abort = new AbortController();
      verifyBtn.textContent = 'Stop';
      replace(result);
      progress.textContent = 'Verifying…';
      try {
        const [mine, theirs] = await Promise.all([
          verifyChain((n) => { progress.textContent = `${num(n)} entries verified…`; }, abort.signal),
          get('/api/v1/audit/verify', { remember: false }).then((r) => r.data, (e) => ({ error: e instanceof ApiError ? e.explain() : e.message })),
        ]);
        broken = mine.broken ? mine.broken.id : null;
        const server = theirs.valid === true ? `valid, ${num(theirs.entries)} entries` : theirs.valid === false ? `BROKEN: ${theirs.error}` : theirs.error;
        replace(result, mine.valid
          ? h('div', { class: 'msg ok verify-ok', role: 'status' }, h('strong', null, 'Chain intact.'),
            ` All ${num(mine.entries)} entries recomputed in this browser (SHA-256 over the canonical JSON) and linked; head ${mine.head ? short(mine.head, 16) : '(empty log)'}. Server's verdict: ${server}.`)
          : h('div', { class: 'msg error verify-bad', role: 'alert' }, h('strong', null, `Chain broken at entry #${mine.broken.id}: `), mine.error,
            `. ${num(mine.entries)} entries before it verified. Server's verdict: ${server}.`,
            h('details', { open: true }, h('summary', null, `Entry #${mine.broken.id} as served`),
              h('pre', { class: 'mono wrap' }, canonical(mine.broken)),
              mine.computed ? h('p', null, `recorded entry_hash ${mine.broken.entry_hash}, recomputed ${mine.computed}`) : h('p', null, `prev_hash ${mine.broken.prev_hash} does not match the previous entry's hash ${mine.head}`))));
        replace(box, table(rows, broken));
      } catch (e) {
        replace(result, message('error', `Verification stopped: ${e instanceof ApiError ? e.explain() : e.message}`));
      } finally {
        abort = null;
        progress.textContent = '';
        verifyBtn.textContent = 'Verify chain';
      }
    } } }, 'Verify chain');
    const nav = (total) => h('nav', { class: 'pager', 'aria-label': 'pages' },
      h('button', { type: 'button', class: 'secondary small', id: 'au-newer', disabled: page <= 1, on: { click: () => ctx.setQuery({ ...q, page: page - 1 }) } }, '‹ newer'),
      h('span', null, `page ${page}`),
      h('button', { type: 'button', class: 'secondary small', id: 'au-older', disabled: total < 50, on: { click: () => ctx.setQuery({ ...q, page: page + 1 }) } }, 'older ›'));
    const pagerBox = h('div');
    replace(root, h('h1', null, 'Audit log'),
      h('p', null, 'Append-only and hash-chained: each entry\'s SHA-256 covers its content and the previous entry\'s hash (docs/audit.md).'),
      h('div', { class: 'verify-bar' }, verifyBtn, progress), result, filters(q, ctx), pagerBox, box);
    return {
      async refresh(first) {
        try {
          const params = { machine_id: q.machine_id, action: q.action, operator_cn: q.operator_cn, page, per_page: 50 };
          const r = await get(`/api/v1/audit${qs(params)}`);
          if (first || r.changed) {
            rows = r.data;
            replace(box, table(rows, broken));
            replace(pagerBox, nav(rows.length));
          }
        } catch (e) {
          replace(box, message('error', e instanceof ApiError ? e.explain() : e.message));
          throw e;
        }
      },
    };
  },
};
