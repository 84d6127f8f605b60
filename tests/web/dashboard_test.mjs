// The dashboard end to end: a real `ferry server` (with its local agent, router and the
// demo app) in a temporary folder, releases v1 and v2, v1 deployed, v2's canary paused
// at 20% until promoted; then headless Chromium signs in with a token, sees the canary
// and its traffic split, is refused a command with a viewer token (the server's 403
// text shown), clicks Promote and watches the deployment reach succeeded. Screenshots
// are kept in FERRY_ARTIFACT_DIR.
//
// Environment (set by tests/web/CMakeLists.txt): FERRY_BIN, FERRY_DEMO_BIN,
// FERRY_WEB_TEST_DIR (holds node_modules/playwright-core), FERRY_ARTIFACT_DIR,
// FERRY_CHROMIUM (default /usr/bin/chromium).
import { createRequire } from 'node:module';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const FERRY = process.env.FERRY_BIN;
const DEMO = process.env.FERRY_DEMO_BIN;
const MODULES = process.env.FERRY_WEB_TEST_DIR;
const OUT = process.env.FERRY_ARTIFACT_DIR || os.tmpdir();
const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const OVERALL_MS = 200_000;

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
let checks = 0;
function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  checks += 1;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns something truthy; throws naming `what` after timeoutMs.
async function waitFor(what, fn, timeoutMs = 30_000, intervalMs = 200) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
}

async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((res, rej) => s.once('error', rej).listen(0, '127.0.0.1', res));
    servers.push(s);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// ---- processes -------------------------------------------------------------------

function procs() {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // another user's process, or gone
      }
      out.push({ pid: Number(name), argv, cwd });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopPid(pid, graceMs) {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

// ---- the cluster -------------------------------------------------------------------

const state = { dir: '', server: null, serverExited: false, agentPort: 0, browser: null, page: null, trafficStop: false, ok: false };

async function cleanup() {
  state.trafficStop = true;
  if (state.browser) {
    await Promise.race([state.browser.close().catch(() => {}), sleep(10_000)]);
    state.browser = null;
  }
  if (state.server && !state.serverExited) {
    await stopPid(state.server.pid, 5000);
    // reap it so it is no zombie when we look for the agent
    await Promise.race([new Promise((r) => state.server.once('exit', r)), sleep(2000)]);
  }
  // The agent outlives the server by design: stop it, then the instances it ran (their
  // working directory is our temporary folder, which names them exactly).
  if (state.agentPort) {
    const listen = `127.0.0.1:${state.agentPort}`;
    for (const p of procs())
      if (p.argv.includes('agent') && p.argv.includes(listen) && p.pid !== process.pid) await stopPid(p.pid, 3000);
  }
  if (state.dir) {
    for (const p of procs())
      if (p.cwd === state.dir && p.argv[0] === DEMO) await stopPid(p.pid, 2000);
  }
  if (state.dir) {
    if (state.ok) fs.rmSync(state.dir, { recursive: true, force: true });
    else log(`kept ${state.dir} (server.log there)`);
  }
}

function writeConfig(dir, serverPort, appPort) {
  const q = JSON.stringify;  // a JSON string is a YAML double-quoted scalar
  const yaml = `version: 1
server:
  listen: 127.0.0.1:${serverPort}
  store: ${q(`sqlite:${dir}/data/ferry.db`)}
  data_dir: ${q(`${dir}/data`)}
environments:
  dev:
    chaos: allowed
apps:
  web:
    port: ${appPort}
    instances: 1
    run:
      command: [${q(DEMO)}, "--port", "\${PORT}", "--version", "\${VERSION}"]
      cwd: ${q(dir)}
      stop_grace: 2s
    checks:
      readiness:
        http: {path: /healthz}
        interval: 100ms
        timeout: 500ms
    progress_deadline: 30s
    strategy:
      canary:
        steps:
          - weight: 20
          - pause: until_promote
          - weight: 100
    analysis:
      interval: 500ms
      window: 3s
      min_requests: 10
      max_error_rate: 5%
      mann_whitney: false
`;
  const file = path.join(dir, 'ferry.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

function serverLogTail() {
  try {
    return fs.readFileSync(path.join(state.dir, 'server.log'), 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '(no server.log)';
  }
}

async function main() {
  for (const [name, v] of Object.entries({ FERRY_BIN: FERRY, FERRY_DEMO_BIN: DEMO, FERRY_WEB_TEST_DIR: MODULES }))
    if (!v) throw new Error(`${name} is not set (run this through ctest)`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/install-deps.sh --test)`);
  const require = createRequire(path.join(MODULES, 'package.json'));
  const { chromium } = require('playwright-core');

  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) if (/^dashboard-.*\.png$/.test(f)) fs.rmSync(path.join(OUT, f));  // none from an old run
  state.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-web-')));
  // The instances run in it (run.cwd) as ferry-app when the agent is root: enterable.
  fs.chmodSync(state.dir, 0o711);
  const [serverPort, agentPort, appPort] = await freePorts(3);
  state.agentPort = agentPort;
  const base = `http://127.0.0.1:${serverPort}`;
  const config = writeConfig(state.dir, serverPort, appPort);
  log(`folder ${state.dir}, server ${base}, agent :${agentPort}, app :${appPort}`);

  const tokenOut = execFileSync(FERRY, ['--json', 'token', 'create', '--offline', '--config', config,
                                        '--name', 'web-admin', '--role', 'admin'], { timeout: 20_000 });
  const token = JSON.parse(tokenOut.toString()).token;
  check(typeof token === 'string' && token.startsWith('ferry_'), 'ferry token create --offline gave a token');
  state.base = base;
  state.token = token;

  const logFd = fs.openSync(path.join(state.dir, 'server.log'), 'a');
  state.server = spawn(FERRY, ['server', '--config', config, '--agent-listen', `127.0.0.1:${agentPort}`],
                       { stdio: ['ignore', logFd, logFd] });
  state.server.once('exit', (code, sig) => {
    state.serverExited = true;
    log(`ferry server exited (${code ?? sig})`);
  });
  fs.closeSync(logFd);
  await waitFor('the server to answer /health/live', async () => {
    if (state.serverExited) throw new Error(`ferry server exited early:\n${serverLogTail()}`);
    const r = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(1000) });
    return r.status === 200;
  }, 30_000, 100);
  log('server up');

  async function api(method, p, body, tok = token) {
    const r = await fetch(base + p, {
      method,
      headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const j = await r.json().catch(() => null);
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  }
  const deployment = (id) => api('GET', `/api/v1/deployments/${id}`);

  // The assets: embedded, typed, revalidated by ETag, behind a strict CSP.
  {
    const r = await fetch(`${base}/`, { signal: AbortSignal.timeout(5000) });
    const csp = r.headers.get('content-security-policy') || '';
    check(r.status === 200 && (r.headers.get('content-type') || '').startsWith('text/html'), 'GET / is HTML');
    check(csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes('unsafe'),
          `strict CSP on / (got "${csp}")`);
    check(r.headers.get('x-content-type-options') === 'nosniff', 'nosniff on /');
    const etag = r.headers.get('etag');
    check(etag && r.headers.get('cache-control'), 'ETag and Cache-Control on /');
    const again = await fetch(`${base}/`, { headers: { 'If-None-Match': etag }, signal: AbortSignal.timeout(5000) });
    check(again.status === 304, `If-None-Match gives 304 (got ${again.status})`);
    const js = await fetch(`${base}/js/app.js`, { signal: AbortSignal.timeout(5000) });
    check((js.headers.get('content-type') || '').startsWith('text/javascript'), 'app.js is text/javascript');
    const missing = await fetch(`${base}/no-such-file.js`, { signal: AbortSignal.timeout(5000) });
    check(missing.status === 404, 'an unknown path is 404');
    const anon = await fetch(`${base}/api/v1/apps`, { signal: AbortSignal.timeout(5000) });
    check(anon.status === 401, 'the API needs a token');
  }

  await api('POST', '/api/v1/releases', { app: 'web', version: 'v1', git_sha: 'aaaa1111', env: { DEMO_LATENCY_MS: '4' } });
  await api('POST', '/api/v1/releases', { app: 'web', version: 'v2', git_sha: 'bbbb2222', env: { DEMO_LATENCY_MS: '3' } });
  const d1 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'dev', release: 'v1' });
  await waitFor('v1 to be deployed', async () => {
    const d = await deployment(d1.id);
    if (['failed', 'rolled_back', 'aborted'].includes(d.state)) throw new Error(`v1 ended ${d.state}: ${d.reason}`);
    return d.state === 'succeeded';
  }, 60_000);
  log('v1 deployed');
  const d2 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'dev', release: 'v2' });
  await waitFor('v2 canary to wait for promote', async () => {
    const d = await deployment(d2.id);
    if (['failed', 'rolled_back', 'aborted', 'succeeded'].includes(d.state)) throw new Error(`v2 ended ${d.state}: ${d.reason}`);
    return d.events.some((e) => e.type === 'waiting_promote');
  }, 60_000);
  log(`v2 canary ${d2.id} paused at 20%`);

  // Bounded traffic through the app's router, so the charts have something to draw.
  let sent = 0;
  const traffic = Array.from({ length: 2 }, async () => {
    const until = Date.now() + 150_000;
    while (!state.trafficStop && Date.now() < until && sent < 30_000) {
      sent += 1;
      try {
        const r = await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
      } catch {
        // counted by the router as an error if it reached it; nothing to do here
      }
      await sleep(15);
    }
  });

  state.browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-proxy-server'],
    timeout: 30_000,
  });
  const problems = [];
  async function newPage() {
    const context = await state.browser.newContext({ viewport: { width: 1280, height: 1000 } });
    context.setDefaultTimeout(20_000);
    const page = await context.newPage();
    // A blocked script or style shows up as a console error naming the policy.
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    return { context, page };
  }
  async function signIn(page, tok, name) {
    await page.goto(`${base}/`);
    await page.fill('#token', tok);
    await page.click('#login-button');
    await page.waitForFunction((n) => document.querySelector('#whoami')?.textContent.includes(n), name);
  }

  const { page } = await newPage();
  state.page = page;
  // A wrong token is refused on the form, with the server's words.
  await page.goto(`${base}/`);
  await page.fill('#token', `ferry_000000000000_${'0'.repeat(32)}`);
  await page.click('#login-button');
  await page.waitForFunction(() => /^Not signed in: \S/.test(document.querySelector('.login-error')?.textContent || ''));
  log(`wrong token: ${await page.textContent('.login-error')}`);
  check(await page.isVisible('#login-form') && await page.isHidden('#nav'), 'a wrong token is refused on the sign-in form');
  await signIn(page, token, 'web-admin');
  check(await page.evaluate(() => sessionStorage.getItem('ferry.token')) === token, 'token kept in sessionStorage');
  log('signed in');

  // Overview: the canary is listed with its split.
  const card = `.live-card[data-deployment="${d2.id}"]`;
  await page.waitForSelector(`${card} .split-item[data-release="v2"][data-weight="20"]`);
  await page.waitForSelector(`${card} .split-item[data-release="v1"][data-weight="80"]`);
  check(true, 'overview shows the canary with v1 80% / v2 20%');
  await page.waitForSelector('#stream-state[data-state="live"]');
  check(true, 'event stream connected');

  await page.click(card);
  await page.waitForFunction((id) => location.hash === `#/deployments/${id}`, d2.id);
  await page.waitForSelector('#deployment-head .badge[data-state="running"]');
  await page.waitForSelector('#traffic-split .split-item[data-release="v2"][data-weight="20"]');
  await page.waitForSelector('#traffic-split .split-item[data-release="v1"][data-weight="80"]');
  check(true, 'deployment page shows the traffic split');
  // Per host (issue 16): the agent's own split, its instances and their states, and the
  // generation it reports (the status API's, not a figure of the page's own).
  const host = '#hosts tr[data-agent="local"]';
  await page.waitForSelector(`${host}[data-condition="in sync"] .host-weight[data-release="v2"][data-weight="20"]`);
  await page.waitForSelector(`${host} .host-weight[data-release="v1"][data-weight="80"]`);
  await page.waitForSelector(`${host} .inst[data-instance="web.dev-v2-0"][data-state="ready"]`);
  await page.waitForSelector(`${host} .inst[data-instance="web.dev-v1-0"][data-state="ready"]`);
  {
    const st = await api('GET', '/api/v1/apps/web/envs/dev/status');
    const local = st.agents.find((a) => a.agent === 'local');
    await page.waitForFunction(([sel, g]) => document.querySelector(sel)?.textContent.trim() === g,
                               [`${host} .host-generation`, String(local.generation)]);
    check(true, `the host row shows generation ${local.generation}, v1 80% / v2 20% and both instances ready`);
  }
  const pauseStatus = await page.textContent('.step[data-kind="pause"] .step-status');
  check(pauseStatus.includes('waiting for promote'), `pause step waits for promote (got "${pauseStatus}")`);
  check(await page.$('#btn-promote.primary'), 'Promote is the highlighted action');
  // Per-release figures from the router: v2 gets requests.
  await page.waitForFunction(() => {
    const cell = document.querySelector('#release-stats tr[data-release="v2"] td:nth-child(4)');
    return cell && cell.textContent !== '–' && parseFloat(cell.textContent) > 0;
  }, null, { timeout: 30_000 });
  check(true, 'router stats show requests on v2');
  await sleep(4000);  // a few more seconds of chart
  const canaryShot = path.join(OUT, 'dashboard-canary.png');
  await page.screenshot({ path: canaryShot, fullPage: true });
  log(`screenshot ${canaryShot}`);

  // A viewer may look but not act: the server's 403 text is shown.
  {
    const viewer = await api('POST', '/api/v1/tokens', { name: 'web-viewer', role: 'viewer' });
    const { context, page: vp } = await newPage();
    await signIn(vp, viewer.token, 'web-viewer');
    await vp.goto(`${base}/#/deployments/${d2.id}`);
    await vp.waitForSelector('#deployment-head .badge[data-state="running"]');
    await vp.click('#btn-pause');
    await vp.waitForSelector('#action-result[data-kind="error"]');
    const text = await vp.textContent('#action-result');
    check(text.includes('viewer') && text.includes('needs deployer'), `403 text shown to a viewer (got "${text}")`);
    check((await deployment(d2.id)).state === 'running', 'the refused pause changed nothing');
    await context.close();
  }

  // Approve: the server's answer is shown; here its two-person rule, since the same
  // token asked for the deployment.
  await page.waitForSelector('#approvals li');
  // The approver sees what the release sets in the app's environment (issue 13, item 6).
  await page.waitForSelector('#release-env li');
  const envText = await page.textContent('#release-env');
  check(envText.includes('DEMO_LATENCY_MS=3'), `the approval panel shows the release's env (got "${envText}")`);
  await page.fill('#approve-comment', 'looks good');
  await page.click('#btn-approve');
  await page.waitForSelector('#approve-result[data-kind="error"]');
  const approveText = await page.textContent('#approve-result');
  log(`approve answer: ${approveText}`);
  check(approveText.includes('two-person rule'), `the server's refusal of a self-approval is shown (got "${approveText}")`);

  // Promote, and watch it finish in the page.
  await page.click('#btn-promote');
  await page.waitForSelector('#action-result[data-kind="ok"]');
  await page.waitForSelector('#deployment-head .badge[data-state="succeeded"]', { timeout: 60_000 });
  check(true, 'deployment reached succeeded in the page');
  await page.waitForSelector('#traffic-split .split-item[data-release="v2"][data-weight="100"]', { timeout: 20_000 });
  check(true, 'all traffic on v2');
  await page.waitForSelector(`${host} .host-weight[data-release="v2"][data-weight="100"]`, { timeout: 20_000 });
  await page.waitForFunction((sel) => !document.querySelector(`${sel} .inst[data-release="v1"]`), host, { timeout: 30_000 });
  check(true, 'the host row shows v2 100% and v1\'s instance gone');
  check((await page.$$('.step:not(.done)')).length === 0, 'every step done');
  await sleep(1500);
  const doneShot = path.join(OUT, 'dashboard-succeeded.png');
  await page.screenshot({ path: doneShot, fullPage: true });
  log(`screenshot ${doneShot}`);

  // History and audit log.
  await page.click('#nav a[data-view="history"]');
  await page.waitForSelector(`#history tr[data-deployment="${d2.id}"] .badge[data-state="succeeded"]`);
  await page.waitForSelector(`#history tr[data-deployment="${d1.id}"]`);
  check(true, 'history lists both deployments');
  await page.click('#nav a[data-view="audit"]');
  await page.waitForSelector('#audit tr[data-action="deployment.promote"]');
  await page.waitForSelector('#audit tr[data-action="api.denied"]');
  check(true, 'audit log shows the promote and the denied pause');
  await page.click('#audit-verify');
  await page.waitForSelector('#audit-verify-result[data-ok]');
  check(true, 'the server\'s audit chain verdict is shown');
  log(`audit verify: ${await page.textContent('#audit-verify-result')}`);
  const auditShot = path.join(OUT, 'dashboard-audit.png');
  await page.screenshot({ path: auditShot });
  log(`screenshot ${auditShot}`);

  // A running game-day experiment shows as a banner on every page, and goes when stopped.
  const chaos = await api('POST', '/api/v1/chaos',
                          { app: 'web', env: 'dev', kind: 'latency', latency_ms: 1, share: 0.01, duration_ms: 600_000 });
  await page.waitForSelector('#chaos-banner .chaos-card[data-app="web"][data-env="dev"]', { timeout: 15_000 });
  const bannerText = await page.textContent('#chaos-banner');
  check(bannerText.includes('latency: +1 ms on 1% of requests') && bannerText.includes('--stop'),
        `the chaos banner names the experiment: ${bannerText}`);
  await api('POST', `/api/v1/chaos/${chaos.id}/stop`);
  await page.waitForSelector('#chaos-banner', { state: 'hidden', timeout: 15_000 });
  check(true, 'the chaos banner goes once the experiment is stopped');

  check(problems.length === 0, `no CSP violation or uncaught error in the page: ${problems.join(' | ')}`);
  state.trafficStop = true;
  await Promise.race([Promise.all(traffic), sleep(5000)]);
  log(`${sent} requests sent through the router`);
  state.ok = true;
}

const watchdog = setTimeout(async () => {
  console.error(`dashboard test: no result after ${OVERALL_MS / 1000} s`);
  await cleanup();
  process.exit(1);
}, OVERALL_MS);

try {
  await main();
  log(`${checks} checks passed`);
} catch (e) {
  console.error(e.stack || String(e));
  if (state.page) {
    // What the page showed when it went wrong.
    const shot = path.join(OUT, 'dashboard-failure.png');
    try {
      await state.page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
      console.error(`screenshot of the failure: ${shot}`);
      console.error(`page text:\n${(await state.page.innerText('body', { timeout: 5000 })).slice(0, 3000)}`);
    } catch (err) {
      console.error(`no failure screenshot: ${err.message}`);
    }
  }
  if (state.base && state.token) {
    try {
      const r = await fetch(`${state.base}/api/v1/apps/web/envs/dev/status`, {
        headers: { Authorization: `Bearer ${state.token}` }, signal: AbortSignal.timeout(5000) });
      console.error(`environment status: ${r.status} ${(await r.text()).slice(0, 2000)}`);
    } catch (err) {
      console.error(`environment status: ${err.message}`);
    }
  }
  if (state.dir) console.error(`server.log (tail):\n${serverLogTail()}`);
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
console.log(state.ok ? `dashboard: ${checks} passed, 0 failed` : `dashboard: ${checks} passed, 1 failed`);
process.exit(state.ok ? 0 : 1);
