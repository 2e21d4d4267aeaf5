// The console's entry point: the router, the top bar and the page life
// cycle. Routes are real paths (History API); the server answers every
// non-API path with index.html, so reloads and pasted links work.

import { h, replace, errorBox } from './dom.js';
import * as api from './api.js';
import { loginPage } from './login.js';
import { dashboardPage } from './dashboard.js';
import { alertsPage, alertPage } from './alerts.js';
import { incidentsPage, incidentPage } from './incidents.js';
import { inventoryPage, imagePage } from './inventory.js';
import { profilesPage } from './profiles.js';
import { responsesPage, agentsPage, compliancePage, auditPage, adminPage } from './admin.js';

// Each route: a path pattern, the nav entry (if any) and the page. A page
// is async (main, params, query) → optional cleanup function.
const routes = [
  { re: /^\/login$/, page: loginPage, open: true },
  { re: /^\/$/, nav: 'Dashboard', href: '/', page: dashboardPage },
  { re: /^\/alerts$/, nav: 'Alerts', href: '/alerts', page: alertsPage },
  { re: /^\/alerts\/([^/]+)$/, page: alertPage, parent: '/alerts' },
  { re: /^\/incidents$/, nav: 'Incidents', href: '/incidents', page: incidentsPage },
  { re: /^\/incidents\/([^/]+)$/, page: incidentPage, parent: '/incidents' },
  { re: /^\/inventory$/, nav: 'Inventory', href: '/inventory', page: inventoryPage },
  { re: /^\/images\/(.+)$/, page: imagePage, parent: '/inventory' },
  { re: /^\/profiles$/, nav: 'Profiles', href: '/profiles', page: profilesPage },
  { re: /^\/responses$/, nav: 'Responses', href: '/responses', page: responsesPage },
  { re: /^\/agents$/, nav: 'Agents', href: '/agents', page: agentsPage },
  { re: /^\/compliance$/, nav: 'Compliance', href: '/compliance', page: compliancePage },
  { re: /^\/audit$/, nav: 'Audit', href: '/audit', page: auditPage, admin: true },
  { re: /^\/admin$/, nav: 'Admin', href: '/admin', page: adminPage, admin: true },
];

let cleanup = null;
let generation = 0;

export function navigate(path, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

async function render() {
  const gen = ++generation;
  if (cleanup) { try { cleanup(); } catch { /* the old page is gone anyway */ } }
  cleanup = null;
  const main = document.getElementById('main');
  const path = location.pathname;
  const route = routes.find((r) => r.re.test(path));
  let sess = api.session();
  if (route && !route.open && !sess && await api.resume()) {
    if (gen !== generation) return;
    sess = api.session();
  }
  if (!route) {
    topbar(null);
    replace(main, h('h1', null, 'Not found'), h('p', null, 'No page at ', h('code', null, path), '.'));
    return;
  }
  if (!route.open && !sess) {
    navigate('/login?next=' + encodeURIComponent(path + location.search), { replace: true });
    return;
  }
  topbar(route.open ? null : route);
  const params = route.re.exec(path).slice(1).map(decodeURIComponent);
  replace(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const c = await route.page(main, params, new URLSearchParams(location.search), { navigate, stale: () => gen !== generation });
    if (gen === generation) cleanup = c || null;
    else if (c) c();
  } catch (err) {
    if (gen !== generation || err.status === 401) return;
    replace(main, h('h1', null, 'Error'), errorBox(err));
  }
}

function topbar(route) {
  const bar = document.getElementById('topbar');
  const sess = api.session();
  bar.hidden = !route || !sess;
  if (bar.hidden) return;
  const nav = document.getElementById('nav');
  const current = route.href || route.parent;
  replace(nav, routes.filter((r) => r.nav && (!r.admin || sess.role === 'admin')).map((r) =>
    h('a', { href: r.href, 'data-link': true, testid: 'nav-' + r.nav.toLowerCase(), 'aria-current': r.href === current ? 'page' : null }, r.nav)));
  document.getElementById('whoami').textContent = `${sess.user} (${sess.role})`;
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api.logout(); } catch { /* the session is dropped locally either way */ }
  navigate('/login', { replace: true });
});

api.setUnauthorizedHandler(() => {
  if (location.pathname !== '/login') navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
});

window.addEventListener('popstate', render);
render();
