// The chaos banner: while a game-day experiment runs (`ferry chaos`), a card per app and
// environment across the top of every page says what is being done to it, by whom, and
// how long is left. Polls GET /api/v1/chaos?running=true while signed in; hidden otherwise.
import { h, fill } from './dom.js';
import { get, session } from './api.js';
import { describeExperiment, timeLeft, runningOnly } from './chaos.js';

const POLL_MS = 5000;

function banner() {
  let el = document.getElementById('chaos-banner');
  if (!el) {
    el = h('section', { id: 'chaos-banner', class: 'chaos-banner', hidden: true, role: 'status' });
    const main = document.getElementById('main');
    if (main) main.before(el);
    else document.body.append(el);
  }
  return el;
}

let running = [];

function render() {
  const el = banner();
  if (!session.token || !running.length) {
    el.hidden = true;
    fill(el);
    return;
  }
  el.hidden = false;
  const now = Date.now();
  fill(el, running.map((e) =>
    h('div', { class: 'chaos-card', dataset: { app: e.app, env: e.env, experiment: e.id } },
      h('strong', null, `Chaos experiment on ${e.app} in ${e.env}`),
      h('span', { class: 'chaos-what' }, describeExperiment(e)),
      h('span', { class: 'chaos-left' }, timeLeft(e.ends_at_ms, now)),
      h('span', { class: 'chaos-who' }, e.started_by ? `started by ${e.started_by}` : ''),
      h('code', { class: 'chaos-stop' }, `ferry chaos ${e.app} --env ${e.env} --stop`))));
}

async function poll() {
  if (session.token) {
    try {
      const data = await get('/api/v1/chaos?running=true');
      running = runningOnly(data && data.experiments);
    } catch {
      running = [];  // signed out, or no answer: no banner rather than a stale one
    }
  } else {
    running = [];
  }
  render();
}

poll();
setInterval(poll, POLL_MS);
setInterval(render, 1000);  // the time left ticks between polls
