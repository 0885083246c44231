// page-overview.js - the fleet at a glance.  Every number links to the
// machine list filtered to exactly the machines it counts.

import { h, replace, link, num, section, message } from './dom.js';
import { get, ApiError } from './api.js';
import { timelineChart, stackBar } from './chart.js';

const STATUSES = ['pending_approval', 'registered', 'attested', 'locked', 'revoked'];
const ROLES = ['controlplane', 'worker-infra', 'worker-app'];

function tile(label, value, href, cls, id) {
  return h('a', { class: `tile ${cls || ''}`, href, id, dataset: { count: String(value) } },
    h('span', { class: 'tile-num' }, num(value)), h('span', { class: 'tile-label' }, label));
}

function mins(s) {
  return s % 3600 === 0 ? `${s / 3600} h` : `${Math.round(s / 60)} min`;
}

function view(s, t) {
  const silent = s.contact.silent_for;
  const ages = s.contact.ages;
  const ageLabels = ['< 5 min', '5 min – 1 h', '1 h – 24 h', '> 24 h'];
  return [
    h('h1', null, 'Fleet overview'),
    h('div', { class: 'tiles', id: 'tiles-status' },
      tile('machines', s.total, link('/machines'), 'total', 'count-total'),
      STATUSES.map((st) => tile(st.replace('_', ' '), s.by_status[st], link('/machines', { status: st }), `st-${st}`, `count-${st}`))),
    h('div', { class: 'grid2' },
      section('Needs attention',
        h('ul', { class: 'attention' },
          h('li', null, h('a', { href: '#/approvals', id: 'att-pending', dataset: { count: String(s.by_status.pending_approval) } }, num(s.by_status.pending_approval)), ' waiting for approval'),
          h('li', null, h('a', { href: link('/machines', { status: 'attested', silent_for: silent, sort: 'last_contact_at' }), id: 'att-silent', dataset: { count: String(s.contact.silent) } }, num(s.contact.silent)),
            ` attested machines silent for more than ${mins(silent)}`, s.contact.never ? ` (${num(s.contact.never)} never heard from since the upgrade)` : ''),
          h('li', null, h('a', { href: link('/machines', { ek_verified: 'false' }), id: 'att-ekfail', dataset: { count: String(s.ek.failed) } }, num(s.ek.failed)), ' EK certificate chains that do not verify'),
          h('li', null, h('a', { href: link('/machines', { status: 'locked' }), id: 'att-locked', dataset: { count: String(s.by_status.locked) } }, num(s.by_status.locked)), ' locked'))),
      section('By role',
        h('table', { class: 'compact', id: 'roles' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'role'), h('th', { scope: 'col', class: 'n' }, 'machines'))),
          h('tbody', null, ROLES.map((r) => h('tr', null, h('th', { scope: 'row' }, r),
            h('td', { class: 'n' }, h('a', { href: link('/machines', { role: r }), id: `count-role-${r}`, dataset: { count: String(s.by_role[r]) } }, num(s.by_role[r]))))))),
        s.dual_control.roles.length
          ? h('p', { class: 'muted' }, `Dual control: ${s.dual_control.roles.join(', ')} need ${s.dual_control.quorum} operators within ${mins(s.dual_control.window_seconds)}.`)
          : h('p', { class: 'muted' }, 'No role is under dual control.'))),
    section('Last contact of attested machines',
      stackBar(ages.map((a, i) => ({ label: ageLabels[i], value: a.count, cls: `age${i}` })).concat([{ label: 'never', value: s.contact.never, cls: 'age-never' }])),
      h('ul', { class: 'legend' }, ages.map((a, i) => h('li', null, h('span', { class: `key age${i}` }), `${ageLabels[i]}: `, h('strong', null, num(a.count)))),
        h('li', null, h('span', { class: 'key age-never' }), 'never: ', h('strong', null, num(s.contact.never)))),
      h('p', { class: 'muted' }, `Contacts are recorded at most every ${s.contact_resolution_seconds} s per machine.`)),
    section('EK certificate chains by TPM manufacturer',
      h('div', { class: 'table-wrap' }, h('table', { id: 'ek-table' },
        h('thead', null, h('tr', null, ['manufacturer', 'verified', 'failed', 'unchecked', 'total'].map((c, i) => h('th', { scope: 'col', class: i ? 'n' : null }, c)))),
        h('tbody', null, s.manufacturers.length ? s.manufacturers.map((m) => {
          const man = m.manufacturer === null ? '' : m.manufacturer;
          const cell = (v, n) => h('td', { class: 'n' }, h('a', { href: link('/machines', { manufacturer: man, ek_verified: v }), dataset: { count: String(n) } }, num(n)));
          return h('tr', null, h('th', { scope: 'row' }, m.manufacturer === null ? h('span', { class: 'muted' }, 'unknown') : m.manufacturer),
            cell('true', m.verified), cell('false', m.failed), cell('unchecked', m.unchecked),
            h('td', { class: 'n' }, h('a', { href: `#/machines?manufacturer=${encodeURIComponent(man)}`, dataset: { count: String(m.total) } }, num(m.total))));
        }) : h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No machines yet.')))))),
    section(`Registrations and first attestations, last ${t.days} days`, timelineChart(t.series)),
  ];
}

export default {
  title: 'Overview',
  mount(root, ctx) {
    replace(root, h('p', { class: 'muted' }, 'Loading…'));
    return {
      async refresh(first) {
        try {
          const [s, t] = await Promise.all([get('/api/v1/fleet/summary'), get('/api/v1/fleet/timeline?days=30')]);
          if (first || s.changed || t.changed) replace(root, view(s.data, t.data));
        } catch (e) {
          if (first || e instanceof ApiError) replace(root, message('error', e instanceof ApiError ? e.explain() : e.message));
          throw e;
        }
      },
    };
  },
};
