// The dashboard end to end: a real `ferry server` (with its local agent, router and the
// demo app) in a temporary folder, releases v1 and v2, v1 deployed, v2's canary paused
// at 20% until promoted; then headless Chromium signs in with a token, sees the canary
// and its traffic split, is refused a command with a viewer token (the server's 403
// text shown), clicks Promote and watches the deployment reach succeeded. Screenshots
// are kept in FERRY_ARTIFACT_DIR.
// The cluster, browser and runner: harness.mjs.
import path from 'node:path';
import {
  OUT, check, launchBrowser, log, runTest, signIn, sleep, startCluster, startTraffic, state, waitFor,
} from './harness.mjs';

const APP = `    strategy:
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

async function main() {
  const { base, token, appPort, api, deployment, deployed } = await startCluster({
    prefix: 'ferry-web-', tokenName: 'web-admin', environments: '  dev:\n    chaos: allowed\n', app: APP });
  check(typeof token === 'string' && token.startsWith('ferry_'), 'ferry token create --offline gave a token');

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
  await deployed(d1.id, 'v1 to be deployed');
  log('v1 deployed');
  const d2 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'dev', release: 'v2' });
  await waitFor('v2 canary to wait for promote', async () => {
    const d = await deployment(d2.id);
    if (['failed', 'rolled_back', 'aborted', 'succeeded'].includes(d.state)) throw new Error(`v2 ended ${d.state}: ${d.reason}`);
    return d.events.some((e) => e.type === 'waiting_promote');
  }, 60_000);
  log(`v2 canary ${d2.id} paused at 20%`);

  // Bounded traffic through the app's router, so the charts have something to draw.
  const traffic = startTraffic(appPort, { seconds: 150, max: 30_000, pauseMs: 15 });

  const { problems, newPage } = await launchBrowser();
  const { page } = await newPage();
  state.page = page;
  // A wrong token is refused on the form, with the server's words.
  await page.goto(`${base}/`);
  await page.fill('#token', `ferry_000000000000_${'0'.repeat(32)}`);
  await page.click('#login-button');
  await page.waitForFunction(() => /^Not signed in: \S/.test(document.querySelector('.login-error')?.textContent || ''));
  log(`wrong token: ${await page.textContent('.login-error')}`);
  check(await page.isVisible('#login-form') && await page.isHidden('#nav'), 'a wrong token is refused on the sign-in form');
  await signIn(page, base, token, 'web-admin');
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
    await signIn(vp, base, viewer.token, 'web-viewer');
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
  await Promise.race([traffic.done, sleep(5000)]);
  log(`${traffic.sent()} requests sent through the router`);
}

await runTest('dashboard', 'dashboard', 'dev', main);
