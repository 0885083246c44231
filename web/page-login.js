// page-login.js - sign in with the OIDC provider, or break glass.

import { h, replace, message } from './dom.js';

export default {
  title: 'Sign in',
  mount(root, { cfg, reason, start, breakGlass }) {
    const err = h('div', { id: 'login-error' });
    const oidc = cfg && cfg.oidc;
    const fail = (e) => replace(err, message('error', e.message || String(e)));
    const provider = oidc ? new URL(oidc.issuer).host : null;
    const token = h('input', { type: 'password', id: 'bg-token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
    const kind = h('select', { id: 'bg-kind', name: 'kind' },
      h('option', { value: 'break-glass' }, 'BREAK_GLASS_TOKEN (sent as X-Break-Glass)'),
      h('option', { value: 'admin' }, 'ITL_ADMIN_TOKEN (audited as SYSTEM)'));
    replace(root,
      h('section', { class: 'login panel', 'aria-labelledby': 'login-title' },
        h('h1', { id: 'login-title' }, 'Sign in to attestation'),
        reason ? message('warn', `Signed out: ${reason}.`) : null,
        err,
        oidc
          ? [h('p', null, `Operators sign in with ${provider} (OpenID Connect, authorization code with PKCE). Tokens stay in this tab's memory only.`),
            h('button', { type: 'button', class: 'primary big', id: 'login-oidc', on: { click: () => start().catch(fail) } }, `Sign in with ${provider}`)]
          : message('warn', 'No OIDC provider is configured (ITL_OIDC_ISSUER); only break-glass access is possible.'),
        h('details', { class: 'breakglass-entry', open: !oidc },
          h('summary', null, 'Break-glass access (emergencies only)'),
          h('p', null, 'For when the provider is down or an operator account is the problem. Every action is audited under the break-glass identity and logged as a warning; rotate the token afterwards.'),
          h('form', {
            id: 'bg-form', autocomplete: 'off',
            on: { submit: (e) => { e.preventDefault(); breakGlass(kind.value, token.value.trim()); token.value = ''; } },
          },
          h('label', { for: 'bg-kind' }, 'Token'), kind,
          h('label', { for: 'bg-token' }, 'Value'), token,
          h('button', { type: 'submit', class: 'danger', id: 'bg-submit' }, 'Enter break-glass mode')))));
    return { refresh: async () => {} };
  },
};
