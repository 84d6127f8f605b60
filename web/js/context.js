// What the views share: the live event bus, the page-wide notice, the latency bucket
// bounds and the signed-in principal.
import { fill } from './dom.js';

const listeners = new Set();

// Deployment events from the stream reach every subscriber; on() returns its undo.
export const bus = {
  on(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  emit(event) {
    for (const fn of [...listeners]) {
      try {
        fn(event);
      } catch (e) {
        console.error('event listener failed', e);
      }
    }
  },
};

export const state = {
  latencyBuckets: [],  // from GET /api/v1/dashboard
  principal: null,     // from GET /api/v1/whoami: {name, role, envs}
};

let noticeTimer = null;
// A message across the top of the page; kind 'error' stays until replaced or closed.
export function notify(message, kind = 'info') {
  const el = document.getElementById('notice');
  clearTimeout(noticeTimer);
  if (!message) {
    el.hidden = true;
    return;
  }
  el.className = `notice ${kind}`;
  fill(el, message);
  el.hidden = false;
  if (kind !== 'error') noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

// Calls fn at most once per `ms`, after the last request (bursts of events).
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

// Release colours: the release being deployed orange, the one it replaces blue.
const PALETTE = ['#2b8a3e', '#ae3ec9', '#0c8599', '#e03131', '#5c940d', '#6741d9'];
export function releaseColors(newRelease, oldRelease) {
  const others = new Map();
  return (release) => {
    if (release === newRelease) return '#e8590c';
    if (release === oldRelease) return '#1c7ed6';
    if (!others.has(release)) others.set(release, PALETTE[others.size % PALETTE.length]);
    return others.get(release);
  };
}
