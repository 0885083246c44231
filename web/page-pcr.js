// page-pcr.js - PCR policies per role: the golden values a quote must
// show before a machine of the role gets a config token.  Edited as
// lines "sha256:7 = <hex>[, <hex> ...]"; saved with PUT (audited).

import { h, replace, fmtTime, message, section, dialog } from './dom.js';
import { get, call, ApiError, forget } from './api.js';

const ROLES = ['controlplane', 'worker-infra', 'worker-app'];

export function toText(pcrs) {
  return Object.entries(pcrs || {}).map(([k, v]) => `${k} = ${(Array.isArray(v) ? v : [v]).join(', ')}`).join('\n');
}

// "sha256:7 = aa.., bb.." lines -> { "sha256:7": ["aa..", "bb.."] }; throws naming the line
export function fromText(text) {
  const out = {};
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const m = l.match(/^([a-z0-9]+:\d+)\s*[=:]\s*(.+)$/i);
    if (!m) throw new Error(`line ${i + 1}: expected "bank:index = hex[, hex]"`);
    const vals = m[2].split(/[\s,]+/).filter(Boolean);
    if (!vals.length) throw new Error(`line ${i + 1}: no value`);
    out[m[1].toLowerCase()] = vals;
  });
  if (!Object.keys(out).length) throw new Error('no PCR given (delete the policy instead)');
  return out;
}

function card(ctx, role, p, done) {
  const err = h('div', { class: 'form-error' });
  const text = h('textarea', { name: 'pcrs', id: `pcr-text-${role}`, rows: 6, spellcheck: 'false', class: 'mono' }, toText(p && p.pcrs));
  const reason = h('input', { type: 'text', name: 'reason', id: `pcr-reason-${role}`, maxlength: 1024, placeholder: 'new kernel 6.12.3, change 4711' });
  const save = async (e) => {
    e.preventDefault();
    try {
      const body = { pcrs: fromText(text.value) };
      if (reason.value.trim()) body.reason = reason.value.trim();
      await call('PUT', `/api/v1/pcr-policies/${role}`, body);
      ctx.notify('ok', `PCR policy for ${role} saved.`);
      forget('/api/v1/pcr-policies');
      await done();
    } catch (x) {
      replace(err, message('error', x instanceof ApiError ? x.explain() : x.message));
    }
  };
  const del = async () => {
    const v = await dialog(`Delete the PCR policy of ${role}?`, [h('p', null, 'Machines of this role will then get config tokens without golden PCR values.'),
      h('label', null, 'Reason (audited)', h('input', { type: 'text', name: 'reason', maxlength: 1024 }))], { submit: 'Delete', danger: true });
    if (!v) return;
    try {
      await call('DELETE', `/api/v1/pcr-policies/${role}`, v.reason ? { reason: v.reason } : {});
      ctx.notify('ok', `PCR policy for ${role} deleted.`);
      forget('/api/v1/pcr-policies');
      await done();
    } catch (x) {
      replace(err, message('error', x instanceof ApiError ? x.explain() : x.message));
    }
  };
  return section(role,
    p ? h('p', { class: 'muted' }, `${Object.keys(p.pcrs).length} PCR(s), updated ${fmtTime(p.updated_at)} by ${p.updated_by}.`) : h('p', { class: 'muted' }, 'No policy: quotes are verified but no golden values are enforced.'),
    p ? h('table', { class: 'compact pcr-table' }, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'PCR'), h('th', { scope: 'col' }, 'allowed values'))),
      h('tbody', null, Object.entries(p.pcrs).map(([k, v]) => h('tr', null, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono wrap' }, v.join('\n')))))) : null,
    h('form', { class: 'pcr-edit', dataset: { role }, on: { submit: save } },
      h('label', { for: `pcr-text-${role}` }, 'Policy (one PCR per line: bank:index = hex[, hex])'), text,
      h('label', { for: `pcr-reason-${role}` }, 'Reason (audited)'), reason,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, p ? 'Save' : 'Create'),
        p ? h('button', { type: 'button', class: 'danger', on: { click: del } }, 'Delete…') : null),
      err));
}

export default {
  title: 'PCR policies',
  mount(root, ctx) {
    const box = h('div', { class: 'grid3', id: 'pcr-policies' });
    replace(root, h('h1', null, 'PCR policies'),
      h('p', null, 'Per role, the PCR values a TPM quote must show before a machine gets its config (docs/trust-model.md). Changes are audited.'), box);
    const refresh = async (first) => {
      try {
        const r = await get('/api/v1/pcr-policies');
        const editing = box.contains(document.activeElement) && document.activeElement.tagName !== 'BUTTON';
        if (!(first || r.changed) || (editing && !first)) return;
        const by = Object.fromEntries(r.data.policies.map((p) => [p.role, p]));
        replace(box, ROLES.map((role) => card(ctx, role, by[role], () => refresh(true))));
      } catch (e) {
        replace(box, message('error', e instanceof ApiError ? e.explain() : e.message));
        throw e;
      }
    };
    return { refresh };
  },
};
