// Unit tests of the dashboard's arithmetic (web/js/stats.js): histogram percentiles,
// per-interval rates from cumulative counters, the traffic split. Run by ctest with
// node's test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

// web/ has no package.json saying "type": "module" (it is served, not packaged), so the
// module is loaded from its text; stats.js imports nothing, which makes that possible.
const source = fs.readFileSync(new URL('../../web/js/stats.js', import.meta.url), 'utf8');
const { histogramQuantile, trafficSplit, instanceCounts, ReleaseRates } =
  await import(`data:text/javascript;charset=utf-8,${encodeURIComponent(source)}`);

const BOUNDS = [1, 2, 5, 10, 25, 50, 75, 100, 150, 250, 500, 750, 1000, 2500, 5000, 10000];

test('quantile of an empty histogram is null', () => {
  assert.equal(histogramQuantile([0, 0, 0], BOUNDS, 0.95), null);
  assert.equal(histogramQuantile([], BOUNDS, 0.95), null);
});

test('quantile interpolates inside its bucket', () => {
  // 100 requests in (5, 10]: p95 is 95% of the way from 5 to 10.
  const counts = new Array(BOUNDS.length + 1).fill(0);
  counts[3] = 100;
  assert.ok(Math.abs(histogramQuantile(counts, BOUNDS, 0.95) - 9.75) < 1e-9);
  // 90 fast (first bucket) and 10 slow in (100, 150]: p95 is in the slow bucket.
  counts[3] = 0;
  counts[0] = 90;
  counts[8] = 10;
  assert.ok(Math.abs(histogramQuantile(counts, BOUNDS, 0.95) - 125) < 1e-9);
  assert.ok(histogramQuantile(counts, BOUNDS, 0.5) <= 1);
});

test('the overflow bucket reports the last bound', () => {
  const counts = new Array(BOUNDS.length + 1).fill(0);
  counts[BOUNDS.length] = 5;
  assert.equal(histogramQuantile(counts, BOUNDS, 0.95), 10000);
});

test('traffic split sums agents and normalises', () => {
  const split = trafficSplit({ agents: [{ weights: { v1: 80, v2: 20 } }, { weights: { v1: 80, v2: 20 } }] });
  assert.deepEqual(split, [{ release: 'v1', weight: 0.8 }, { release: 'v2', weight: 0.2 }]);
  assert.deepEqual(trafficSplit({ agents: [{ weights: { v2: 3, v1: 0 } }] }),
                   [{ release: 'v2', weight: 1 }, { release: 'v1', weight: 0 }]);
  assert.deepEqual(trafficSplit({ agents: [{ error: 'down' }] }), []);
});

test('instance counts by release', () => {
  const c = instanceCounts({ agents: [{ instances: [
    { release: 'v1', state: 'ready' }, { release: 'v2', state: 'starting' }, { release: 'v2', state: 'ready' }] }] });
  assert.deepEqual(c, { v1: { ready: 1, total: 1 }, v2: { ready: 1, total: 2 } });
});

function rel(release, requests, s5xx, upstream, counts) {
  return { release, requests, status_5xx: s5xx, upstream_errors: upstream, latency_counts: counts };
}

test('rates come from deltas between polls; the first poll is a baseline', () => {
  const r = new ReleaseRates(BOUNDS, 60000);
  const zero = new Array(BOUNDS.length + 1).fill(0);
  let latest = r.add({ agents: [{ agent: 'a', releases: [rel('v2', 1000, 10, 0, zero)] }] }, 1000);
  assert.equal(latest.size, 0);
  const counts = zero.slice();
  counts[3] = 200;
  latest = r.add({ agents: [{ agent: 'a', releases: [rel('v2', 1200, 14, 1, counts)] }] }, 3000);
  const p = latest.get('v2');
  assert.equal(p.requests, 200);
  assert.equal(p.rps, 100);
  assert.equal(p.errorRate, 5 / 200);
  assert.ok(Math.abs(p.p95 - 9.75) < 1e-9);
  assert.equal(p.shielded, 0);
});

test('shielded failures are counted per poll from the router counter', () => {
  const r = new ReleaseRates(BOUNDS, 60000);
  const zero = new Array(BOUNDS.length + 1).fill(0);
  r.add({ agents: [{ agent: 'a', releases: [{ ...rel('v2', 100, 10, 0, zero), shielded: 10 }] }] }, 0);
  const p = r.add({ agents: [{ agent: 'a', releases: [{ ...rel('v2', 150, 17, 0, zero), shielded: 17 }] }] }, 1000).get('v2');
  assert.equal(p.shielded, 7);
  assert.equal(p.errorRate, 7 / 50);  // the analysis view still sees every failure
});

test('a counter that went down (router restarted) counts from zero', () => {
  const r = new ReleaseRates(BOUNDS, 60000);
  const zero = new Array(BOUNDS.length + 1).fill(0);
  r.add({ agents: [{ agent: 'a', releases: [rel('v1', 5000, 0, 0, zero)] }] }, 0);
  const latest = r.add({ agents: [{ agent: 'a', releases: [rel('v1', 40, 4, 0, zero)] }] }, 1000);
  assert.equal(latest.get('v1').requests, 40);
  assert.equal(latest.get('v1').errorRate, 0.1);
});

test('no requests in an interval: no error rate and no p95', () => {
  const r = new ReleaseRates(BOUNDS, 60000);
  const zero = new Array(BOUNDS.length + 1).fill(0);
  r.add({ agents: [{ agent: 'a', releases: [rel('v1', 7, 0, 0, zero)] }] }, 0);
  const p = r.add({ agents: [{ agent: 'a', releases: [rel('v1', 7, 0, 0, zero)] }] }, 1000).get('v1');
  assert.equal(p.errorRate, null);
  assert.equal(p.p95, null);
  assert.equal(p.rps, 0);
});

test('two agents add up; the series keeps only the window', () => {
  const r = new ReleaseRates(BOUNDS, 5000);
  const zero = new Array(BOUNDS.length + 1).fill(0);
  for (let i = 0; i <= 10; i++) {
    r.add({ agents: [
      { agent: 'a', releases: [rel('v1', 10 * i, 0, 0, zero)] },
      { agent: 'b', releases: [rel('v1', 30 * i, i, 0, zero)] },
      { agent: 'c', error: 'unreachable' },
    ] }, i * 1000);
  }
  const pts = r.series.get('v1');
  assert.ok(pts.length <= 6, `kept ${pts.length} points`);
  const last = pts[pts.length - 1];
  assert.equal(last.requests, 40);
  assert.equal(last.errorRate, 1 / 40);
});

test('hosts: one row per agent with its split, instances and condition', async () => {
  const { hostRows } = await import(`data:text/javascript;charset=utf-8,${encodeURIComponent(source)}`);
  const rows = hostRows({
    agents: [
      { agent: 'a', address: '10.0.0.1:7071', reachable: true, generation: 7, desired_generation: 7, behind: false,
        weights: { v1: 80, v2: 20 },
        instances: [{ id: 'web.prod-v2-3', release: 'v2', state: 'starting' },
                    { id: 'web.prod-v2-0', release: 'v2', state: 'ready' }] },
      { agent: 'b', address: '10.0.0.2:7071', reachable: true, generation: 5, desired_generation: 7, behind: true,
        weights: { v1: 100 }, instances: [] },
      { agent: 'c', address: '10.0.0.3:7071', reachable: false, error: 'agent c: connecting timed out',
        desired_generation: 7, behind: true },
    ],
  });
  assert.deepEqual(rows.map((r) => [r.agent, r.condition]), [['a', 'in sync'], ['b', 'behind'], ['c', 'unreachable']]);
  assert.deepEqual(rows[0].split, [{ release: 'v1', weight: 0.8 }, { release: 'v2', weight: 0.2 }]);
  assert.deepEqual(rows[0].instances.map((i) => i.id), ['web.prod-v2-0', 'web.prod-v2-3']);
  assert.equal(rows[0].ready, 1);
  assert.equal(rows[1].generation, 5);
  assert.equal(rows[1].desired, 7);
  assert.equal(rows[2].generation, null);
  assert.equal(rows[2].error, 'agent c: connecting timed out');
  assert.deepEqual(rows[2].split, []);
  // A host's weights are its own: b's 100% v1 is not mixed with a's split.
  assert.deepEqual(rows[1].split, [{ release: 'v1', weight: 1 }]);
  assert.deepEqual(hostRows({}), []);
});
