// The alerts list (filters, paging, auto-refresh) and an alert's page
// (rule, MITRE, output, process tree, workload, raw event, responses and
// the buttons to respond).

import { h, replace, section, table, link, list, dl, priority, fmtTime, short, errorBox, PRIORITIES } from './dom.js';
import { get, post, query, session } from './api.js';
import { confirmAction } from './confirm.js';

const REFRESH_MS = 5000;
export const RANGES = [['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['168h', 'Last 7 days'], ['720h', 'Last 30 days'], ['all', 'All time']];

export async function alertsPage(main, _p, q, { navigate }) {
  const f = {
    since: q.has('since') ? q.get('since') : '24h',
    severity: q.get('severity') || '',
    workload: q.get('workload') || '',
    rule: q.get('rule') || '',
  };
  // The page size: 50, or ?limit= (1-1000) from the address.
  const limit = Math.min(1000, Math.max(1, parseInt(q.get('limit'), 10) || 50));
  const cursors = q.get('before') ? [q.get('before')] : [''];
  const form = h('form', { class: 'filters', id: 'alert-filters', testid: 'alert-filters' },
    field('Time', h('select', { id: 'f-since', name: 'since' }, RANGES.map(([v, t]) => h('option', { value: v, selected: v === f.since }, t)))),
    field('At least', h('select', { id: 'f-severity', name: 'severity' },
      h('option', { value: '' }, 'any priority'),
      PRIORITIES.map((p) => h('option', { value: p, selected: p === f.severity }, p)))),
    field('Workload', h('input', { id: 'f-workload', name: 'workload', value: f.workload, placeholder: 'container, image, pod, host…' })),
    field('Rule', h('input', { id: 'f-rule', name: 'rule', value: f.rule, placeholder: 'rule name' })),
    h('button', { type: 'submit', id: 'f-apply' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    navigate('/alerts' + query({ ...Object.fromEntries(fd.entries()), limit: limit === 50 ? '' : limit }));
  });
  form.querySelector('#f-since').addEventListener('change', () => form.requestSubmit());
  form.querySelector('#f-severity').addEventListener('change', () => form.requestSubmit());

  const body = h('div', { id: 'alerts-body', 'aria-live': 'polite' });
  const status = h('span', { class: 'muted', id: 'alerts-status' });
  const older = h('button', { type: 'button', id: 'page-older', testid: 'page-older' }, 'Older →');
  const newer = h('button', { type: 'button', id: 'page-newer', testid: 'page-newer' }, '← Newer');
  let next = '';
  let timer = null;

  async function load() {
    const before = cursors[cursors.length - 1];
    try {
      const r = await get('/alerts' + query({ ...f, since: f.since === 'all' ? '' : f.since, before, limit }));
      const alerts = list(r, 'alerts');
      next = (r && r.next) || '';
      replace(body, alertsTable(alerts));
      older.disabled = !next;
      newer.disabled = cursors.length <= 1;
      status.textContent = `${alerts.length} shown · updated ${new Date().toLocaleTimeString()}` + (cursors.length > 1 ? ' · auto-refresh paused on older pages' : '');
    } catch (err) {
      if (err.status !== 401) replace(body, errorBox(err));
    }
  }
  older.addEventListener('click', () => { if (next) { cursors.push(next); load(); } });
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });

  replace(main, h('div', { class: 'pagehead' }, h('h1', null, 'Alerts'), status), form, body,
    h('div', { class: 'pager' }, newer, older));
  await load();
  // Only the newest page refreshes by itself: an older page stays put.
  timer = setInterval(() => { if (cursors.length === 1 && !document.hidden) load(); }, REFRESH_MS);
  return () => clearInterval(timer);
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

export function alertsTable(alerts, testid = 'alerts-table') {
  return table([
    ['Time', (a) => fmtTime(a.time)],
    ['Priority', (a) => priority(a.priority)],
    ['Rule', (a) => link('/alerts/' + encodeURIComponent(a.id), a.rule, { testid: 'alert-link' })],
    ['Workload', workloadName],
    ['Host', (a) => a.host],
    ['Count', (a) => String(a.count || 1)],
    ['Output', (a) => h('span', { class: 'output' }, a.output)],
  ], alerts, { testid, rowid: (a) => 'alert-row-' + a.id, empty: 'No alerts match.' });
}

export function workloadName(a) {
  if (a.pod) return `${a.namespace ? a.namespace + '/' : ''}${a.pod}`;
  if (a.container_name) return a.container_name;
  if (a.container_id) return short(a.container_id);
  return 'host';
}

// The alert page.

const ACTIONS = [
  ['kill', 'Kill process', 'Kill the process'],
  ['freeze', 'Freeze', 'Freeze every process of the container'],
  ['unfreeze', 'Unfreeze', 'Thaw the container'],
  ['isolate', 'Isolate', 'Cut the container off the network'],
  ['unisolate', 'Unisolate', 'Give the container its network back'],
  ['stop', 'Stop', 'Stop the container'],
];

export async function alertPage(main, [id]) {
  const r = await get('/alerts/' + encodeURIComponent(id));
  // The answer is the alert with the response records taken on it under
  // "actions".
  const a = r;
  const raw = a.raw || {};
  const ev = raw.event || {};
  const wl = ev.workload || {};
  const records = Array.isArray(r.actions) ? r.actions : null;
  const result = h('p', { id: 'response-result', testid: 'response-result', 'aria-live': 'polite' });
  const recordsBox = h('div', { id: 'response-records' });
  const takenBox = h('div', { id: 'alert-taken' }, takenList(a.responses));

  async function refreshRecords() {
    try {
      const r2 = await get('/alerts/' + encodeURIComponent(a.id));
      replace(recordsBox, responsesTable(r2.actions || [], { onDone: refreshRecords, result }));
      replace(takenBox, takenList(r2.responses));
    } catch (err) {
      if (err.status !== 401) replace(recordsBox, errorBox(err));
    }
  }

  const canRespond = (session() || {}).role !== 'read-only';
  const inContainer = !!(a.container_id || wl.container_id);
  const buttons = h('div', { class: 'buttons', id: 'respond-buttons' }, ACTIONS.map(([action, label, what]) => {
    const needsContainer = action !== 'kill';
    return h('button', {
      type: 'button', id: 'respond-' + action, testid: 'respond-' + action,
      class: action === 'kill' || action === 'stop' ? 'danger' : null,
      disabled: !canRespond || (needsContainer && !inContainer),
      title: needsContainer && !inContainer ? 'Only for an alert in a container' : what,
      onclick: async () => {
        const target = needsContainer ? `container ${a.container_name || short(a.container_id || wl.container_id)}` : `process ${ev.process && ev.process.pid} (${ev.process && (ev.process.exe || ev.process.name)})`;
        if (!(await confirmAction(`${what}: ${target} on ${a.host}?`, label))) return;
        result.textContent = `${action}: running…`;
        result.className = '';
        try {
          const resp = await post('/responses', { alert_id: a.id, action });
          showResult(result, resp);
        } catch (err) {
          result.textContent = `${action}: ${err.message}`;
          result.className = 'error';
        }
        refreshRecords();
      },
    }, label);
  }));

  replace(main,
    h('div', { class: 'pagehead' }, h('h1', { testid: 'alert-rule' }, a.rule), priority(a.priority)),
    h('p', { class: 'output big', testid: 'alert-output' }, a.output),
    h('div', { class: 'grid2' },
      section('Alert', dl([
        ['Time', fmtTime(a.time)],
        ['Last seen', fmtTime(a.last_seen)],
        ['Count', String(a.count || 1), 'alert-count'],
        ['Priority', a.priority],
        ['Source', a.source],
        ['MITRE tactics', (a.mitre_tactics || []).join(', '), 'alert-tactics'],
        ['MITRE techniques', (a.mitre_techniques || []).join(', '), 'alert-techniques'],
        ['Incident', a.incident_id ? link('/incidents/' + encodeURIComponent(a.incident_id), short(a.incident_id, 18)) : ''],
        ['Agent', a.agent_id],
      ])),
      section('Workload', dl([
        ['Host', a.host || wl.host, 'wl-host'],
        ['Container ID', a.container_id || wl.container_id, 'wl-container-id'],
        ['Container name', a.container_name || wl.container_name, 'wl-container-name'],
        ['Image', a.image || wl.image, 'wl-image'],
        ['Image digest', wl.image_digest ? link('/images/' + encodeURIComponent(wl.image_digest), short(wl.image_digest, 16)) : ''],
        ['Pod', a.pod || wl.pod_name, 'wl-pod'],
        ['Namespace', a.namespace || wl.pod_namespace, 'wl-namespace'],
        ['Class', a.class, 'wl-class'],
        ['Runtime', wl.runtime],
      ], { testid: 'workload' }))),
    section('Process tree', processTree(ev)),
    section('Respond', buttons, result,
      h('h3', null, 'Responses taken'),
      takenBox,
      recordsBox),
    section('Raw event', h('pre', { class: 'raw', testid: 'raw-event' }, JSON.stringify(raw, null, 2))));
  if (records) replace(recordsBox, responsesTable(records, { onDone: refreshRecords, result }));
  else await refreshRecords();
}

// takenList shows the alert's own response notes ("freeze: done"), as the
// agent or the server appended them.
function takenList(rs) {
  return (rs || []).length ? h('ul', { testid: 'alert-responses' }, rs.map((x) => h('li', null, x))) : null;
}

function showResult(el, resp) {
  const rec = resp.response || resp;
  const action = rec.action || '';
  el.textContent = `${action}: ${rec.outcome || 'unknown'}` + (rec.error ? ` (${rec.error})` : '');
  el.className = rec.outcome === 'done' ? 'ok' : rec.outcome === 'failed' ? 'error' : '';
}

// processTree lists the ancestors (oldest first), the parent and the
// process, each with pid, executable, command line and user.
export function processTree(ev) {
  const chain = [];
  const anc = (ev.ancestors || []).slice().reverse(); // the event lists the nearest first
  for (const p of anc) chain.push({ role: 'ancestor', p });
  if (ev.parent_process) chain.push({ role: 'parent', p: ev.parent_process });
  if (ev.process) chain.push({ role: 'process', p: ev.process });
  if (!chain.length) return h('p', { class: 'muted' }, 'The event carries no process.');
  return h('ol', { class: 'ptree', testid: 'process-tree' }, chain.map(({ role, p }, i) => {
    const li = h('li', { class: 'pnode pnode-' + role, testid: 'ptree-' + role },
      h('span', { class: 'prole' }, i ? '└ ' + role : role),
      h('span', { class: 'ppid' }, 'pid ' + p.pid),
      p.vpid && p.vpid !== p.pid ? h('span', { class: 'pvpid', title: 'pid in the container' }, `(${p.vpid} in container)`) : null,
      h('code', { class: 'pexe' }, p.exe || p.name || '?'),
      h('code', { class: 'pcmd' }, p.cmd_line || (p.args || []).join(' ') || ''),
      p.user || p.uid !== undefined ? h('span', { class: 'puser' }, 'user ' + (p.user || p.uid)) : null);
    li.style.marginLeft = `${i * 1.25}rem`; // CSSOM, allowed by the CSP
    return li;
  }));
}

// responsesTable lists response records with an Undo button on the ones
// that can be undone (a freeze or isolate that was done).
export function responsesTable(rows, { onDone, result } = {}) {
  const canRespond = (session() || {}).role !== 'read-only';
  return table([
    ['Time', (r) => fmtTime(r.time)],
    ['Action', (r) => r.action],
    ['Outcome', (r) => h('span', { class: 'outcome-' + r.outcome, testid: 'outcome' }, r.outcome + (r.undone ? ' (undone)' : ''))],
    ['Target', (r) => short(r.target, 16)],
    ['Actor', (r) => r.actor],
    ['Error', (r) => r.error || ''],
    ['', (r) => undoable(r) && canRespond ? h('button', {
      type: 'button', testid: 'undo-' + r.id, class: 'undo',
      onclick: async () => {
        if (!(await confirmAction(`Undo ${r.action} on ${short(r.target, 16)}?`, 'Undo'))) return;
        try {
          const resp = await post('/responses/' + encodeURIComponent(r.id) + '/undo');
          if (result) showResult(result, resp);
        } catch (err) {
          if (result) { result.textContent = `undo: ${err.message}`; result.className = 'error'; }
        }
        if (onDone) onDone();
      },
    }, 'Undo') : ''],
  ], rows, { testid: 'responses-table', rowid: (r) => 'response-' + r.id, empty: 'No response taken.' });
}

function undoable(r) {
  return (r.action === 'freeze' || r.action === 'isolate') && r.outcome === 'done' && !r.undone;
}
