// SLOs (docs/slo.md): for every app and environment with an SLO, each objective's
// attainment, the error budget left, the burn rates over 5m / 30m / 1h / 6h with the page
// and ticket alerts, and the deployment the SLO gate holds, with its reason (#/slo). One
// SLO in detail (#/slo/APP/ENV): the same figures, the gate, the burn chart and the
// deployments that spent the budget.
import { h, fill } from '../dom.js';
import { get } from '../api.js';
import { bus, debounce, notify } from '../context.js';
import { percent, time } from '../format.js';
import { badge } from './parts.js';

const REFRESH_MS = 10000;
const WINDOWS = ['5m', '30m', '1h', '6h'];

// ok / warn / bad for a share of the budget left.
export function budgetClass(left) {
  if (left <= 0) return 'bad';
  return left < 0.25 ? 'warn' : 'ok';
}

// "30d", "6h", "90m" for a window in ms.
export function windowText(ms) {
  if (ms % 86400000 === 0) return `${ms / 86400000}d`;
  if (ms % 3600000 === 0) return `${ms / 3600000}h`;
  return `${Math.round(ms / 60000)}m`;
}

// "14.4x" for a burn rate.
export function burnText(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${x >= 100 ? Math.round(x) : x.toFixed(1)}x`;
}

// The deployment of app to env that waits at the SLO gate, if one does.
function heldBySlo(apps, app, env) {
  const a = (apps || []).find((x) => x.name === app);
  return ((a && a.active) || []).find((d) => d.env === env && d.state === 'waiting' &&
                                           (d.reason || '').startsWith('SLO gate'));
}

function objectiveName(o) {
  return o.objective === 'latency' ? `latency ≤ ${o.threshold_ms} ms` : 'availability';
}

function figures(slo) {
  const rows = slo.objectives.map((o) => {
    const alerts = Object.entries(o.alerts || {}).filter(([, firing]) => firing).map(([name]) => name);
    return h('tr', { dataset: { objective: o.objective } },
      h('td', null, objectiveName(o)),
      h('td', null, percent(o.target, 3)),
      h('td', { class: 'slo-attainment' }, o.requests ? percent(o.attainment, 3) : h('span', { class: 'muted' }, 'no requests')),
      h('td', { class: `slo-budget ${budgetClass(o.budget_remaining)}-text` }, percent(o.budget_remaining, 1)),
      WINDOWS.map((w) => h('td', { class: 'slo-burn', dataset: { window: w } }, burnText((o.burn || {})[w]))),
      h('td', { class: 'slo-alerts' }, alerts.length
        ? alerts.map((a) => h('span', { class: `badge ${a === 'page' ? 'bad' : 'warn'}`, dataset: { alert: a } }, a))
        : h('span', { class: 'muted' }, 'none')));
  });
  return h('table', { class: 'grid slo-figures' },
    h('thead', null, h('tr', null, ['Objective', 'Target', 'Attainment', 'Budget left',
                                     ...WINDOWS.map((w) => `Burn ${w}`), 'Alerts'].map((t) => h('th', null, t)))),
    h('tbody', null, rows));
}

function heldNote(d) {
  if (!d) return null;
  return h('div', { class: 'slo-held', dataset: { deployment: d.id } },
    h('a', { href: `#/deployments/${encodeURIComponent(d.id)}` }, `${d.release} `, badge(d.state)),
    ' held by the SLO gate',
    h('div', { class: 'reason slo-held-reason' }, d.reason));
}

function card(slo, apps) {
  const left = slo.budget_remaining;
  return h('div', { class: 'card slo-card', dataset: { app: slo.app, env: slo.env } },
    h('div', { class: 'card-head' },
      h('strong', null, `${slo.app} → ${slo.env}`),
      h('span', { class: `badge ${budgetClass(left)} slo-budget-badge` }, `${percent(left, 1)} budget left`),
      h('span', { class: 'strategy' }, `over ${windowText(slo.window_ms)}`),
      h('a', { class: 'right', href: `#/slo/${encodeURIComponent(slo.app)}/${encodeURIComponent(slo.env)}` }, 'Details')),
    figures(slo),
    heldNote(heldBySlo(apps, slo.app, slo.env)));
}

// One bar per chart point, as tall as its worst burn rate against the highest.
function burnChart(chart) {
  const points = (chart && chart.points) || [];
  const burnOf = (p) => Math.max(p.availability_burn || 0, p.latency_burn || 0);
  const top = Math.max(1, ...points.map(burnOf));
  const bars = h('div', { class: 'slo-chart', role: 'img',
                          'aria-label': `burn rate, highest ${burnText(top)}` });
  for (const p of points) {
    const b = burnOf(p);
    const bar = h('div', { class: `slo-bar ${b > 1 ? 'over' : ''}`,
                           title: `${time(p.start_ms)}: ${burnText(b)} (${p.requests} requests)` });
    bar.style.height = `${Math.max(1, (b / top) * 100)}%`;  // CSSOM, allowed by the CSP
    bars.append(bar);
  }
  return h('div', null, h('div', { class: 'muted' }, `burn rate per ${Math.round((chart.step_ms || 60000) / 60000)} min, highest ${burnText(top)}; 1x spends the budget exactly over the window`), bars);
}

function spentTable(deps) {
  if (!deps || !deps.length) return h('p', { class: 'empty' }, 'No deployment of this app here yet.');
  return h('table', { class: 'grid', id: 'slo-deployments' },
    h('thead', null, h('tr', null, ['Deployment', 'Release', 'State', 'Started', 'Budget spent', 'Hour after']
      .map((t) => h('th', null, t)))),
    h('tbody', null, deps.map((d) => h('tr', { dataset: { deployment: d.id } },
      h('td', null, h('a', { href: `#/deployments/${encodeURIComponent(d.id)}` }, d.id)),
      h('td', null, d.release),
      h('td', null, badge(d.state)),
      h('td', null, time(d.created_at_ms)),
      h('td', { class: 'slo-spent' }, percent(d.budget_spent, 2)),
      h('td', null, `${percent(d.budget_spent_after, 2)}${d.after_complete ? '' : ' so far'}`)))));
}

function mountList(root) {
  const list = h('section', { id: 'slos' }, h('p', { class: 'muted' }, 'loading…'));
  fill(root, h('h1', null, 'SLOs'), list);
  let stopped = false;
  async function load() {
    let slos;
    let apps;
    try {
      [slos, apps] = await Promise.all([get('/api/v1/slo'), get('/api/v1/apps')]);
    } catch (e) {
      if (!stopped) notify(`Loading SLOs failed: ${e.message}`, 'error');
      return;
    }
    if (stopped) return;
    if (!slos.slos.length) {
      fill(list, h('p', { class: 'empty' }, 'No app has an SLO here (apps.NAME.slo in ferry.yaml).'));
      return;
    }
    fill(list, slos.slos.map((s) => card(s, apps.apps)));
  }
  return poll(load, () => { stopped = true; });
}

function mountDetail(root, app, env) {
  const body = h('section', { id: 'slo-detail', dataset: { app, env } }, h('p', { class: 'muted' }, 'loading…'));
  fill(root, h('p', null, h('a', { href: '#/slo' }, '← SLOs')), h('h1', null, `SLO of ${app} in ${env}`), body);
  let stopped = false;
  async function load() {
    let slo;
    let apps;
    try {
      [slo, apps] = await Promise.all([
        get(`/api/v1/slo/${encodeURIComponent(app)}/${encodeURIComponent(env)}?hours=6`),
        get('/api/v1/apps')]);
    } catch (e) {
      if (!stopped) fill(body, h('p', { class: 'reason' }, e.message));
      return;
    }
    if (stopped) return;
    const gate = slo.gate;
    fill(body,
      card(slo, apps.apps),
      gate ? h('div', { class: 'card', id: 'slo-gate', dataset: { open: String(gate.open) } },
        h('div', { class: 'card-head' }, h('strong', null, 'Release gate'),
          h('span', { class: `badge ${gate.open ? 'ok' : 'bad'}` }, gate.open ? 'open' : 'closed')),
        h('div', { class: 'muted' }, [
          gate.min_budget !== undefined ? `min_budget ${percent(gate.min_budget, 1)}` : null,
          gate.max_burn !== undefined ? `max_burn ${gate.max_burn}x` : null,
          gate.max_budget_spend !== undefined ? `max_budget_spend ${percent(gate.max_budget_spend, 1)}` : null,
        ].filter(Boolean).join(' · ')),
        gate.reason ? h('div', { class: 'reason' }, gate.reason) : null) : null,
      h('div', { class: 'card' }, h('h2', null, 'Burn rate, last 6 hours'), burnChart(slo.chart)),
      h('div', { class: 'card' }, h('h2', null, 'Deployments and the budget they spent'), spentTable(slo.deployments)));
  }
  return poll(load, () => { stopped = true; });
}

// Loads now, on every event of the stream (debounced) and every REFRESH_MS.
function poll(load, stop) {
  const reload = debounce(load, 300);
  const off = bus.on(() => reload());
  const timer = setInterval(load, REFRESH_MS);
  load();
  return () => {
    stop();
    off();
    reload.cancel();
    clearInterval(timer);
  };
}

export function mount(root, app, env) {
  return app && env ? mountDetail(root, app, env) : mountList(root);
}
