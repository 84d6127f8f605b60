// What the chaos banner says about a running game-day experiment (GET /api/v1/chaos).
// Pure functions, no DOM and no imports, so node's test runner checks them
// (tests/web/chaos_test.mjs).

// "errors: 5% of requests answered 503", "latency: +200 ms on 10% of requests",
// "kill instance web.dev-v1-0 (on local)".
export function describeExperiment(e) {
  const pct = (v) => `${Math.round(Number(v) * 10000) / 100}%`;
  if (e.kind === 'errors') return `errors: ${pct(e.share)} of requests answered ${e.error_status || 503}`;
  if (e.kind === 'latency') return `latency: +${e.latency_ms} ms on ${pct(e.share)} of requests`;
  if (e.kind === 'kill_instance') {
    const which = e.killed_instance ? `killed ${e.killed_instance}` : 'kill an instance';
    return e.killed_on ? `${which} (on ${e.killed_on})` : which;
  }
  return String(e.kind || 'experiment');
}

// "4m 05s left", "12s left", "ending…" from the experiment's end and now (unix ms).
export function timeLeft(endsAtMs, nowMs) {
  const s = Math.ceil((Number(endsAtMs) - nowMs) / 1000);
  if (!Number.isFinite(s) || s <= 0) return 'ending…';
  if (s < 60) return `${s}s left`;
  const m = Math.floor(s / 60);
  return `${m}m ${String(s % 60).padStart(2, '0')}s left`;
}

// Running experiments only, newest first, at most `max` (the banner stays small).
export function runningOnly(list, max = 10) {
  return (Array.isArray(list) ? list : [])
    .filter((e) => e && e.state === 'running')
    .sort((a, b) => (b.started_at_ms || 0) - (a.started_at_ms || 0))
    .slice(0, max);
}
