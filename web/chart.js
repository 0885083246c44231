// chart.js - registrations and first attestations per day as an SVG bar
// chart (drawn with DOM calls: no inline style, no markup strings).

import { h, svg, num } from './dom.js';

export function timelineChart(series) {
  const W = 720, H = 200, pad = { l: 36, r: 8, t: 10, b: 28 };
  const max = Math.max(1, ...series.map((d) => Math.max(d.registered, d.attested)));
  const step = (W - pad.l - pad.r) / Math.max(1, series.length);
  const bw = Math.max(1, step / 2 - 1);
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const total = (k) => series.reduce((a, d) => a + d[k], 0);
  const label = `Last ${series.length} days: ${num(total('registered'))} registrations, ${num(total('attested'))} first attestations; busiest day ${num(max)}`;
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  g.append(svg('title', null, label));
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(max * frac);
    g.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
    g.append(svg('text', { x: pad.l - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, num(v)));
  }
  series.forEach((d, i) => {
    const x = pad.l + i * step;
    const bar = (v, dx, cls, what) => {
      const r = svg('rect', { x: x + dx, y: y(v), width: bw, height: Math.max(0, H - pad.b - y(v)), class: cls });
      r.append(svg('title', null, `${d.date}: ${num(v)} ${what}`));
      return r;
    };
    g.append(bar(d.registered, 0, 'bar-reg', 'registered'), bar(d.attested, bw + 1, 'bar-att', 'first attestations'));
    if (i % Math.ceil(series.length / 6) === 0) g.append(svg('text', { x: x + bw, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, d.date.slice(5)));
  });
  return h('figure', { class: 'chart-wrap' }, g,
    h('figcaption', null, h('span', { class: 'key key-reg' }), ' registered  ', h('span', { class: 'key key-att' }), ' first attestations (per UTC day)'));
}

// A horizontal stacked bar of parts [{label, value, cls, href}].
export function stackBar(parts) {
  const total = parts.reduce((a, p) => a + p.value, 0) || 1;
  const g = svg('svg', { viewBox: '0 0 100 6', preserveAspectRatio: 'none', class: 'stack', role: 'img',
    'aria-label': parts.map((p) => `${p.label}: ${num(p.value)}`).join(', ') });
  let x = 0;
  for (const p of parts) {
    const w = (100 * p.value) / total;
    const r = svg('rect', { x, y: 0, width: w, height: 6, class: p.cls });
    r.append(svg('title', null, `${p.label}: ${num(p.value)}`));
    g.append(r);
    x += w;
  }
  return g;
}
