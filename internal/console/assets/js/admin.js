// Responses history, agents, the audit log and the admin page (enrollment
// tokens, API tokens, users).

import { h, replace, section, table, list, fmtTime, errorBox } from './dom.js';
import { get, post, del, query } from './api.js';
import { responsesTable } from './alerts.js';
import { confirmAction } from './confirm.js';

export async function responsesPage(main) {
  const box = h('div');
  const result = h('p', { id: 'response-result', testid: 'response-result', 'aria-live': 'polite' });
  async function load() {
    const rows = list(await get('/responses' + query({ limit: 200 })), 'responses');
    replace(box, responsesTable(rows, { onDone: load, result }));
  }
  await load();
  replace(main, h('h1', null, 'Responses'), result, box);
}

export async function agentsPage(main) {
  const r = await get('/agents');
  const agents = list(r, 'agents');
  const connected = new Set(list(r && r.connected, 'connected'));
  const isUp = (a) => a.connected === true || connected.has(a.id);
  replace(main, h('h1', null, 'Agents'), table([
    ['Host', (a) => a.hostname],
    ['ID', (a) => h('code', null, a.id)],
    ['Status', (a) => a.revoked ? 'revoked' : isUp(a) ? h('span', { class: 'ok' }, 'connected') : 'disconnected'],
    ['Version', (a) => a.version || ''],
    ['Last seen', (a) => fmtTime(a.last_seen)],
    ['Enrolled', (a) => fmtTime(a.enrolled)],
    ['Certificate expires', (a) => fmtTime(a.cert_not_after)],
    ['Records', (a) => String(a.seq || 0)],
  ], agents, { testid: 'agents-table', rowid: (a) => 'agent-' + a.id, empty: 'No agent enrolled. Create an enrollment token on the Admin page.' }));
}

export async function compliancePage(main) {
  const rows = list(await get('/compliance' + query({ limit: 1000 })), 'results');
  const counts = {};
  for (const r of rows) counts[r.status] = (counts[r.status] || 0) + 1;
  replace(main, h('h1', null, 'Compliance'),
    rows.length ? h('p', { testid: 'compliance-summary' }, ['pass', 'fail', 'warn', 'manual'].filter((k) => counts[k]).map((k) => `${k} ${counts[k]}`).join(' · ')) : null,
    table([
      ['Time', (r) => fmtTime(r.time)],
      ['Benchmark', (r) => r.benchmark],
      ['Check', (r) => r.check_id],
      ['Title', (r) => r.title],
      ['Status', (r) => h('span', { class: 'status-' + r.status }, r.status)],
      ['Agent', (r) => r.agent_id || ''],
    ], rows, { testid: 'compliance-table', rowid: (r) => 'compliance-' + r.check_id, empty: 'No compliance results reported yet.' }));
}

export async function auditPage(main) {
  const rows = list(await get('/audit' + query({ limit: 500 })), 'entries');
  replace(main, h('h1', null, 'Audit log'), table([
    ['Time', (e) => fmtTime(e.time)],
    ['Actor', (e) => e.actor],
    ['Action', (e) => e.action],
    ['Target', (e) => e.target || ''],
    ['Detail', (e) => e.detail || ''],
    ['From', (e) => e.remote || ''],
    ['Allowed', (e) => e.ok ? 'yes' : h('span', { class: 'error' }, 'refused')],
  ], rows, { testid: 'audit-table', empty: 'Nothing audited yet.' }));
}

export async function adminPage(main) {
  // Enrollment tokens.
  const enrollOut = h('div', { 'aria-live': 'polite', id: 'enroll-out' });
  const ttl = h('select', { id: 'enroll-ttl' }, [['1h', '1 hour'], ['24h', '24 hours'], ['168h', '7 days']].map(([v, t]) => h('option', { value: v, selected: v === '24h' }, t)));
  const enrollForm = h('form', { class: 'filters', id: 'enroll-form' },
    h('label', { class: 'field' }, h('span', null, 'Valid for'), ttl),
    h('button', { type: 'submit', testid: 'enroll-create' }, 'Create enrollment token'));
  enrollForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await post('/enroll-tokens', { ttl: ttl.value });
      replace(enrollOut, secret('Enrollment token (shown once; give it to `vigil agent --enroll-token`)', r.token, 'enroll-token', r.expires));
    } catch (err) { replace(enrollOut, errorBox(err)); }
  });

  // API tokens.
  const tokensBox = h('div');
  const tokenOut = h('div', { 'aria-live': 'polite' });
  const tname = h('input', { id: 'token-name', required: true, placeholder: 'ci-pipeline' });
  const trole = h('select', { id: 'token-role' }, ['read-only', 'analyst', 'admin'].map((r) => h('option', { value: r }, r)));
  const tttl = h('select', { id: 'token-ttl' }, [['', 'never expires'], ['720h', '30 days'], ['8760h', '1 year']].map(([v, t]) => h('option', { value: v }, t)));
  const tokenForm = h('form', { class: 'filters', id: 'token-form' },
    h('label', { class: 'field' }, h('span', null, 'Name'), tname),
    h('label', { class: 'field' }, h('span', null, 'Role'), trole),
    h('label', { class: 'field' }, h('span', null, 'Expires'), tttl),
    h('button', { type: 'submit', testid: 'token-create' }, 'Create API token'));
  async function loadTokens() {
    const rows = list(await get('/tokens'), 'tokens');
    replace(tokensBox, table([
      ['Name', (t) => t.name],
      ['Role', (t) => t.role],
      ['Created', (t) => `${fmtTime(t.created)} by ${t.created_by}`],
      ['Expires', (t) => fmtTime(t.expires) || 'never'],
      ['', (t) => h('button', {
        type: 'button', class: 'danger', testid: 'token-delete-' + t.name,
        onclick: async () => {
          if (!(await confirmAction(`Revoke API token ${t.name}?`, 'Revoke'))) return;
          try { await del('/tokens/' + encodeURIComponent(t.id)); } catch (err) { replace(tokenOut, errorBox(err)); }
          loadTokens();
        },
      }, 'Revoke')],
    ], rows, { testid: 'tokens-table', empty: 'No API token.' }));
  }
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await post('/tokens', { name: tname.value, role: trole.value, ttl: tttl.value || undefined });
      replace(tokenOut, secret('API token (shown once; send it as "Authorization: Bearer …")', r.token, 'api-token', r.expires));
      loadTokens();
    } catch (err) { replace(tokenOut, errorBox(err)); }
  });

  // Users.
  const usersBox = h('div');
  const userOut = h('div', { 'aria-live': 'polite' });
  const uname = h('input', { id: 'user-name', required: true, autocomplete: 'off' });
  const upass = h('input', { id: 'user-pass', type: 'password', required: true, autocomplete: 'new-password', minlength: 12 });
  const urole = h('select', { id: 'user-role' }, ['read-only', 'analyst', 'admin'].map((r) => h('option', { value: r }, r)));
  const userForm = h('form', { class: 'filters', id: 'user-form' },
    h('label', { class: 'field' }, h('span', null, 'User name'), uname),
    h('label', { class: 'field' }, h('span', null, 'Password'), upass),
    h('label', { class: 'field' }, h('span', null, 'Role'), urole),
    h('button', { type: 'submit', testid: 'user-create' }, 'Create user'));
  async function loadUsers() {
    const rows = list(await get('/users'), 'users');
    replace(usersBox, table([['Name', (u) => u.name], ['Role', (u) => u.role], ['Created', (u) => fmtTime(u.created)]], rows, { testid: 'users-table' }));
  }
  userForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await post('/users', { name: uname.value, password: upass.value, role: urole.value });
      replace(userOut, h('p', { class: 'ok' }, `User ${uname.value} created.`));
      upass.value = '';
      loadUsers();
    } catch (err) { replace(userOut, errorBox(err)); }
  });

  replace(main, h('h1', null, 'Admin'),
    section('Enroll an agent', enrollForm, enrollOut),
    section('API tokens', tokenForm, tokenOut, tokensBox),
    section('Users', userForm, userOut, usersBox));
  await Promise.all([loadTokens().catch((e) => replace(tokensBox, errorBox(e))), loadUsers().catch((e) => replace(usersBox, errorBox(e)))]);
}

function secret(label, value, testid, expires) {
  return h('div', { class: 'secret' }, h('p', null, label + (expires ? ` — expires ${fmtTime(expires)}` : '')),
    h('code', { testid, class: 'copy' }, value || ''));
}
