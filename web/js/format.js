// Small formatting helpers shared by the views.

const pad = (n) => String(n).padStart(2, '0');

// 2024-05-01 13:04:05 in the browser's time zone; '' for 0/absent.
export function time(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// 13:04:05 for today's events.
export function clock(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function percent(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${(x * 100).toFixed(digits)}%`;
}

export function ms(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return x >= 100 ? `${Math.round(x)} ms` : `${x.toFixed(1)} ms`;
}

export function rate(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${x >= 10 ? Math.round(x) : x.toFixed(1)}/s`;
}

// A metric value from an analysis event: numbers rounded, the rest as JSON.
export function metric(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

// The final deployment states come from the server (GET /api/v1/dashboard
// "final_states", from core/deployment_state.h); the page keeps no list of its own.
let finalStates = new Set();

export function setFinalStates(states) {
  finalStates = new Set(Array.isArray(states) ? states : []);
}

export function isFinal(state) {
  return finalStates.has(state);
}

// CSS class of a deployment state badge: a final state other than success is bad news.
export function stateClass(state) {
  if (state === 'succeeded') return 'badge ok';
  if (isFinal(state)) return 'badge bad';
  if (state === 'paused' || state === 'waiting' || state === 'rolling_back') return 'badge warn';
  return 'badge run';
}
