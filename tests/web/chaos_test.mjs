// Unit tests of what the chaos banner says (web/js/chaos.js). Run by ctest with node's
// test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

// Loaded from its text, as stats_test.mjs does (chaos.js imports nothing).
const source = fs.readFileSync(new URL('../../web/js/chaos.js', import.meta.url), 'utf8');
const { describeExperiment, timeLeft, runningOnly } =
  await import(`data:text/javascript;charset=utf-8,${encodeURIComponent(source)}`);

test('each kind is described with its numbers', () => {
  assert.equal(describeExperiment({ kind: 'errors', share: 0.05, error_status: 503 }),
               'errors: 5% of requests answered 503');
  assert.equal(describeExperiment({ kind: 'latency', share: 0.1, latency_ms: 200 }),
               'latency: +200 ms on 10% of requests');
  assert.equal(describeExperiment({ kind: 'kill_instance', killed_instance: 'web-v1-0', killed_on: 'local' }),
               'killed web-v1-0 (on local)');
  assert.equal(describeExperiment({ kind: 'kill_instance' }), 'kill an instance');
});

test('time left counts down and never goes negative', () => {
  assert.equal(timeLeft(65_000, 0), '1m 05s left');
  assert.equal(timeLeft(12_000, 0), '12s left');
  assert.equal(timeLeft(1_000, 5_000), 'ending…');
  assert.equal(timeLeft(undefined, 0), 'ending…');
});

test('only running experiments are shown, newest first, bounded', () => {
  const list = [
    { id: 'a', state: 'ended', started_at_ms: 5 },
    { id: 'b', state: 'running', started_at_ms: 1 },
    { id: 'c', state: 'running', started_at_ms: 3 },
    null,
  ];
  assert.deepEqual(runningOnly(list).map((e) => e.id), ['c', 'b']);
  assert.deepEqual(runningOnly(undefined), []);
  const many = Array.from({ length: 50 }, (_, i) => ({ id: `x${i}`, state: 'running', started_at_ms: i }));
  assert.equal(runningOnly(many).length, 10);
});

test('server text stays text (the banner builds nodes, never HTML)', () => {
  const e = { kind: '<img src=x onerror=alert(1)>' };
  assert.equal(describeExperiment(e), '<img src=x onerror=alert(1)>');
});
