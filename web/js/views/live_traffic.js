// The live traffic of one app in one environment: the router's split by release, and
// per release the request rate, error rate and p95 latency, charted over the last two
// minutes from the status polled every second.
import { h, fill } from '../dom.js';
import { get } from '../api.js';
import { state } from '../context.js';
import { percent, ms, rate } from '../format.js';
import { ReleaseRates, trafficSplit, instanceCounts, hostRows } from '../stats.js';
import { LineChart } from '../chart.js';
import { splitBar } from './parts.js';

const POLL_MS = 1000;
const WINDOW_MS = 120000;

export function liveTraffic(app, env, colorOf) {
  const splitEl = h('div', { class: 'split-holder', id: 'traffic-split' },
                    h('span', { class: 'muted' }, 'loading…'));
  const tableBody = h('tbody');
  const errorCanvas = h('canvas', { class: 'chart', id: 'chart-errors', 'aria-label': 'error rate per release' });
  const latencyCanvas = h('canvas', { class: 'chart', id: 'chart-p95', 'aria-label': 'p95 latency per release' });
  const problems = h('div', { class: 'muted' });
  const hostsBody = h('tbody');
  const hosts = h('table', { class: 'grid hosts', id: 'hosts' },
    h('thead', null, h('tr', null, ['Host', 'State', 'Generation', 'Weights', 'Instances'].map((t) => h('th', null, t)))),
    hostsBody);
  const el = h('section', { class: 'live card', id: 'live-traffic' },
    h('h2', null, 'Live traffic'),
    splitEl,
    h('table', { class: 'grid stats', id: 'release-stats' },
      h('thead', null, h('tr', null, h('th', null, 'Release'),
        ['Weight', 'Instances ready', 'Requests', 'Error rate', 'Shielded', 'p95'].map((t) => h('th', { class: 'num' }, t)))),
      tableBody),
    problems,
    h('div', { class: 'charts' }, errorCanvas, latencyCanvas),
    h('h3', null, 'Hosts'),
    hosts);

  // One row per agent of the environment: what each host runs and reports.
  function renderHosts(status) {
    fill(hostsBody, hostRows(status).map((r) => {
      const gen = r.generation === null ? '–'
        : r.desired !== null && r.generation < r.desired ? `${r.generation} (wants ${r.desired})`
        : String(r.generation);
      const weights = r.split.length
        ? r.split.map((s) => h('span', { class: 'host-weight', dataset: { release: s.release, weight: String(Math.round(s.weight * 100)) } },
          `${s.release} ${percent(s.weight, 0)}`))
        : '–';
      const instances = r.instances.length
        ? r.instances.map((i) => h('span', { class: `inst ${i.state}`, title: i.message, dataset: { instance: i.id, release: i.release, state: i.state } },
          `${i.id}: ${i.state}`))
        : h('span', { class: 'muted' }, 'none');
      return h('tr', { dataset: { agent: r.agent, condition: r.condition } },
        h('td', null, h('b', null, r.agent), h('div', { class: 'muted' }, r.address)),
        h('td', { class: 'host-state', title: r.error }, r.error ? `${r.condition}: ${r.error}` : r.condition),
        h('td', { class: 'num host-generation' }, gen),
        h('td', { class: 'host-weights' }, weights),
        h('td', { class: 'host-instances' }, instances, h('div', { class: 'muted' }, `${r.ready}/${r.instances.length} ready`)));
    }));
  }

  const rates = new ReleaseRates(state.latencyBuckets, WINDOW_MS);
  const errorChart = new LineChart(errorCanvas, { title: 'Error rate', format: (v) => percent(v, v < 0.1 ? 1 : 0), minMax: 0.05 });
  const latencyChart = new LineChart(latencyCanvas, { title: 'p95 latency', format: (v) => ms(v), minMax: 10 });
  let stopped = false;
  let busy = false;

  function drawCharts(now) {
    const pick = (key) => new Map([...rates.series].map(([r, pts]) => [r, pts.map((p) => ({ t: p.t, value: p[key] }))]));
    errorChart.draw(pick('errorRate'), colorOf, now, WINDOW_MS);
    latencyChart.draw(pick('p95'), colorOf, now, WINDOW_MS);
  }

  async function poll() {
    if (busy || stopped) return;
    busy = true;
    try {
      const status = await get(`/api/v1/apps/${encodeURIComponent(app)}/envs/${encodeURIComponent(env)}/status`);
      if (stopped) return;
      const now = Date.now();
      const latest = rates.add(status, now);
      const split = trafficSplit(status);
      const inst = instanceCounts(status);
      fill(splitEl, splitBar(split, colorOf));
      renderHosts(status);
      const releases = new Set([...split.map((s) => s.release), ...Object.keys(inst), ...latest.keys()]);
      const weightOf = Object.fromEntries(split.map((s) => [s.release, s.weight]));
      fill(tableBody, [...releases].sort().map((r) => {
        const p = latest.get(r) || {};
        const swatch = h('span', { class: 'swatch' });
        swatch.style.background = colorOf(r);
        const c = inst[r] || { ready: 0, total: 0 };
        return h('tr', { dataset: { release: r } },
          h('td', null, swatch, r),
          h('td', { class: 'num' }, weightOf[r] === undefined ? '–' : percent(weightOf[r], 0)),
          h('td', { class: 'num' }, `${c.ready}/${c.total}`),
          h('td', { class: 'num' }, rate(p.rps)),
          h('td', { class: 'num' }, percent(p.errorRate, 2)),
          h('td', { class: 'num', title: 'failures answered by the stable release' },
            p.shielded === undefined ? '–' : String(p.shielded)),
          h('td', { class: 'num' }, ms(p.p95)));
      }));
      const errs = (status.agents || []).filter((a) => a.error).map((a) => `${a.agent || 'agent'}: ${a.error}`);
      fill(problems, errs.length ? `Unreachable: ${errs.join('; ')}` : '');
      drawCharts(now);
    } catch (e) {
      if (!stopped) fill(problems, `Status unavailable: ${e.message}`);
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(poll, POLL_MS);
  const onResize = () => drawCharts(Date.now());
  window.addEventListener('resize', onResize);
  poll();
  return {
    el,
    stop() {
      stopped = true;
      clearInterval(timer);
      window.removeEventListener('resize', onResize);
    },
  };
}
