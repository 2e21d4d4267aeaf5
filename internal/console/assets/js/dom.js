// DOM helpers. Everything that comes from the API is put into the page as
// text: h() turns string children into text nodes and never parses markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an element: h('a', {href: '/x', class: 'c', testid: 't',
// onclick: fn}, 'text', child). Attributes starting with "on" are event
// listeners; "testid" becomes data-testid; null/undefined/false values
// are skipped; children may be strings, numbers, nodes or arrays of them.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'testid') {
      el.setAttribute('data-testid', v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace empties el and puts children in it.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// link is an in-app link the router handles without a page load.
export function link(href, text, attrs = {}) {
  return h('a', { href, 'data-link': true, ...attrs }, text);
}

// table builds a table: cols are [header, cell(row) → node|string]; rows
// get data-testid rowid(row) when given.
export function table(cols, rows, { testid, rowid, empty = 'Nothing yet.' } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'muted', testid: testid && testid + '-empty' }, empty);
  return h('table', { testid },
    h('thead', null, h('tr', null, cols.map(([name]) => h('th', { scope: 'col' }, name)))),
    h('tbody', null, rows.map((r) =>
      h('tr', { testid: rowid ? rowid(r) : null }, cols.map(([, cell]) => h('td', null, cell(r)))))));
}

// dl builds a description list from [term, value] pairs, skipping empty values.
export function dl(pairs, attrs = {}) {
  return h('dl', attrs, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v, testid]) => [h('dt', null, k), h('dd', { testid }, v)]));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}

// The Falco priorities, most severe first; the index is store.Alert.Severity.
export const PRIORITIES = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'informational', 'debug'];

export function priority(p) {
  const name = (p || '').toLowerCase();
  return h('span', { class: 'sev sev-' + (PRIORITIES.includes(name) ? name : 'unknown') }, name || '?');
}

export function fmtTime(t) {
  if (!t || t.startsWith('0001-')) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function short(id, n = 12) {
  id = String(id || '');
  return id.startsWith('sha256:') ? 'sha256:' + id.slice(7, 7 + n) : id.slice(0, n);
}

// list reads an API answer that is either an array or {key: array}.
export function list(v, key) {
  if (Array.isArray(v)) return v;
  if (v && Array.isArray(v[key])) return v[key];
  return [];
}

export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert', testid: 'error' }, String(err && err.message || err));
}
