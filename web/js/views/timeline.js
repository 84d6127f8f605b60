// A deployment's plan as a timeline: each step with its state and the events committed
// during it (analysis verdicts with their reasons and metrics, hook results, rollbacks).
import { h } from '../dom.js';
import { clock, duration, isFinal, metric } from '../format.js';

// done | current | pending | failed | skipped
export function stepStatus(d, i) {
  const cur = d.current_step;
  if (d.state === 'succeeded') return 'done';
  const final = isFinal(d.state);
  if (i < cur) return 'done';
  if (i === cur) {
    if (final) return d.state === 'aborted' ? 'aborted' : 'failed';
    if (d.step_state === 'done') return 'done';
    if (d.step_state === 'running') return 'current';
    return 'pending';
  }
  return final ? 'skipped' : 'pending';
}

function analysisBody(data) {
  const parts = [];
  if (data.verdict) parts.push(h('span', { class: `verdict ${data.verdict}` }, data.verdict));
  if (Array.isArray(data.reasons) && data.reasons.length)
    parts.push(h('ul', { class: 'reasons' }, data.reasons.map((r) => h('li', null, String(r)))));
  if (data.metrics && typeof data.metrics === 'object' && Object.keys(data.metrics).length)
    parts.push(h('dl', { class: 'metrics' },
      Object.entries(data.metrics).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, metric(v))])));
  return parts;
}

function eventBody(e) {
  const data = e.data && typeof e.data === 'object' ? e.data : {};
  if (e.type === 'analysis') return analysisBody(data);
  if (e.type === 'hook_finished' || e.type === 'hook_failed') {
    if (!data.output) return [];
    return [h('details', null, h('summary', null, `output of ${data.hook || 'hook'}`),
              h('pre', null, String(data.output)))];
  }
  if (e.type === 'rollback_started' || e.type === 'rolled_back' || e.type === 'aborted') {
    const out = [];
    if (data.traffic_restored_ms !== undefined)
      out.push(h('div', { class: 'muted' }, `traffic back on the stable release after ${duration(data.traffic_restored_ms)}`));
    if (data.analysis) out.push(...analysisBody({ metrics: data.analysis }));
    return out;
  }
  return [];
}

export function eventItem(e) {
  return h('li', { class: `event ev-${e.type}`, dataset: { type: e.type, seq: String(e.seq) } },
    h('time', null, clock(e.time_ms)),
    h('span', { class: 'ev-type' }, e.type.replaceAll('_', ' ')),
    h('span', { class: 'ev-msg' }, e.message),
    eventBody(e));
}

// The plan with each step's events beneath it; events of no step (gates, creation)
// come first.
export function timeline(d) {
  const byStep = new Map();
  for (const e of d.events || []) {
    const k = typeof e.step === 'number' && e.step >= 0 ? e.step : -1;
    if (!byStep.has(k)) byStep.set(k, []);
    byStep.get(k).push(e);
  }
  const waitingPromote = (i) => {
    const evs = byStep.get(i) || [];
    return evs.length > 0 && evs[evs.length - 1].type === 'waiting_promote';
  };
  const general = byStep.get(-1) || [];
  return h('div', { class: 'timeline' },
    general.length ? h('ul', { class: 'events general' }, general.map(eventItem)) : null,
    h('ol', { class: 'steps' }, (d.plan || []).map((step, i) => {
      const status = stepStatus(d, i);
      const waiting = status === 'current' && step.until_promote && waitingPromote(i);
      return h('li', { class: `step ${status}`, dataset: { step: String(i), status, kind: step.kind } },
        h('div', { class: 'step-head' },
          h('span', { class: 'step-no' }, String(i + 1)),
          h('span', { class: 'step-desc' }, step.description || step.kind),
          h('span', { class: `step-status ${status}` }, waiting ? 'waiting for promote' : status)),
        (byStep.get(i) || []).length
          ? h('ul', { class: 'events' }, byStep.get(i).filter((e) => e.type !== 'step_started').map(eventItem))
          : null);
    })));
}
