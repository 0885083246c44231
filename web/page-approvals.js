// page-approvals.js - the pending queue with the approve form (role,
// hostname, IP, reason), aware of dual control: votes so far, who cast
// them, when the window closes; the signed-in operator's own second vote
// is disabled with the reason (the service would answer 409).

import { h, replace, num, timeEl, fmtTime, age, short, message, facts, ekVerdict, parseTime } from './dom.js';
import { get, call, ApiError, forget } from './api.js';

const ROLES = ['controlplane', 'worker-infra', 'worker-app'];

function activeVotes(votes) {
  const now = Date.now();
  return votes.filter((v) => !v.consumed && (parseTime(v.expires_at) || 0) > now);
}

function card(ctx, m, votes, dual, done) {
  const live = activeVotes(votes);
  const dualRole = (role) => dual.roles.includes(role);
  const mine = live.find((v) => v.operator_cn === (ctx.voter || ctx.identity));
  const pending = live[0];
  const err = h('div', { class: 'form-error' });
  const roleSel = h('select', { name: 'role', id: `role-${m.machine_id}` }, ROLES.map((r) => h('option', { value: r, selected: r === (pending ? pending.role : m.role) }, r)));
  const hostname = h('input', { type: 'text', name: 'hostname', value: pending ? pending.hostname || '' : '', maxlength: 253, autocomplete: 'off', spellcheck: 'false', placeholder: 'k8s-worker-03' });
  const ip = h('input', { type: 'text', name: 'assigned_ip', value: pending ? pending.assigned_ip || '' : '', maxlength: 64, autocomplete: 'off', placeholder: '10.0.1.13/24' });
  const reason = h('input', { type: 'text', name: 'reason', maxlength: 1024, placeholder: 'rack 3, ticket 1234' });
  const submit = h('button', { type: 'submit', class: 'primary', disabled: !!mine }, mine ? 'You already voted' : 'Approve');
  const quorumNote = h('p', { class: 'quorum' });
  const update = () => {
    const need = dualRole(roleSel.value) ? dual.quorum : 1;
    quorumNote.textContent = need > 1 ? `${roleSel.value} is under dual control: ${need} different operators must approve within ${Math.round(dual.window_seconds / 60)} min.` : 'One approval registers the machine.';
  };
  roleSel.addEventListener('change', update);
  update();
  const form = h('form', {
    class: 'approve', dataset: { machine: m.machine_id },
    on: {
      submit: async (e) => {
        e.preventDefault();
        const body = { role: roleSel.value };
        if (hostname.value.trim()) body.hostname = hostname.value.trim();
        if (ip.value.trim()) body.assigned_ip = ip.value.trim();
        if (reason.value.trim()) body.reason = reason.value.trim();
        submit.disabled = true;
        try {
          const r = await call('POST', `/api/v1/machines/${encodeURIComponent(m.machine_id)}/approve`, body);
          ctx.notify('ok', r.status === 202
            ? `Vote recorded for ${m.machine_id}: ${r.data.approvals_received} of ${r.data.approvals_required}; another operator must approve before ${fmtTime(r.data.expires_at)}.`
            : `${m.machine_id} approved as ${r.data.role}${r.data.hostname ? ' (' + r.data.hostname + ')' : ''}: now ${r.data.status}.`);
          forget('/api/v1/');
          await done();
        } catch (x) {
          submit.disabled = false;
          replace(err, message('error', x instanceof ApiError ? x.explain() : x.message));
        }
      },
    },
  },
  h('label', null, 'Role', roleSel), h('label', null, 'Hostname', hostname), h('label', null, 'IP address', ip), h('label', { class: 'wide' }, 'Reason (audited)', reason),
  quorumNote, submit, err);
  return h('article', { class: 'panel approval', id: `approval-${m.machine_id}`, 'aria-labelledby': `t-${m.machine_id}` },
    h('h2', { id: `t-${m.machine_id}` }, h('a', { href: `#/machines/${encodeURIComponent(m.machine_id)}` }, m.machine_id)),
    facts([
      ['hardware', [m.hw_product, m.hw_serial !== 'unknown' ? ` · serial ${m.hw_serial}` : '']],
      ['MAC', m.hw_mac],
      ['TPM', [m.ek_manufacturer || 'unknown manufacturer', m.ek_model ? ` ${m.ek_model}` : '', ' ', ekVerdict(m)]],
      ['EK fingerprint', h('span', { class: 'mono', title: m.ek_fingerprint }, short(m.ek_fingerprint, 24))],
      ['requested role', m.role],
      ['registered', timeEl(m.registered_at)],
      ['last contact', timeEl(m.last_contact_at)],
    ]),
    live.length ? h('div', { class: 'votes', role: 'status' },
      h('strong', null, `Votes: ${live.length} of ${dualRole(pending.role) ? dual.quorum : 1}`),
      h('ul', null, live.map((v) => h('li', { class: 'vote', dataset: { operator: v.operator_cn } }, h('strong', null, v.operator_cn), ` voted ${age(v.created_at)} for ${v.role}`,
        v.hostname ? ` / ${v.hostname}` : '', v.assigned_ip ? ` / ${v.assigned_ip}` : '', v.reason ? ` — “${v.reason}”` : '',
        '; window closes ', timeEl(v.expires_at)))),
      mine ? h('p', { class: 'own-vote' }, `You (${ctx.identity}) already voted. Dual control needs a different operator for the next vote; the service refuses a second vote by the same identity (409).`) : null,
      pending ? h('p', { class: 'muted' }, 'A vote must name the same role, hostname and address as the pending votes.') : null) : null,
    form);
}

export default {
  title: 'Approvals',
  mount(root, ctx) {
    const list = h('div', { id: 'approvals' });
    const head = h('p', { id: 'queue-count' });
    replace(root, h('h1', null, 'Approvals'), head, list);
    let last = null;
    const refresh = async (first) => {
      const [s, p] = await Promise.all([get('/api/v1/fleet/summary'), get('/api/v1/machines?status=pending_approval&sort=registered_at&per_page=50')]);
      const votes = await Promise.all(p.data.map((m) => get(`/api/v1/machines/${encodeURIComponent(m.machine_id)}/approvals`)));
      const changed = first || p.changed || votes.some((v) => v.changed) || s.changed;
      const typing = list.contains(document.activeElement) && document.activeElement.tagName !== 'BUTTON';
      if (!changed || (typing && !first)) return;
      last = p.total;
      head.textContent = last ? `${num(last)} machine(s) waiting for approval${last > 50 ? ' (oldest 50 shown)' : ''}.` : '';
      replace(list, p.data.length
        ? p.data.map((m, i) => card(ctx, m, votes[i].data, s.data.dual_control, () => refresh(true)))
        : message('ok', 'No machine is waiting for approval.'));
    };
    return {
      async refresh(first) {
        try { await refresh(first); } catch (e) { replace(list, message('error', e instanceof ApiError ? e.explain() : e.message)); throw e; }
      },
    };
  },
};
