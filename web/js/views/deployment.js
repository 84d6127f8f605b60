// One deployment: its state, the live traffic of its environment, the step timeline
// with analysis reasons, and the commands (promote, pause, resume, abort, rollback,
// approve). The server checks every permission; its answer is shown as it gave it.
import { h, fill } from '../dom.js';
import { get, post } from '../api.js';
import { bus, debounce, releaseColors } from '../context.js';
import { time, duration, isFinal } from '../format.js';
import { badge } from './parts.js';
import { timeline } from './timeline.js';
import { liveTraffic } from './live_traffic.js';

const REFRESH_MS = 5000;
const enc = encodeURIComponent;

export function mount(root, id) {
  const head = h('section', { class: 'deploy-head', id: 'deployment-head' }, h('p', { class: 'muted' }, 'loading…'));
  const result = h('div', { class: 'result', id: 'action-result', role: 'status', hidden: true });
  const buttons = {};
  const actions = h('div', { class: 'actions', id: 'actions' });
  const steps = h('section', { class: 'card', id: 'timeline' });
  const approve = h('section', { class: 'card', id: 'approve' });
  const liveHolder = h('div');
  fill(root, head, actions, result, liveHolder, h('h2', null, 'Steps'), steps, approve);

  let d = null;
  let live = null;
  let stopped = false;

  function showResult(kind, text) {
    result.className = `result ${kind}`;
    result.dataset.kind = kind;
    fill(result, text);
    result.hidden = false;
  }

  async function command(verb) {
    if (!d) return;
    if (verb === 'abort' && !window.confirm(`Abort the deployment of ${d.release} to ${d.env}? Traffic goes back to ${d.previous_release || 'nothing'}.`))
      return;
    buttons[verb].disabled = true;
    try {
      await post(`/api/v1/deployments/${enc(d.id)}/${verb}`);
      showResult('ok', `${verb}: accepted by the server`);
    } catch (e) {
      showResult('error', e.status === 403 ? `${verb} refused: ${e.message}` : `${verb} failed: ${e.message}`);
    }
    await load();
  }

  async function rollback() {
    if (!d) return;
    if (!window.confirm(`Roll ${d.app} in ${d.env} back to its previous release?`)) return;
    buttons.rollback.disabled = true;
    try {
      const nd = await post(`/api/v1/apps/${enc(d.app)}/envs/${enc(d.env)}/rollback`, {});
      showResult('ok', `rollback started: deployment ${nd.id} of ${nd.release}`);
      location.hash = `#/deployments/${enc(nd.id)}`;
      return;
    } catch (e) {
      showResult('error', e.status === 403 ? `rollback refused: ${e.message}` : `rollback failed: ${e.message}`);
    }
    await load();
  }

  for (const [verb, label, title] of [
    ['promote', 'Promote', 'end a pause or skip to the next step'],
    ['pause', 'Pause', 'hold at the current step'],
    ['resume', 'Resume', 'continue after a pause'],
    ['abort', 'Abort', 'stop and send traffic back to the stable release'],
  ]) {
    buttons[verb] = h('button', { type: 'button', id: `btn-${verb}`, title, onclick: () => command(verb) }, label);
  }
  buttons.rollback = h('button', { type: 'button', id: 'btn-rollback', class: 'danger',
                                   title: 'deploy the previous release of this environment again', onclick: rollback },
                       'Roll back environment');
  buttons.abort.classList.add('danger');
  fill(actions, buttons.promote, buttons.pause, buttons.resume, buttons.abort, h('span', { class: 'gap' }), buttons.rollback);

  // Who approved this release for this environment (GET /api/v1/approvals).
  const approvals = h('ul', { class: 'approvals', id: 'approvals' });
  async function loadApprovals() {
    try {
      const r = await get(`/api/v1/approvals?app=${enc(d.app)}&env=${enc(d.env)}&release=${enc(d.release)}`);
      if (stopped) return;
      const list = r.approvals || [];
      fill(approvals, list.length
        ? list.map((a) => h('li', null, h('b', null, a.approver), ` ${time(a.at_ms)}`, a.comment ? ` — ${a.comment}` : ''))
        : h('li', { class: 'muted' }, 'No approvals yet.'));
    } catch (e) {
      if (!stopped) fill(approvals, h('li', { class: 'muted' }, `approvals: ${e.message}`));
    }
  }

  // What the release changes in the app's environment (--set-env): the approver sees it
  // before approving (GET /api/v1/apps/{app}/releases/{version}).
  const releaseEnv = h('div', { class: 'release-env', id: 'release-env' });
  async function loadReleaseEnv() {
    try {
      const r = await get(`/api/v1/apps/${enc(d.app)}/releases/${enc(d.release)}`);
      if (stopped) return;
      const env = Object.entries(r.env || {});
      fill(releaseEnv,
        h('h3', null, 'Environment set by this release'),
        env.length
          ? h('ul', { class: 'env-list' }, env.map(([k, v]) => h('li', null, h('code', null, `${k}=${v}`))))
          : h('p', { class: 'muted' }, 'None: the app\'s configured environment only.'),
        h('p', { class: 'muted' }, `scan: ${r.scan_status || 'not_scanned'}`));
    } catch (e) {
      if (!stopped) fill(releaseEnv, h('p', { class: 'muted' }, `release: ${e.message}`));
    }
  }

  function renderApprove() {
    const comment = h('input', { type: 'text', id: 'approve-comment', maxlength: '1000', placeholder: 'comment (optional)' });
    const answer = h('div', { class: 'result', id: 'approve-result', hidden: true });
    const form = h('form', { class: 'approve-form' },
      h('span', null, 'Approve ', h('b', null, d.release), ` of ${d.app} for ${d.env}`),
      comment,
      h('button', { type: 'submit', id: 'btn-approve' }, 'Approve'),
      answer);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const r = await post('/api/v1/approvals', { app: d.app, env: d.env, release: d.release, comment: comment.value });
        answer.className = 'result ok';
        answer.dataset.kind = 'ok';
        fill(answer, `approved by ${r.approver || 'you'}`);
        comment.value = '';
      } catch (err) {
        answer.className = 'result error';
        answer.dataset.kind = 'error';
        fill(answer, err.status === 403 ? `approval refused: ${err.message}` : `approval failed: ${err.message}`);
      }
      answer.hidden = false;
      loadApprovals();
    });
    fill(approve, h('h2', null, 'Approvals'), releaseEnv, approvals, form);
    loadReleaseEnv();
    loadApprovals();
  }

  function render() {
    const final = isFinal(d.state);
    const step = d.plan && d.plan[d.current_step];
    const took = (d.finished_at_ms || Date.now()) - d.created_at_ms;
    fill(head,
      h('div', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / ',
        h('a', { href: `#/history/${enc(d.app)}` }, `${d.app} history`)),
      h('h1', null, `${d.app} → ${d.env} `, badge(d.state)),
      h('div', { class: 'releases' }, d.previous_release ? `${d.previous_release} → ` : 'first release: ',
        h('b', { id: 'deploy-release' }, d.release)),
      h('dl', { class: 'facts' },
        h('dt', null, 'Strategy'), h('dd', null, d.strategy),
        h('dt', null, 'Step'), h('dd', null, step ? `${d.current_step + 1} of ${d.plan.length}: ${step.description}` : '–'),
        h('dt', null, 'Requested by'), h('dd', null, d.requested_by || '–'),
        h('dt', null, 'Started'), h('dd', null, time(d.created_at_ms)),
        h('dt', null, final ? 'Took' : 'Running for'), h('dd', null, duration(took)),
        h('dt', null, 'Id'), h('dd', null, h('code', null, d.id))),
      d.reason ? h('p', { class: 'reason', id: 'deploy-reason' }, d.reason) : null);
    for (const verb of ['promote', 'pause', 'resume', 'abort']) buttons[verb].disabled = final;
    if (!final) {
      buttons.pause.disabled = d.state === 'paused';
      buttons.resume.disabled = d.state !== 'paused';
    }
    buttons.rollback.disabled = false;
    const waitsForPromote = !final && step && step.until_promote && d.step_state === 'running';
    buttons.promote.classList.toggle('primary', Boolean(waitsForPromote));
    fill(steps, timeline(d));
    if (!approve.firstChild) renderApprove();
    if (!live) {
      live = liveTraffic(d.app, d.env, releaseColors(d.release, d.previous_release));
      fill(liveHolder, live.el);
    }
  }

  // One load at a time; a request during a load runs once more after it.
  let loading = null;
  let again = false;
  async function load() {
    if (stopped) return;
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        try {
          const next = await get(`/api/v1/deployments/${enc(id)}`);
          if (stopped) return;
          d = next;
          render();
        } catch (e) {
          if (stopped) return;
          if (!d) fill(head, h('h1', null, 'Deployment'), h('p', { class: 'reason' }, e.message));
          else showResult('error', `refresh failed: ${e.message}`);
        }
      } while (again && !stopped);
    })();
    try {
      await loading;
    } finally {
      loading = null;
    }
  }

  const reload = debounce(load, 150);
  const off = bus.on((event) => {
    if (event.deployment_id === id) reload();
  });
  const timer = setInterval(load, REFRESH_MS);
  load();
  return () => {
    stopped = true;
    off();
    reload.cancel();
    clearInterval(timer);
    if (live) live.stop();
  };
}
