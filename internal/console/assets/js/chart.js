// A stacked bar chart of alerts over time by priority, drawn as inline SVG
// from the dashboard's stats.buckets.

import { s, h, PRIORITIES } from './dom.js';

const W = 720, H = 220, PAD_L = 40, PAD_B = 28, PAD_T = 10, PAD_R = 10;

export function alertsChart(buckets) {
  buckets = buckets || [];
  const totals = buckets.map((b) => Object.values(b.counts || {}).reduce((a, n) => a + n, 0));
  const max = Math.max(1, ...totals);
  const plotW = W - PAD_L - PAD_R, plotH = H - PAD_T - PAD_B;
  const bw = buckets.length ? plotW / buckets.length : plotW;
  const y = (n) => PAD_T + plotH - (n / max) * plotH;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'Alerts over time by priority', 'data-testid': 'alerts-chart' });
  // Axis and gridlines at 0, max/2, max.
  for (const v of [0, Math.round(max / 2), max]) {
    svg.appendChild(s('line', { x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.appendChild(s('text', { x: PAD_L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
  }
  buckets.forEach((b, i) => {
    let acc = 0;
    const x = PAD_L + i * bw + bw * 0.1;
    // The most severe at the bottom.
    for (const p of PRIORITIES) {
      const n = (b.counts || {})[p] || 0;
      if (!n) continue;
      const rect = s('rect', { x, y: y(acc + n), width: Math.max(1, bw * 0.8), height: y(acc) - y(acc + n), class: 'bar sevfill-' + p });
      rect.appendChild(s('title', null, `${fmtShort(b.start)} ${p}: ${n}`));
      svg.appendChild(rect);
      acc += n;
    }
  });
  // Time labels: the first, middle and last bucket.
  const idx = [...new Set([0, Math.floor(buckets.length / 2), buckets.length - 1])].filter((i) => i >= 0 && i < buckets.length);
  for (const i of idx) {
    svg.appendChild(s('text', { x: PAD_L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, fmtShort(buckets[i].start)));
  }
  const used = PRIORITIES.filter((p) => buckets.some((b) => (b.counts || {})[p]));
  const legend = h('ul', { class: 'legend' }, used.map((p) => h('li', null, h('span', { class: 'swatch sevbg-' + p, 'aria-hidden': 'true' }), p)));
  return h('figure', { class: 'chartbox' }, svg, legend,
    buckets.length ? null : h('figcaption', { class: 'muted' }, 'No alerts in this period.'));
}

function fmtShort(t) {
  const d = new Date(t);
  if (isNaN(d)) return '';
  return `${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}
