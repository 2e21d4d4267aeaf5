// Incidents: the list, and an incident's page with its technique chain
// and its alerts.

import { h, replace, section, table, link, list, dl, priority, fmtTime, short } from './dom.js';
import { get, query } from './api.js';
import { alertsTable } from './alerts.js';

export async function incidentsPage(main) {
  const rows = list(await get('/incidents' + query({ limit: 200 })), 'incidents');
  replace(main, h('h1', null, 'Incidents'), table([
    ['Last seen', (i) => fmtTime(i.last_seen)],
    ['Priority', (i) => priority(i.priority)],
    ['Incident', (i) => link('/incidents/' + encodeURIComponent(i.id), i.title || short(i.id, 18), { testid: 'incident-link' })],
    ['Workload', (i) => short(i.workload_key, 24)],
    ['Host', (i) => i.host],
    ['Alerts', (i) => String(i.alert_count)],
    ['Techniques', (i) => (i.mitre_techniques || []).join(' → ')],
  ], rows, { testid: 'incidents-table', rowid: (i) => 'incident-row-' + i.id, empty: 'No incidents.' }));
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
