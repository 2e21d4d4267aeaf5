// Incidents: the list, and an incident's page with its technique chain
// and its alerts.

import { h, replace, section, table, link, list, dl, priority, fmtTime, short, PRIORITIES } from './dom.js';
import { get, query } from './api.js';
import { alertsTable, RANGES } from './alerts.js';

export async function incidentsPage(main, _p, q, { navigate }) {
  const f = { since: q.get('since') || '168h', severity: q.get('severity') || '', workload: q.get('workload') || '' };
  const limit = Math.min(1000, Math.max(1, parseInt(q.get('limit'), 10) || 50));
  const form = h('form', { class: 'filters', id: 'incident-filters' },
    field('Time', h('select', { id: 'i-since', name: 'since' }, RANGES.map(([v, t]) => h('option', { value: v, selected: v === f.since }, t)))),
    field('At least', h('select', { id: 'i-severity', name: 'severity' }, h('option', { value: '' }, 'any priority'),
      PRIORITIES.map((p) => h('option', { value: p, selected: p === f.severity }, p)))),
    field('Workload', h('input', { id: 'i-workload', name: 'workload', value: f.workload, placeholder: 'container ID or host:NAME' })),
    h('button', { type: 'submit', id: 'i-apply' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate('/incidents' + query({ ...Object.fromEntries(new FormData(form).entries()), limit: limit === 50 ? '' : limit }));
  });
  const body = h('div', { id: 'incidents-body' });
  const cursors = [''];
  let next = '';
  const older = h('button', { type: 'button', id: 'inc-older' }, 'Older →');
  const newer = h('button', { type: 'button', id: 'inc-newer' }, '← Newer');
  async function load() {
    const r = await get('/incidents' + query({ ...f, since: f.since === 'all' ? '' : f.since, limit, before: cursors[cursors.length - 1] }));
    next = (r && r.next) || '';
    older.disabled = !next;
    newer.disabled = cursors.length <= 1;
    replace(body, table([
      ['Last seen', (i) => fmtTime(i.last_seen)],
      ['Priority', (i) => priority(i.priority)],
      ['Incident', (i) => link('/incidents/' + encodeURIComponent(i.id), i.title || short(i.id, 18), { testid: 'incident-link' })],
      ['Workload', (i) => short(i.workload_key, 24)],
      ['Host', (i) => i.host],
      ['Alerts', (i) => String(i.alert_count)],
      ['Techniques', (i) => (i.mitre_techniques || []).join(' → ')],
    ], list(r, 'incidents'), { testid: 'incidents-table', rowid: (i) => 'incident-row-' + i.id, empty: 'No incidents match.' }));
  }
  older.addEventListener('click', () => { if (next) { cursors.push(next); load(); } });
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  await load();
  replace(main, h('h1', null, 'Incidents'), form, body, h('div', { class: 'pager' }, newer, older));
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

export async function incidentPage(main, [id]) {
  const r = await get('/incidents/' + encodeURIComponent(id));
  const inc = r.incident || r;
  let alerts = list(r.alerts, 'alerts');
  if (!r.alerts) alerts = list(await get('/alerts' + query({ incident: id, since: '', limit: 500 })), 'alerts');
  const chain = inc.mitre_techniques || [];
  replace(main,
    h('div', { class: 'pagehead' }, h('h1', { testid: 'incident-title' }, inc.title || 'Incident ' + short(inc.id, 18)), priority(inc.priority)),
    section('Technique chain', chain.length
      ? h('ol', { class: 'chain', testid: 'technique-chain' }, chain.map((t) => h('li', null, t)))
      : h('p', { class: 'muted' }, 'No MITRE technique tagged.')),
    section('Incident', dl([
      ['First seen', fmtTime(inc.first_seen)],
      ['Last seen', fmtTime(inc.last_seen)],
      ['Alerts', String(inc.alert_count)],
      ['Workload', inc.workload_key],
      ['Host', inc.host],
      ['Tactics', (inc.mitre_tactics || []).join(', ')],
    ])),
    section('Alerts', alertsTable(alerts, 'incident-alerts')));
}
