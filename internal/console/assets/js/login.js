// The login page.

import { h, replace, errorBox } from './dom.js';
import * as api from './api.js';

export async function loginPage(main, _params, q, { navigate }) {
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { id: 'login-error', 'aria-live': 'polite' });
  const form = h('form', { id: 'login-form', class: 'login card', testid: 'login-form' },
    h('h1', null, 'Vigil'),
    h('p', { class: 'muted' }, 'Sign in to the console.'),
    h('label', { for: 'login-user' }, 'User name'), user,
    h('label', { for: 'login-pass' }, 'Password'), pass,
    msg,
    h('button', { type: 'submit', id: 'login-submit', testid: 'login-submit' }, 'Log in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(msg);
    try {
      await api.login(user.value, pass.value);
      let next = q.get('next') || '/';
      if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/login')) next = '/';
      navigate(next, { replace: true });
    } catch (err) {
      replace(msg, errorBox(err.status === 401 ? 'Wrong user name or password.' : err));
    }
  });
  replace(main, form);
  user.focus();
}
