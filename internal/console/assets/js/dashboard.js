// The dashboard: alerts over time and by priority, top rules and MITRE
// techniques, KEV exposure, the most vulnerable workloads, agents.

import { h, replace, section, table, link, list, priority, PRIORITIES, short, fmtTime } from './dom.js';
import { get, query } from './api.js';
import { alertsChart } from './chart.js';

const RANGES = [['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['168h', 'Last 7 days'], ['720h', 'Last 30 days']];

export async function dashboardPage(main, _p, q, { navigate }) {
  const since = RANGES.some(([v]) => v === q.get('since')) ? q.get('since') : '24h';
  const d = await get('/dashboard' + query({ since }));
  const st = d.stats || {};
  const byp = st.by_priority || {};
  const agents = d.agents || {};
  const range = h('select', { id: 'dash-range', 'aria-label': 'Time range' },
    RANGES.map(([v, t]) => h('option', { value: v, selected: v === since }, t)));
  range.addEventListener('change', () => navigate('/?since=' + range.value));
  replace(main,
    h('div', { class: 'pagehead' }, h('h1', null, 'Dashboard'), range),
    h('div', { class: 'tiles' },
      tile('Alerts', st.total || 0, 'dash-total', '/alerts?since=' + since),
      tile('Agents connected', `${agents.connected || 0} / ${agents.total || 0}`, 'dash-agents', '/agents'),
      tile('Images with KEV', list(d.kev_exposure, 'items').length, 'dash-kev', '/inventory?kind=image'),
      ...PRIORITIES.filter((p) => byp[p]).map((p) => tile(p, byp[p], 'dash-sev-' + p, `/alerts?since=${since}&severity=${p}`))),
    section('Alerts over time', alertsChart(st.buckets)),
    h('div', { class: 'grid2' },
      section('Top rules', counts(st.top_rules, 'top-rules', (n) => `/alerts?since=${since}&rule=${encodeURIComponent(n)}`)),
      section('Top MITRE techniques', counts(st.top_techniques, 'top-techniques')),
      section('Most alerting workloads', counts(st.top_workloads, 'top-workloads', (n) => `/alerts?since=${since}&workload=${encodeURIComponent(n)}`)),
      section('By priority', table([['Priority', (r) => priority(r[0])], ['Alerts', (r) => String(r[1])]],
        PRIORITIES.filter((p) => byp[p]).map((p) => [p, byp[p]]), { testid: 'by-priority', rowid: (r) => 'by-priority-' + r[0], empty: 'No alerts.' }))),
    h('div', { class: 'grid2' },
      section('KEV exposure', kevTable(list(d.kev_exposure, 'items'))),
      section('Most vulnerable workloads', vulnTable(list(d.vulnerable_workloads, 'items')))));
}

function tile(label, value, testid, href) {
  return h('a', { class: 'tile', href, 'data-link': true, testid },
    h('span', { class: 'tile-value' }, String(value)), h('span', { class: 'tile-label' }, label));
}

function counts(rows, testid, href) {
  return table([
    ['Name', (r) => href ? link(href(r.name), r.name) : r.name],
    ['Alerts', (r) => String(r.count)],
  ], rows || [], { testid, empty: 'None.' });
}

// imageLink links an image digest to its page.
function imageLink(digest, name) {
  return digest ? link('/images/' + encodeURIComponent(digest), name || short(digest)) : (name || '');
}

const sm = (r) => r.summary || {};

function kevTable(rows) {
  return table([
    ['Image', (r) => imageLink(r.image_digest, r.target)],
    ['KEV', (r) => h('span', { class: 'kev' }, String(sm(r).kev || 0))],
    ['Critical', (r) => String(sm(r).critical || 0)],
    ['High', (r) => String(sm(r).high || 0)],
    ['Scanned', (r) => fmtTime(r.time)],
  ], rows, { testid: 'kev-exposure', rowid: (r) => 'kev-' + (r.image_digest || r.target), empty: 'No known-exploited vulnerabilities in scanned images.' });
}

function vulnTable(rows) {
  return table([
    ['Workload', (r) => r.name || short(r.id)],
    ['Kind', (r) => r.kind || ''],
    ['Image', (r) => imageLink(r.image_digest, r.image)],
    ['KEV', (r) => String(sm(r).kev || 0)],
    ['Critical', (r) => String(sm(r).critical || 0)],
    ['High', (r) => String(sm(r).high || 0)],
    ['Findings', (r) => String(sm(r).findings || 0)],
  ], rows, { testid: 'vulnerable-workloads', empty: 'No scanned workloads.' });
}
