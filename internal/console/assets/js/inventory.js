// Inventory: hosts, containers, images (with their vulnerability counts,
// KEV first), Kubernetes workloads and functions; an image's page with its
// findings and the SBOM download.

import { h, replace, section, table, link, list, dl, fmtTime, short } from './dom.js';
import { get, query } from './api.js';

const KINDS = [['host', 'Hosts'], ['container', 'Containers'], ['image', 'Images'], ['k8s_workload', 'Kubernetes workloads'], ['function', 'Functions']];

export async function inventoryPage(main, _p, q, { navigate }) {
  const kind = KINDS.some(([k]) => k === q.get('kind')) ? q.get('kind') : 'image';
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Inventory kind' }, KINDS.map(([k, label]) =>
    h('a', { href: '/inventory?kind=' + k, 'data-link': true, testid: 'inv-tab-' + k, 'aria-current': k === kind ? 'page' : null }, label)));
  const assets = list(await get('/inventory' + query({ kind })), 'assets');
  let body;
  if (kind === 'image') {
    const scans = list(await get('/scans' + query({ limit: 1000 })), 'scans');
    body = imagesTable(assets, scans);
  } else {
    body = table([
      ['Name', (a) => a.name || short(a.id, 24)],
      ['ID', (a) => h('code', null, short(a.id, 24))],
      ['Details', (a) => details(a.data)],
      ['Agent', (a) => short(a.agent_id, 18)],
      ['Last seen', (a) => fmtTime(a.last_seen)],
      ['State', (a) => a.gone ? 'gone' : 'present'],
    ], assets, { testid: 'inventory-table', rowid: (a) => 'asset-' + a.id, empty: 'None reported yet.' });
  }
  replace(main, h('h1', null, 'Inventory'), tabs, body);
}

// imagesTable lists the images, each with its newest scan's counts, the
// ones with known-exploited vulnerabilities first. Scans of images no
// agent reported as an asset (CI scans) are listed too.
function imagesTable(assets, scans) {
  const newest = new Map();
  for (const s of scans) if (s.image_digest && !newest.has(s.image_digest)) newest.set(s.image_digest, s);
  const rows = assets.map((a) => ({ digest: a.id, name: a.name, asset: a, scan: newest.get(a.id) }));
  const seen = new Set(assets.map((a) => a.id));
  for (const [d, s] of newest) if (!seen.has(d)) rows.push({ digest: d, name: s.target, scan: s });
  const sum = (r) => (r.scan && r.scan.summary) || {};
  rows.sort((x, y) => (sum(y).kev || 0) - (sum(x).kev || 0) || (sum(y).critical || 0) - (sum(x).critical || 0) ||
    (sum(y).high || 0) - (sum(x).high || 0) || String(x.name).localeCompare(String(y.name)));
  return table([
    ['Image', (r) => link('/images/' + encodeURIComponent(r.digest), r.name || short(r.digest, 16), { testid: 'image-link' })],
    ['Digest', (r) => h('code', null, short(r.digest, 16))],
    ['KEV', (r) => h('span', { class: sum(r).kev ? 'kev' : '' }, String(sum(r).kev || 0))],
    ['Critical', (r) => String(sum(r).critical || 0)],
    ['High', (r) => String(sum(r).high || 0)],
    ['Medium', (r) => String(sum(r).medium || 0)],
    ['Low', (r) => String(sum(r).low || 0)],
    ['Packages', (r) => String(sum(r).packages || 0)],
    ['Scanned', (r) => r.scan ? fmtTime(r.scan.time) : 'not scanned'],
  ], rows, { testid: 'images-table', rowid: (r) => 'image-' + r.digest, empty: 'No images reported or scanned yet.' });
}

function details(data) {
  if (!data || typeof data !== 'object') return '';
  return Object.entries(data).filter(([, v]) => v !== '' && v !== null && typeof v !== 'object')
    .slice(0, 6).map(([k, v]) => `${k}: ${v}`).join(' · ');
}

export async function imagePage(main, [digest]) {
  const r = await get('/images/' + encodeURIComponent(digest));
  const scan = r.scan || {};
  const asset = r.asset || {};
  const findings = list(r.findings || scan.findings, 'findings');
  const sm = scan.summary || r.summary || {};
  const name = asset.name || scan.target || digest;
  replace(main,
    h('div', { class: 'pagehead' }, h('h1', { testid: 'image-name' }, name),
      h('a', { href: '/api/v1/images/' + encodeURIComponent(digest) + '/sbom', download: 'sbom.cdx.json', class: 'button', testid: 'sbom-download' }, 'Download SBOM (CycloneDX)')),
    section('Image', dl([
      ['Digest', h('code', null, digest)],
      ['Scanned', fmtTime(scan.time)],
      ['Scan source', scan.source],
      ['Packages', String(sm.packages ?? '')],
      ['Findings', `${sm.findings || 0} (critical ${sm.critical || 0}, high ${sm.high || 0}, medium ${sm.medium || 0}, low ${sm.low || 0}, KEV ${sm.kev || 0})`, 'image-summary'],
    ])),
    section('Vulnerabilities', table([
      ['KEV', (f) => f.kev ? h('span', { class: 'kev' }, 'KEV') : ''],
      ['ID', (f) => f.vuln_id],
      ['Severity', (f) => h('span', { class: 'vsev vsev-' + String(f.severity).toLowerCase() }, f.severity)],
      ['Package', (f) => `${f.package} ${f.version}`],
      ['Fixed in', (f) => f.fixed_version || ''],
      ['CVSS', (f) => f.cvss ? f.cvss.toFixed(1) : ''],
      ['EPSS', (f) => f.epss ? (f.epss * 100).toFixed(1) + '%' : ''],
      ['Summary', (f) => f.summary || ''],
    ], findings, { testid: 'findings-table', rowid: (f) => 'finding-' + f.vuln_id + '-' + f.package, empty: 'No vulnerabilities found.' })));
}
