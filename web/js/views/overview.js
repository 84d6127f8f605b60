// Overview: deployments in progress with their live traffic split, and every app with
// the release each environment runs.
import { h, fill } from '../dom.js';
import { get } from '../api.js';
import { bus, debounce, notify, releaseColors } from '../context.js';
import { time } from '../format.js';
import { trafficSplit } from '../stats.js';
import { badge, splitBar } from './parts.js';

const REFRESH_MS = 10000;
const SPLIT_POLL_MS = 1000;

export function mount(root) {
  const live = h('section', { class: 'live-list', id: 'live-deployments' });
  const apps = h('section', { class: 'apps', id: 'apps' });
  fill(root, h('h1', null, 'Overview'), h('h2', null, 'Deployments in progress'), live,
       h('h2', null, 'Apps'), apps);
  let active = [];          // deployments shown in `live`
  const splitEls = new Map();  // deployment id -> element holding its split bar
  let stopped = false;

  async function load() {
    let data;
    try {
      data = await get('/api/v1/apps');
    } catch (e) {
      if (!stopped) notify(`Loading apps failed: ${e.message}`, 'error');
      return;
    }
    if (stopped) return;
    active = data.apps.flatMap((a) => a.active || []);
    renderLive();
    renderApps(data);
    pollSplits();
  }

  function renderLive() {
    splitEls.clear();
    if (!active.length) {
      fill(live, h('p', { class: 'empty' }, 'No deployment in progress.'));
      return;
    }
    fill(live, active.map((d) => {
      const step = d.plan && d.plan[d.current_step];
      const split = h('div', { class: 'split-holder' }, h('span', { class: 'muted' }, 'traffic: loading…'));
      splitEls.set(d.id, split);
      return h('a', { class: 'card live-card', href: `#/deployments/${encodeURIComponent(d.id)}`,
                      dataset: { deployment: d.id, app: d.app, env: d.env } },
        h('div', { class: 'card-head' },
          h('strong', null, `${d.app} → ${d.env}`), ' ', badge(d.state),
          h('span', { class: 'strategy' }, d.strategy)),
        h('div', { class: 'releases' },
          d.previous_release ? `${d.previous_release} → ` : '', h('b', null, d.release)),
        step ? h('div', { class: 'muted' },
                 `step ${d.current_step + 1} of ${d.plan.length}: ${step.description}`) : null,
        d.reason ? h('div', { class: 'reason' }, d.reason) : null,
        split);
    }));
  }

  function renderApps(data) {
    const envOrder = data.environments.map((e) => e.name);
    const envInfo = Object.fromEntries(data.environments.map((e) => [e.name, e]));
    fill(apps, data.apps.map((app) => {
      const rows = envOrder.map((env) => {
        const cur = app.environments[env] || {};
        const open = (app.active || []).find((d) => d.env === env);
        const info = envInfo[env] || {};
        const gates = [];
        if (info.requires && info.requires.length) gates.push(`after ${info.requires.join(', ')}`);
        if (info.approvals) gates.push(`${info.approvals} approval${info.approvals > 1 ? 's' : ''}`);
        return h('tr', { dataset: { env } },
          h('td', null, env),
          h('td', { class: 'release' }, cur.release ? h('b', null, cur.release) : h('span', { class: 'muted' }, 'none')),
          h('td', null, time(cur.at_ms)),
          h('td', null, open ? h('a', { href: `#/deployments/${encodeURIComponent(open.id)}` },
                                 `${open.release} `, badge(open.state)) : ''),
          h('td', { class: 'muted' }, gates.join('; ')));
      });
      return h('div', { class: 'card app-card', dataset: { app: app.name } },
        h('div', { class: 'card-head' },
          h('strong', null, app.name),
          h('span', { class: 'strategy' }, `${app.strategy} · port ${app.port}`),
          h('a', { class: 'right', href: `#/history/${encodeURIComponent(app.name)}` }, 'History')),
        h('table', { class: 'grid' },
          h('thead', null, h('tr', null, ['Environment', 'Release', 'Since', 'In progress', 'Gates']
            .map((t) => h('th', null, t)))),
          h('tbody', null, rows)));
    }));
    if (!data.apps.length) fill(apps, h('p', { class: 'empty' }, 'No apps in ferry.yaml.'));
  }

  let polling = false;
  async function pollSplits() {
    if (polling || stopped) return;
    polling = true;
    try {
      await Promise.all(active.map(async (d) => {
        const el = splitEls.get(d.id);
        if (!el) return;
        try {
          const status = await get(`/api/v1/apps/${encodeURIComponent(d.app)}/envs/${encodeURIComponent(d.env)}/status`);
          if (!stopped && splitEls.get(d.id) === el)
            fill(el, splitBar(trafficSplit(status), releaseColors(d.release, d.previous_release)));
        } catch (e) {
          if (!stopped) fill(el, h('span', { class: 'muted' }, `traffic: ${e.message}`));
        }
      }));
    } finally {
      polling = false;
    }
  }

  const reload = debounce(load, 300);
  const off = bus.on(() => reload());
  const refreshTimer = setInterval(load, REFRESH_MS);
  const splitTimer = setInterval(pollSplits, SPLIT_POLL_MS);
  load();
  return () => {
    stopped = true;
    off();
    reload.cancel();
    clearInterval(refreshTimer);
    clearInterval(splitTimer);
  };
}
