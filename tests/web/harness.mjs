// What the browser tests of the dashboard share: a real `ferry server` (local agent,
// router, the demo app) in a temporary folder, a signed-in headless Chromium, bounded
// traffic through the app's router, and a runner that bounds the whole test in time,
// shows what went wrong (screenshot, page text, environment status, server log) and stops
// only the processes the test started.
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

export const FERRY = process.env.FERRY_BIN;
export const DEMO = process.env.FERRY_DEMO_BIN;
export const MODULES = process.env.FERRY_WEB_TEST_DIR;
export const OUT = process.env.FERRY_ARTIFACT_DIR || os.tmpdir();
export const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const OVERALL_MS = 200_000;

const started = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
let checks = 0;
export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  checks += 1;
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeoutMs = 30_000, intervalMs = 250) {
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

// The processes this test started are found by what names them exactly: the agent by its
// listen address, the demo app's instances by their working directory (our folder).
function ourProcesses(agentListen, dir) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // another user's process, or gone
      }
      if ((argv.includes('agent') && argv.includes(agentListen)) || (cwd === dir && argv[0] === DEMO))
        out.push(Number(name));
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

export const state = { dir: '', server: null, serverExited: false, agentPort: 0, browser: null, page: null, trafficStop: false, ok: false };

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
  // The agent outlives the server by design: stop it and the instances it ran.
  if (state.agentPort && state.dir)
    for (const pid of ourProcesses(`127.0.0.1:${state.agentPort}`, state.dir)) await stopPid(pid, 3000);
  if (state.dir) {
    if (state.ok) fs.rmSync(state.dir, { recursive: true, force: true });
    else log(`kept ${state.dir} (server.log there)`);
  }
}

export function serverLogTail() {
  try {
    return fs.readFileSync(path.join(state.dir, 'server.log'), 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '(no server.log)';
  }
}

// ferry.yaml: the server on `serverPort`, the given `environments` block, and the demo app
// `web` (one instance in our folder, readiness every 100 ms) followed by `app`, the YAML
// of its strategy, analysis, SLO … (indented under `web:`).
function writeConfig(dir, serverPort, appPort, environments, app) {
  const q = JSON.stringify;  // a JSON string is a YAML double-quoted scalar
  const yaml = `version: 1
server:
  listen: 127.0.0.1:${serverPort}
  store: ${q(`sqlite:${dir}/data/ferry.db`)}
  data_dir: ${q(`${dir}/data`)}
environments:
${environments}apps:
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
${app}`;
  const file = path.join(dir, 'ferry.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

// Starts `ferry server` (with its local agent) on free ports in a new temporary folder,
// with an admin token named `tokenName`. Returns what the test talks to.
export async function startCluster({ prefix, tokenName, environments, app }) {
  for (const [name, v] of Object.entries({ FERRY_BIN: FERRY, FERRY_DEMO_BIN: DEMO, FERRY_WEB_TEST_DIR: MODULES }))
    if (!v) throw new Error(`${name} is not set (run this through ctest)`);
  state.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  // The instances run in it (run.cwd) as ferry-app when the agent is root: enterable.
  fs.chmodSync(state.dir, 0o711);
  const [serverPort, agentPort, appPort] = await freePorts(3);
  state.agentPort = agentPort;
  const base = `http://127.0.0.1:${serverPort}`;
  const config = writeConfig(state.dir, serverPort, appPort, environments, app);
  log(`folder ${state.dir}, server ${base}, agent :${agentPort}, app :${appPort}`);

  const tokenOut = execFileSync(FERRY, ['--json', 'token', 'create', '--offline', '--config', config,
                                        '--name', tokenName, '--role', 'admin'], { timeout: 20_000 });
  const token = JSON.parse(tokenOut.toString()).token;
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
  // Waits for a deployment to succeed; any other end is an error naming its reason.
  async function deployed(id, what) {
    await waitFor(what, async () => {
      const d = await deployment(id);
      if (['failed', 'rolled_back', 'aborted'].includes(d.state)) throw new Error(`${what}: ended ${d.state}: ${d.reason}`);
      return d.state === 'succeeded';
    }, 60_000);
  }
  return { base, token, config, appPort, api, deployment, deployed };
}

// Bounded traffic through the app's router by `clients` loops (until stopped, `seconds`
// or `max` requests in all). `sent()` counts them; `done` ends when they all have.
export function startTraffic(appPort, { clients = 2, seconds, max, pauseMs }) {
  let sent = 0;
  const loops = Array.from({ length: clients }, async () => {
    const until = Date.now() + seconds * 1000;
    while (!state.trafficStop && Date.now() < until && sent < max) {
      sent += 1;
      try {
        const r = await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
      } catch {
        // counted by the router as an error if it reached it; nothing to do here
      }
      await sleep(pauseMs);
    }
  });
  return { done: Promise.all(loops), sent: () => sent };
}

// Headless Chromium. `newPage()` gives a fresh context's page whose CSP violations and
// uncaught errors are collected in `problems` (a test ends by checking it is empty).
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/install-deps.sh --test)`);
  const require = createRequire(path.join(MODULES, 'package.json'));
  const { chromium } = require('playwright-core');
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
  return { problems, newPage };
}

// Signs `page` in at `base` with `token`, and waits until the header names `name`.
export async function signIn(page, base, token, name) {
  await page.goto(`${base}/`);
  await page.fill('#token', token);
  await page.click('#login-button');
  await page.waitForFunction((n) => document.querySelector('#whoami')?.textContent.includes(n), name);
}

// Runs `main` within OVERALL_MS, removes old screenshots `${shots}-*.png`, reports, cleans
// up and exits with the result. On failure: a screenshot of the page, its text, the app's
// environment status and the tail of server.log.
export async function runTest(title, shots, env, main) {
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) if (f.startsWith(`${shots}-`) && f.endsWith('.png')) fs.rmSync(path.join(OUT, f));
  const watchdog = setTimeout(async () => {
    console.error(`${title} test: no result after ${OVERALL_MS / 1000} s`);
    await cleanup();
    process.exit(1);
  }, OVERALL_MS);
  try {
    await main();
    state.ok = true;
    log(`${checks} checks passed`);
  } catch (e) {
    console.error(e.stack || String(e));
    if (state.page) {
      // What the page showed when it went wrong.
      const shot = path.join(OUT, `${shots}-failure.png`);
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
        const r = await fetch(`${state.base}/api/v1/apps/web/envs/${env}/status`, {
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
  console.log(state.ok ? `${title}: ${checks} passed, 0 failed` : `${title}: ${checks} passed, 1 failed`);
  process.exit(state.ok ? 0 : 1);
}
