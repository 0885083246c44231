// page-machine.js - one machine: identity and TPM evidence (EK chain
// verdict, AK binding, last quote and boot counters), the PCR policy of
// its role and the last verdict on it, config delivery, approvals, its
// audit trail, and the lifecycle actions.  (Machine certificates are not
// shown: they do not exist in the service yet — docs/dashboard.md.)

import { h, replace, badge, ekVerdict, timeEl, fmtTime, facts, section, message, dialog, download, short } from './dom.js';
import { get, call, blob, ApiError, forget } from './api.js';

function policyVerdict(m, policy, trail) {
  if (!policy) return h('p', { id: 'pcr-verdict' }, `No PCR policy for role ${m.role}: quotes are verified (signature, nonce, PCR digest) but no golden values are enforced.`);
  const last = trail.find((e) => ['attest_rejected', 'attest', 'config_token_reissued'].includes(e.action));
  const pcrs = Object.keys(policy.pcrs);
  let verdict;
  if (!last) verdict = h('span', { class: 'badge neutral' }, 'not checked yet');
  else if (last.action === 'attest_rejected') verdict = [h('span', { class: 'badge bad' }, 'rejected'), ` ${fmtTime(last.timestamp)}: `, last.detail];
  else if ((last.detail || '').includes('quote verified')) verdict = [h('span', { class: 'badge ok' }, 'met'), ` when the config token was issued, ${fmtTime(last.timestamp)}`];
  else verdict = [h('span', { class: 'badge neutral' }, 'no quote'), ` at the last config issue (${fmtTime(last.timestamp)})`];
  return h('div', { id: 'pcr-verdict' },
    h('p', null, `Role ${m.role} requires ${pcrs.length} PCR value(s): ${pcrs.join(', ')} (updated by ${policy.updated_by}, ${fmtTime(policy.updated_at)}). Checked whenever a config token is issued.`),
    h('p', null, 'Last verdict: ', verdict));
}

function auditTable(entries) {
  if (!entries.length) return h('p', { class: 'muted' }, 'No audit entries.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'audit cards', id: 'machine-audit' },
    h('thead', null, h('tr', null, ['#', 'time', 'operator', 'action', 'state', 'detail'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, entries.map((e) => h('tr', null,
      h('td', { 'data-label': '#' }, String(e.id)), h('td', { 'data-label': 'time' }, fmtTime(e.timestamp)),
      h('td', { 'data-label': 'operator' }, e.operator_cn), h('td', { 'data-label': 'action' }, e.action),
      h('td', { 'data-label': 'state' }, `${e.prev_state || '–'} → ${e.new_state || '–'}`),
      h('td', { 'data-label': 'detail', class: 'detail' }, e.detail || ''))))));
}

async function act(ctx, m, action, refresh) {
  const label = m.hostname || m.machine_id;
  const fields = [h('label', null, 'Reason (audited)', h('input', { type: 'text', name: 'reason', id: 'act-reason', maxlength: 1024, required: action !== 'unlock' }))];
  if (action === 'revoke') {
    fields.unshift(h('p', null, 'A revoked machine can never attest again; its config tokens die with it.'));
    fields.push(h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'wipe', id: 'act-wipe' }), ' remote wipe: the machine erases its STATE and EPHEMERAL partitions at its next contact'),
      h('label', null, `To confirm a wipe, type ${label}`, h('input', { type: 'text', name: 'confirm', id: 'act-confirm', autocomplete: 'off', spellcheck: 'false' })));
  }
  const v = await dialog(`${action[0].toUpperCase() + action.slice(1)} ${label}`, fields, {
    submit: action, danger: action === 'revoke',
    validate: (x) => (action === 'revoke' && x.wipe && x.confirm !== label ? `Type ${label} exactly to confirm the wipe.` : null),
  });
  if (!v) return;
  const body = action === 'revoke' ? { wipe: !!v.wipe } : {};
  if (v.reason) body.reason = v.reason;
  try {
    const r = await call('POST', `/api/v1/machines/${encodeURIComponent(m.machine_id)}/${action}`, body);
    ctx.notify('ok', `${label}: ${action} done — now ${r.data.status}${r.data.wipe_pending ? ', wipe pending' : ''}.`);
  } catch (e) {
    ctx.notify('error', e instanceof ApiError ? e.explain() : e.message);
  }
  forget('/api/v1/');
  await refresh(true);
}

async function bundle(ctx, m) {
  const ok = await dialog('Download the offline bundle', [
    h('p', null, 'The bundle holds a fresh enrollment certificate ', h('strong', null, 'and its private key'), ', a new config token and the rendered MachineConfig. Keep the file on the USB stick only; generating it is audited (as a bundle with the private key) and replaces the machine\'s config tokens.'),
  ], { submit: 'Generate and download' });
  if (!ok) return;
  try {
    const { data } = await get(`/api/v1/machines/${encodeURIComponent(m.machine_id)}/offline-bundle?include_key=true`, { remember: false });
    download(`offline-bundle-${m.machine_id}.json`, new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
    ctx.notify('ok', `Offline bundle for ${m.machine_id} downloaded (certificate serial ${data.enrollment_cert_serial}).`);
  } catch (e) {
    ctx.notify('error', e instanceof ApiError ? e.explain() : e.message);
  }
}

async function report(ctx, m) {
  try {
    const b = await blob(`/api/v1/machines/${encodeURIComponent(m.machine_id)}/audit-report`);
    download(`machine-audit-${m.machine_id}.pdf`, b);
    ctx.notify('ok', `Signed audit report for ${m.machine_id} downloaded (${b.size} bytes).`);
  } catch (e) {
    ctx.notify('error', e instanceof ApiError ? e.explain() : e.message);
  }
}

function view(ctx, m, votes, policy, trail, refresh) {
  const st = m.status;
  const btn = (label, id, fn, cls = 'secondary') => h('button', { type: 'button', class: cls, id, on: { click: fn } }, label);
  return [
    h('h1', null, m.hostname || m.machine_id, ' ', badge(st), m.wipe_pending ? h('span', { class: 'badge bad' }, 'wipe pending') : null),
    h('div', { class: 'actions', id: 'machine-actions' },
      st === 'pending_approval' ? h('a', { class: 'button primary', href: '#/approvals' }, 'Approve…') : null,
      ['registered', 'attested'].includes(st) ? btn('Lock…', 'act-lock', () => act(ctx, m, 'lock', refresh)) : null,
      st === 'locked' ? btn('Unlock…', 'act-unlock', () => act(ctx, m, 'unlock', refresh)) : null,
      st !== 'revoked' ? btn('Revoke…', 'act-revoke', () => act(ctx, m, 'revoke', refresh), 'danger') : null,
      ['registered', 'attested'].includes(st) ? btn('Offline bundle…', 'act-bundle', () => bundle(ctx, m)) : null,
      btn('Signed audit report (PDF)', 'act-report', () => report(ctx, m))),
    h('div', { class: 'grid2' },
      section('Identity', facts([
        ['machine id', h('span', { class: 'mono', id: 'd-machine-id' }, m.machine_id)],
        ['hostname', m.hostname], ['role', m.role], ['assigned IP', m.assigned_ip], ['cluster', m.cluster_id],
        ['hardware', h('span', { id: 'd-product' }, m.hw_product)], ['serial', m.hw_serial], ['UUID', m.hw_uuid], ['MAC', m.hw_mac],
        ['registered', fmtTime(m.registered_at)], ['approved', fmtTime(m.approved_at)],
        ['locked', m.locked_at ? [fmtTime(m.locked_at), ` (from ${m.locked_from})`] : null], ['revoked', m.revoked_at ? fmtTime(m.revoked_at) : null],
      ])),
      section('TPM evidence', facts([
        ['EK fingerprint', h('span', { class: 'mono wrap', id: 'd-ek' }, m.ek_fingerprint)],
        ['EK key', [m.ek_key_type, ' from ', m.ek_source]],
        ['EK issuer', h('span', { id: 'd-issuer' }, m.ek_issuer)],
        ['manufacturer / model', h('span', { id: 'd-manufacturer' }, [m.ek_manufacturer || 'unknown', ' / ', m.ek_model || 'unknown'])],
        ['chain verdict', [ekVerdict(m), m.ek_chain_error ? h('div', { class: 'sub', id: 'd-chain-error' }, m.ek_chain_error) : null]],
        ['AK binding', m.ak_bound ? [h('span', { class: 'badge ok' }, 'bound'), ' ', fmtTime(m.ak_bound_at)] : h('span', { class: 'badge neutral' }, 'no AK bound (no quotes)')],
        ['AK name', m.ak_name ? h('span', { class: 'mono wrap' }, m.ak_name) : null],
        ['last quote', m.last_quote_at ? timeEl(m.last_quote_at) : null],
        ['TPM reset / restart count', m.tpm_reset_count === null ? null : `${m.tpm_reset_count} / ${m.tpm_restart_count}`],
        ['last contact', timeEl(m.last_contact_at)],
      ]))),
    h('div', { class: 'grid2' },
      section('PCR policy', policyVerdict(m, policy, trail)),
      section('Config delivery', facts([
        ['first attested', fmtTime(m.attested_at)],
        ['config delivered', m.config_delivered_at ? fmtTime(m.config_delivered_at) : (st === 'attested' ? 'not yet fetched — the next attest issues a new token' : null)],
        ['remote wipe', m.wipe_pending ? 'pending: delivered at the next contact' : st === 'revoked' ? 'not pending' : null],
      ]))),
    votes.length ? section('Approval votes', h('ul', { id: 'd-votes' }, votes.map((v) => h('li', null, h('strong', null, v.operator_cn), ` ${v.role}`,
      v.hostname ? ` / ${v.hostname}` : '', v.assigned_ip ? ` / ${v.assigned_ip}` : '', `, ${fmtTime(v.created_at)}`, v.consumed ? ' (counted)' : ` (expires ${fmtTime(v.expires_at)})`,
      v.reason ? ` — “${v.reason}”` : '')))) : null,
    section('Audit trail (latest 50)', auditTable(trail), h('p', null, h('a', { href: `#/audit?machine_id=${encodeURIComponent(m.machine_id)}` }, 'All entries of this machine'))),
  ];
}

export default {
  title: 'Machine',
  mount(root, ctx) {
    const id = ctx.params[0];
    replace(root, h('p', { class: 'muted' }, `Loading ${short(id, 40)}…`));
    const refresh = async (first) => {
      try {
        const e = encodeURIComponent(id);
        const [m, v, a] = await Promise.all([get(`/api/v1/machines?machine_id=${e}`), get(`/api/v1/machines/${e}/approvals`), get(`/api/v1/audit?machine_id=${e}&per_page=50`)]);
        if (!m.data.length) {
          replace(root, message('error', `Machine ${id} not found.`));
          return;
        }
        let p = { data: null, changed: false };
        try { p = await get(`/api/v1/pcr-policies/${encodeURIComponent(m.data[0].role)}`); } catch (x) { if (!(x instanceof ApiError && x.status === 404)) throw x; }
        if (first || m.changed || v.changed || a.changed || p.changed) {
          if (!first && document.querySelector('dialog[open]')) return;
          replace(root, view(ctx, m.data[0], v.data, p.data, a.data, refresh));
        }
      } catch (x) {
        replace(root, message('error', x instanceof ApiError ? x.explain() : x.message));
        throw x;
      }
    };
    return { refresh };
  },
};
