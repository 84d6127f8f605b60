// History: the deployments of one app (newest first), with their outcome and reason.
import { h, fill } from '../dom.js';
import { get } from '../api.js';
import { bus, debounce, notify } from '../context.js';
import { time, duration } from '../format.js';
import { badge } from './parts.js';

const enc = encodeURIComponent;

export function mount(root, app) {
  const picker = h('select', { id: 'history-app', 'aria-label': 'app' });
  const envPicker = h('select', { id: 'history-env', 'aria-label': 'environment' }, h('option', { value: '' }, 'all environments'));
  const body = h('div', { id: 'history' }, h('p', { class: 'muted' }, 'loading…'));
  fill(root, h('h1', null, 'History'), h('div', { class: 'toolbar' }, picker, envPicker), body);
  let stopped = false;

  picker.addEventListener('change', () => { location.hash = `#/history/${enc(picker.value)}`; });
  envPicker.addEventListener('change', () => load());

  async function init() {
    try {
      const data = await get('/api/v1/apps');
      if (stopped) return;
      const names = data.apps.map((a) => a.name);
      if (!app && names.length) app = names[0];
      fill(picker, names.map((n) => h('option', { value: n, selected: n === app }, n)));
      for (const e of data.environments) envPicker.append(h('option', { value: e.name }, e.name));
      if (!app) {
        fill(body, h('p', { class: 'empty' }, 'No apps in ferry.yaml.'));
        return;
      }
      await load();
    } catch (e) {
      if (!stopped) notify(`Loading apps failed: ${e.message}`, 'error');
    }
  }

  async function load() {
    if (!app || stopped) return;
    const env = envPicker.value;
    try {
      const data = await get(`/api/v1/deployments?app=${enc(app)}&limit=200${env ? `&env=${enc(env)}` : ''}`);
      if (stopped) return;
      const list = data.deployments;
      if (!list.length) {
        fill(body, h('p', { class: 'empty' }, `No deployments of ${app} yet.`));
        return;
      }
      fill(body, h('table', { class: 'grid history' },
        h('thead', null, h('tr', null, ['Started', 'Env', 'Release', 'Previous', 'State', 'Strategy', 'By', 'Took', 'Reason']
          .map((t) => h('th', null, t)))),
        h('tbody', null, list.map((d) => h('tr', { dataset: { deployment: d.id } },
          h('td', null, h('a', { href: `#/deployments/${enc(d.id)}` }, time(d.created_at_ms))),
          h('td', null, d.env),
          h('td', null, h('b', null, d.release)),
          h('td', null, d.previous_release),
          h('td', null, badge(d.state)),
          h('td', null, d.strategy),
          h('td', null, d.requested_by),
          h('td', { class: 'num' }, d.finished_at_ms ? duration(d.finished_at_ms - d.created_at_ms) : ''),
          h('td', { class: 'reason-cell' }, d.reason))))));
    } catch (e) {
      if (!stopped) fill(body, h('p', { class: 'reason' }, `Loading history failed: ${e.message}`));
    }
  }

  const reload = debounce(load, 500);
  const off = bus.on((event) => {
    if (event.app === app) reload();
  });
  init();
  return () => {
    stopped = true;
    off();
    reload.cancel();
  };
}
