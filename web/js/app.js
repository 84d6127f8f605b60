// The dashboard's entry point: sign-in with an API token, the hash router
// (#/, #/deployments/ID, #/history/APP, #/audit), and the live event stream that
// tells the open view to refresh.
import { h, fill } from './dom.js';
import { session, call, get, onUnauthorized, EventStream } from './api.js';
import { bus, state, notify } from './context.js';
import { setFinalStates } from './format.js';
import * as overview from './views/overview.js';
import * as deployment from './views/deployment.js';
import * as history from './views/history.js';
import * as audit from './views/audit.js';
import * as slo from './views/slo.js';

const ROUTES = [
  { pattern: /^#?\/?$/, view: overview, nav: 'overview' },
  { pattern: /^#\/deployments\/([^/?]+)$/, view: deployment, nav: 'overview' },
  { pattern: /^#\/history(?:\/([^/?]+))?$/, view: history, nav: 'history' },
  { pattern: /^#\/audit$/, view: audit, nav: 'audit' },
  { pattern: /^#\/slo(?:\/([^/?]+)\/([^/?]+))?$/, view: slo, nav: 'slo' },
];

const main = document.getElementById('main');
let cleanup = null;
let stream = null;

function unmount() {
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  cleanup = null;
}

function route() {
  if (!session.token) return;
  unmount();
  const hash = location.hash || '#/';
  for (const r of ROUTES) {
    const m = hash.match(r.pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a'))
      a.classList.toggle('active', a.dataset.view === r.nav);
    const root = h('div', { class: 'view' });
    fill(main, root);
    const params = m.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
    cleanup = r.view.mount(root, ...params) || null;
    return;
  }
  fill(main, h('div', { class: 'view' }, h('h1', null, 'Not found'),
               h('p', null, 'No page at ', h('code', null, hash), '. ', h('a', { href: '#/' }, 'Overview'))));
}

function setStreamState(s) {
  const el = document.getElementById('stream-state');
  el.className = `stream-state ${s}`;
  el.textContent = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting…' : 'stream down';
  el.dataset.state = s;
}

function showLogin(message) {
  unmount();
  if (stream) stream.stop();
  stream = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('session').hidden = true;
  const input = h('input', {
    id: 'token', type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'ferry_…', required: true, 'aria-label': 'API token',
  });
  const error = h('p', { class: 'login-error', role: 'alert' }, message || '');
  const button = h('button', { type: 'submit', class: 'primary', id: 'login-button' }, 'Sign in');
  const form = h('form', { class: 'login card', id: 'login-form' },
    h('h1', null, 'Sign in to ferry'),
    h('label', { for: 'token' }, 'API token'),
    input,
    button,
    error,
    h('p', { class: 'hint' }, 'Create one with ',
      h('code', null, 'ferry token create --name NAME --role viewer|deployer|approver|admin'),
      '. It is kept in this tab only (sessionStorage) and sent as a bearer token.'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    error.textContent = '';
    try {
      const who = await call('GET', '/api/v1/whoami', undefined, token);
      session.token = token;
      await start(who);
    } catch (err) {
      error.textContent = err.status === 401 ? `Not signed in: ${err.message}` : err.message;
    } finally {
      button.disabled = false;
    }
  });
  fill(main, form);
  input.focus();
}

async function start(who) {
  state.principal = who;
  try {
    const meta = await get('/api/v1/dashboard');
    state.latencyBuckets = meta.latency_buckets_ms || [];
    setFinalStates(meta.final_states);
  } catch (e) {
    state.latencyBuckets = [];
    notify(`dashboard settings unavailable (p95 and finished states will not be shown): ${e.message}`, 'error');
  }
  document.getElementById('nav').hidden = false;
  document.getElementById('session').hidden = false;
  fill(document.getElementById('whoami'), who.name, ' · ', h('span', { class: 'role' }, who.role));
  if (stream) stream.stop();
  stream = new EventStream((event) => bus.emit(event), setStreamState);
  setStreamState('reconnecting');
  stream.start();
  route();
}

function signOut(message) {
  session.token = '';
  state.principal = null;
  showLogin(message);
}

onUnauthorized((err) => signOut(`Signed out: ${err.message}`));
document.getElementById('logout').addEventListener('click', () => signOut(''));
window.addEventListener('hashchange', () => {
  notify('');
  route();
});

(async () => {
  if (!session.token) {
    showLogin('');
    return;
  }
  try {
    await start(await get('/api/v1/whoami'));
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);  // 401 already signed out
  }
})();
