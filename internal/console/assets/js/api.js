// The REST API client. The session is the HttpOnly cookie the server sets
// at login; the CSRF token from the login answer is kept in sessionStorage
// (gone with the tab) and sent as X-Vigil-CSRF on every mutating call.
// A 401 from any call sends the user back to the login page.

const BASE = '/api/v1';
const KEY = 'vigil.session';

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};

// setUnauthorizedHandler sets what happens on a 401 (the router's login redirect).
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
}

function setSession(v) {
  if (v) sessionStorage.setItem(KEY, JSON.stringify(v));
  else sessionStorage.removeItem(KEY);
}

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const s = session();
  if (method !== 'GET' && method !== 'HEAD' && s && s.csrf) headers['X-Vigil-CSRF'] = s.csrf;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const opts = { method, headers, body: payload, credentials: 'same-origin' };
  let res;
  try {
    res = await fetch(BASE + path, opts);
  } catch (err) {
    // A network blip (the browser saw an interface change): a read is
    // tried once more; a change is not, it may have gone through.
    if (method !== 'GET') throw err;
    await new Promise((r) => setTimeout(r, 300));
    res = await fetch(BASE + path, opts);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (res.status === 401 && path !== '/login' && path !== '/me') {
    setSession(null);
    onUnauthorized();
    throw new APIError(401, 'not logged in');
  }
  if (!res.ok) {
    const msg = (data && (data.error || data.message)) || res.statusText || 'request failed';
    throw new APIError(res.status, `${method} ${path}: ${res.status} ${msg}`);
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const del = (path) => request('DELETE', path);

export async function login(username, password) {
  const r = await request('POST', '/login', { username, password });
  setSession({ user: r.user || username, role: r.role || '', csrf: r.csrf || '' });
  return r;
}

// resume picks up a session the browser already has (a new tab: the
// cookie is shared, sessionStorage is not) from GET /me. It reports
// whether there is one.
export async function resume() {
  try {
    const r = await request('GET', '/me');
    if (!r || r.kind !== 'session') return false;
    setSession({ user: r.user, role: r.role, csrf: r.csrf || '' });
    return true;
  } catch {
    return false;
  }
}

export async function logout() {
  try { await post('/logout'); } finally { setSession(null); }
}

// query builds "?a=1&b=2" from the non-empty values of o.
export function query(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const q = p.toString();
  return q ? '?' + q : '';
}
