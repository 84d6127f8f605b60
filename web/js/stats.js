// Turns the router's cumulative per-release counters (GET .../envs/{env}/status, one
// entry per agent) into per-interval figures: requests per second, error rate
// ((5xx + upstream errors) / requests, as the analysis counts it) and p95 latency from
// the histogram's bucket counts, interpolated within a bucket like src/analysis does.

// q-quantile of a histogram: counts[i] for (bounds[i-1], bounds[i]], plus one overflow
// bucket. null when empty.
export function histogramQuantile(counts, bounds, q) {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0 || bounds.length === 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0 && seen + c >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];  // overflow: its lower bound
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + ((bounds[i] - lo) * (rank - seen)) / c;
    }
    seen += c;
  }
  return bounds[bounds.length - 1];
}

// Sums weights over agents and turns them into fractions of the total.
export function trafficSplit(status) {
  const sum = {};
  for (const agent of status.agents || []) {
    for (const [release, w] of Object.entries(agent.weights || {})) sum[release] = (sum[release] || 0) + w;
  }
  const total = Object.values(sum).reduce((a, b) => a + b, 0);
  return Object.entries(sum)
    .map(([release, w]) => ({ release, weight: total > 0 ? w / total : 0 }))
    .sort((a, b) => b.weight - a.weight || a.release.localeCompare(b.release));
}

// Instances per release over every agent: {release: {ready, total}}.
export function instanceCounts(status) {
  const out = {};
  for (const agent of status.agents || []) {
    for (const inst of agent.instances || []) {
      const c = (out[inst.release] ||= { ready: 0, total: 0 });
      c.total += 1;
      if (inst.state === 'ready') c.ready += 1;
    }
  }
  return out;
}

// Per host (one entry of status.agents, in the server's order): whether it answers and
// has taken the desired state (generation against the reconciler's desired one), its
// router's split and its instances with their states.
export function hostRows(status) {
  return (status.agents || []).map((a) => {
    const weights = Object.entries(a.weights || {});
    const total = weights.reduce((s, [, w]) => s + w, 0);
    const split = weights
      .map(([release, w]) => ({ release, weight: total > 0 ? w / total : 0 }))
      .sort((x, y) => y.weight - x.weight || x.release.localeCompare(y.release));
    const instances = (a.instances || [])
      .map((i) => ({ id: i.id, release: i.release, state: i.state, message: i.message || '' }))
      .sort((x, y) => x.id.localeCompare(y.id));
    const condition = a.reachable === false ? 'unreachable'
      : a.error ? 'error'
      : a.behind ? 'behind'
      : 'in sync';
    return {
      agent: a.agent || '',
      address: a.address || '',
      condition,
      error: a.error || a.last_error || '',
      generation: a.generation ?? null,
      desired: a.desired_generation ?? null,
      split,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
    };
  });
}

const delta = (now, before) => (now >= before ? now - before : now);  // counters reset: a restarted router

// Keeps the previous counters per agent and release, and a time series per release.
export class ReleaseRates {
  constructor(bounds, windowMs = 120000) {
    this.bounds = bounds;
    this.windowMs = windowMs;
    this.previous = new Map();  // `${agent}|${release}` -> {t, stats}
    this.series = new Map();    // release -> [{t, rps, errorRate, p95}]
    this.latest = new Map();    // release -> the newest point
  }

  // Adds one status poll taken at `t` (ms); returns the latest point per release.
  add(status, t) {
    const sums = new Map();  // release -> summed deltas over agents
    for (const [i, agent] of (status.agents || []).entries()) {
      if (agent.error) continue;
      const agentKey = agent.agent || String(i);
      for (const rel of agent.releases || []) {
        const key = `${agentKey}|${rel.release}`;
        const before = this.previous.get(key);
        this.previous.set(key, { t, stats: rel });
        if (!before || t <= before.t) continue;  // the first sight is only a baseline
        const b = before.stats;
        const s = sums.get(rel.release) || { seconds: 0, requests: 0, errors: 0, shielded: 0, counts: [] };
        s.seconds = Math.max(s.seconds, (t - before.t) / 1000);
        s.requests += delta(rel.requests || 0, b.requests || 0);
        s.errors += delta((rel.status_5xx || 0) + (rel.upstream_errors || 0),
                          (b.status_5xx || 0) + (b.upstream_errors || 0));
        s.shielded += delta(rel.shielded || 0, b.shielded || 0);
        const now = rel.latency_counts || [];
        const old = b.latency_counts || [];
        for (let k = 0; k < now.length; k++) s.counts[k] = (s.counts[k] || 0) + delta(now[k], old[k] || 0);
        sums.set(rel.release, s);
      }
    }
    for (const [release, s] of sums) {
      const point = {
        t,
        requests: s.requests,
        rps: s.seconds > 0 ? s.requests / s.seconds : null,
        errorRate: s.requests > 0 ? Math.min(1, s.errors / s.requests) : null,
        // failures the canary shield answered from the stable release (users never saw them)
        shielded: s.shielded,
        p95: histogramQuantile(s.counts, this.bounds, 0.95),
      };
      const list = this.series.get(release) || [];
      list.push(point);
      while (list.length && list[0].t < t - this.windowMs) list.shift();
      this.series.set(release, list);
      this.latest.set(release, point);
    }
    return this.latest;
  }
}
