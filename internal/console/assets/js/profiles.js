// Profiles: per workload class, what was learned and the mode, with a
// discover/monitor/protect switch. A profile's data is internal/profile's
// Profile as Go's encoding/json writes it (capitalised keys).

import { h, replace, section, list, dl, fmtTime, errorBox } from './dom.js';
import { get, post, session } from './api.js';
import { confirmAction } from './confirm.js';

const MODES = ['discover', 'monitor', 'protect'];

export async function profilesPage(main) {
  const profiles = list(await get('/profiles'), 'profiles');
  profiles.sort((a, b) => String(a.class).localeCompare(String(b.class)) || String(a.agent_id).localeCompare(String(b.agent_id)));
  replace(main, h('h1', null, 'Profiles'),
    profiles.length ? profiles.map(profileCard) : h('p', { class: 'muted', testid: 'profiles-empty' }, 'No profile learned yet.'));
}

function profileCard(p) {
  const d = p.data || {};
  const mode = p.mode || d.Mode || '';
  const msg = h('span', { 'aria-live': 'polite', class: 'muted' });
  const canSwitch = (session() || {}).role !== 'read-only';
  const id = 'mode-' + slug(p.agent_id + '-' + p.class);
  const sel = h('select', { id, testid: 'mode-' + p.class, disabled: !canSwitch }, MODES.map((m) => h('option', { value: m, selected: m === mode }, m)));
  sel.addEventListener('change', async () => {
    const m = sel.value;
    if (!(await confirmAction(`Switch class ${p.class} on agent ${p.agent_id} to ${m}?` + (m === 'protect' ? ' Deviations will be blocked.' : ''), 'Switch'))) {
      sel.value = mode;
      return;
    }
    try {
      await post('/profiles/mode', { agent_id: p.agent_id, class: p.class, mode: m });
      msg.textContent = `mode: ${m}`;
    } catch (err) {
      sel.value = mode;
      replace(msg, errorBox(err));
    }
  });
  const trunc = d.Truncated || [];
  const items = (name, rows) => h('div', { class: 'learned' },
    h('h3', null, `${name} (${rows.length})` + (trunc.includes(name.toLowerCase()) ? ' — full, no longer learning' : '')),
    rows.length ? h('ul', { testid: `profile-${p.class}-${name.toLowerCase().replace(/[^a-z]+/g, '-')}` }, rows.map((x) => h('li', null, h('code', null, x)))) : h('p', { class: 'muted' }, 'none'));
  return h('section', { class: 'card profile', testid: 'profile-' + p.class },
    h('div', { class: 'pagehead' }, h('h2', null, p.class),
      h('label', { for: id, class: 'field inline' }, h('span', null, 'Mode'), sel), msg),
    dl([
      ['Agent', p.agent_id],
      ['Learning since', fmtTime(d.Since)],
      ['Promotes to monitor', fmtTime(d.PromoteAt)],
      ['Image digest', d.ImageDigest],
      ['Zero drift', d.ZeroDrift ? 'on' : ''],
      ['Updated', fmtTime(p.updated || d.Updated)],
    ]),
    h('div', { class: 'grid2' },
      items('Executables', (d.Executables || []).map((e) => e.Path + (e.SHA256 ? '  sha256:' + e.SHA256.slice(0, 12) : ''))),
      items('Pairs', (d.Pairs || []).map((x) => `${x.Parent} → ${x.Child}`)),
      items('Listen', (d.Listen || []).map((x) => `${x.Proto}/${x.Port}`)),
      items('Outbound', (d.Outbound || []).map((x) => `${x.Host}:${x.Port || '*'}`)),
      items('Writes', d.Writes || [])));
}

function slug(v) { return String(v).replace(/[^A-Za-z0-9_-]+/g, '_'); }
