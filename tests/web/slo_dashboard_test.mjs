// The dashboard's SLO view end to end: a real `ferry server` (local agent, router, the demo
// app), web v1 failing half of its requests in production under real traffic until the
// availability SLO's budget is spent, then v2 held by the SLO gate. Headless Chromium
// signs in, opens SLOs and finds web → production with its attainment, budget left, burn
// rates and the page alert as the API states them, and v2 held with the gate's reason;
// the detail page shows the closed gate, the burn chart and the deployments. Screenshots
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

async function waitFor(what, fn, timeoutMs = 30_000, intervalMs = 250) {
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

const state = { dir: '', server: null, serverExited: false, agentPort: 0, browser: null, page: null, trafficStop: false, ok: false };

async function cleanup() {
  state.trafficStop = true;
  if (state.browser) {
    await Promise.race([state.browser.close().catch(() => {}), sleep(10_000)]);
    state.browser = null;
  }
  if (state.server && !state.serverExited) {
    await stopPid(state.server.pid, 5000);
    await Promise.race([new Promise((r) => state.server.once('exit', r)), sleep(2000)]);
  }
  if (state.agentPort && state.dir)
    for (const pid of ourProcesses(`127.0.0.1:${state.agentPort}`, state.dir)) await stopPid(pid, 3000);
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
  production:
    slo_gate: {min_budget: 50%, max_burn: 2x}
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
    strategy: immediate
    slo:
      availability: 99%
      window: 1h
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

// The dashboard's percent(): one decimal.
const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)}%`;

async function main() {
  for (const [name, v] of Object.entries({ FERRY_BIN: FERRY, FERRY_DEMO_BIN: DEMO, FERRY_WEB_TEST_DIR: MODULES }))
    if (!v) throw new Error(`${name} is not set (run this through ctest)`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/install-deps.sh --test)`);
  const require = createRequire(path.join(MODULES, 'package.json'));
  const { chromium } = require('playwright-core');

  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) if (/^slo-.*\.png$/.test(f)) fs.rmSync(path.join(OUT, f));
  state.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-web-slo-')));
  fs.chmodSync(state.dir, 0o711);  // the instances run in it, as ferry-app when the agent is root
  const [serverPort, agentPort, appPort] = await freePorts(3);
  state.agentPort = agentPort;
  const base = `http://127.0.0.1:${serverPort}`;
  const config = writeConfig(state.dir, serverPort, appPort);
  log(`folder ${state.dir}, server ${base}, agent :${agentPort}, app :${appPort}`);

  const tokenOut = execFileSync(FERRY, ['--json', 'token', 'create', '--offline', '--config', config,
                                        '--name', 'slo-admin', '--role', 'admin'], { timeout: 20_000 });
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

  async function api(method, p, body) {
    const r = await fetch(base + p, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const j = await r.json().catch(() => null);
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  }
  const deployment = (id) => api('GET', `/api/v1/deployments/${id}`);

  await api('POST', '/api/v1/releases', { app: 'web', version: 'v1', git_sha: 'aaaa1111', env: { DEMO_FAIL_RATE: '0.5' } });
  await api('POST', '/api/v1/releases', { app: 'web', version: 'v2', git_sha: 'bbbb2222' });
  const d1 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'production', release: 'v1' });
  await waitFor('v1 to be deployed', async () => {
    const d = await deployment(d1.id);
    if (['failed', 'rolled_back', 'aborted'].includes(d.state)) throw new Error(`v1 ended ${d.state}: ${d.reason}`);
    return d.state === 'succeeded';
  }, 60_000);
  log('v1 (half of its answers 500) deployed to production');

  // Bounded traffic through the router until the collector (every 10 s) has counted
  // enough failures to spend the budget.
  let sent = 0;
  const traffic = Array.from({ length: 2 }, async () => {
    const until = Date.now() + 120_000;
    while (!state.trafficStop && Date.now() < until && sent < 20_000) {
      sent += 1;
      try {
        const r = await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
      } catch {
        // the router counts what reached it
      }
      await sleep(10);
    }
  });
  const spent = await waitFor('the budget to be spent', async () => {
    const s = await api('GET', '/api/v1/slo/web/production');
    return s.budget_remaining < 0 && s.objectives[0].alerts.page ? s : null;
  }, 60_000, 500);
  log(`budget left ${pct(spent.budget_remaining)}, 5m burn ${spent.objectives[0].burn['5m']}`);
  state.trafficStop = true;
  await Promise.race([Promise.all(traffic), sleep(5000)]);
  log(`${sent} requests sent through the router`);

  const d2 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'production', release: 'v2' });
  const held = await waitFor('v2 to wait at the SLO gate', async () => {
    const d = await deployment(d2.id);
    return d.state === 'waiting' && d.reason.startsWith('SLO gate') ? d : null;
  }, 30_000);
  log(`v2 held: ${held.reason}`);

  state.browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-proxy-server'],
    timeout: 30_000,
  });
  const problems = [];
  const context = await state.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  state.page = page;
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(`${base}/`);
  await page.fill('#token', token);
  await page.click('#login-button');
  await page.waitForFunction(() => document.querySelector('#whoami')?.textContent.includes('slo-admin'));

  // The list: web → production with the API's figures (no traffic now: they hold still).
  await page.click('#nav a[data-view="slo"]');
  const card = '.slo-card[data-app="web"][data-env="production"]';
  await page.waitForSelector(`${card} tr[data-objective="availability"]`);
  // The collector may still add the last requests it had not read: compare with the API
  // until both agree (the view reloads every 10 s).
  let o;
  await waitFor('the card to show the API\'s budget and attainment', async () => {
    o = (await api('GET', '/api/v1/slo/web/production')).objectives[0];
    return (await page.textContent(`${card} .slo-budget`)).trim() === pct(o.budget_remaining) &&
           (await page.textContent(`${card} .slo-attainment`)).trim() === pct(o.attainment, 3);
  }, 40_000, 500);
  check(true, `the card shows the API's budget left ${pct(o.budget_remaining)} and attainment ${pct(o.attainment, 3)}`);
  const burn5 = (await page.textContent(`${card} .slo-burn[data-window="5m"]`)).trim();
  check(parseFloat(burn5) > 14.4 && burn5.endsWith('x'), `the 5m burn rate is shown above 14.4x (got "${burn5}")`);
  for (const w of ['30m', '1h', '6h'])
    check(/x$/.test((await page.textContent(`${card} .slo-burn[data-window="${w}"]`)).trim()), `a ${w} burn rate is shown`);
  check(await page.$(`${card} .slo-alerts .badge[data-alert="page"]`), 'the page alert is shown firing');
  check((await page.getAttribute(`${card} .slo-budget-badge`, 'class')).includes('bad'), 'the budget badge is red');
  await page.waitForSelector(`${card} .slo-held[data-deployment="${d2.id}"]`);
  let reason;
  await waitFor('the held deployment\'s reason to be the server\'s', async () => {
    reason = await page.textContent(`${card} .slo-held-reason`);
    return reason === (await deployment(d2.id)).reason;
  }, 40_000, 500);
  check(true, `the held deployment's reason is the server's ("${reason}")`);
  check(reason.includes('min_budget 50%'), 'the reason names the gate\'s limit');
  const listShot = path.join(OUT, 'slo-list.png');
  await page.screenshot({ path: listShot, fullPage: true });
  log(`screenshot ${listShot}`);

  // The detail: the closed gate, the burn chart, the deployments with their spend.
  await page.click(`${card} a.right`);
  await page.waitForFunction(() => location.hash === '#/slo/web/production');
  await page.waitForSelector('#slo-gate[data-open="false"]');
  check(true, 'the detail shows the gate closed');
  check((await page.$$('#slo-detail .slo-bar.over')).length > 0, 'the burn chart has bars above 1x');
  await page.waitForSelector(`#slo-deployments tr[data-deployment="${d1.id}"]`);
  await page.waitForSelector(`#slo-deployments tr[data-deployment="${d2.id}"]`);
  check(true, 'the deployments of the app in production are listed with their spend');
  const detailShot = path.join(OUT, 'slo-detail.png');
  await page.screenshot({ path: detailShot, fullPage: true });
  log(`screenshot ${detailShot}`);

  // The held deployment's link leads to it.
  await page.click(`.slo-held[data-deployment="${d2.id}"] a`);
  await page.waitForSelector('#deployment-head .badge[data-state="waiting"]');
  check(true, 'the held deployment opens');
  check(problems.length === 0, `no CSP violation or uncaught error in the page: ${problems.join(' | ')}`);
  state.ok = true;
}

const watchdog = setTimeout(async () => {
  console.error(`SLO dashboard test: no result after ${OVERALL_MS / 1000} s`);
  await cleanup();
  process.exit(1);
}, OVERALL_MS);

try {
  await main();
  log(`${checks} checks passed`);
} catch (e) {
  console.error(e.stack || String(e));
  if (state.page) {
    const shot = path.join(OUT, 'slo-failure.png');
    try {
      await state.page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
      console.error(`screenshot of the failure: ${shot}`);
      console.error(`page text:\n${(await state.page.innerText('body', { timeout: 5000 })).slice(0, 3000)}`);
    } catch (err) {
      console.error(`no failure screenshot: ${err.message}`);
    }
  }
  if (state.dir) console.error(`server.log (tail):\n${serverLogTail()}`);
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
console.log(state.ok ? `slo dashboard: ${checks} passed, 0 failed` : `slo dashboard: ${checks} passed, 1 failed`);
process.exit(state.ok ? 0 : 1);
