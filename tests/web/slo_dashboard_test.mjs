// The dashboard's SLO view end to end: a real `ferry server` (local agent, router, the demo
// app), web v1 failing half of its requests in production under real traffic until the
// availability SLO's budget is spent, then v2 held by the SLO gate. Headless Chromium
// signs in, opens SLOs and finds web → production with its attainment, budget left, burn
// rates and the page alert as the API states them, and v2 held with the gate's reason;
// the detail page shows the closed gate, the burn chart and the deployments. Screenshots
// are kept in FERRY_ARTIFACT_DIR.
// The cluster, browser and runner: harness.mjs.
import path from 'node:path';
import {
  OUT, check, launchBrowser, log, runTest, signIn, sleep, startCluster, startTraffic, state, waitFor,
} from './harness.mjs';

const ENVIRONMENTS = `  production:
    slo_gate: {min_budget: 50%, max_burn: 2x}
`;
const APP = `    strategy: immediate
    slo:
      availability: 99%
      window: 1h
`;

// The dashboard's percent(): one decimal.
const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)}%`;

async function main() {
  const { base, token, appPort, api, deployment, deployed } = await startCluster({
    prefix: 'ferry-web-slo-', tokenName: 'slo-admin', environments: ENVIRONMENTS, app: APP });

  await api('POST', '/api/v1/releases', { app: 'web', version: 'v1', git_sha: 'aaaa1111', env: { DEMO_FAIL_RATE: '0.5' } });
  await api('POST', '/api/v1/releases', { app: 'web', version: 'v2', git_sha: 'bbbb2222' });
  const d1 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'production', release: 'v1' });
  await deployed(d1.id, 'v1 to be deployed');
  log('v1 (half of its answers 500) deployed to production');

  // Bounded traffic through the router until the collector (every 10 s) has counted
  // enough failures to spend the budget.
  const traffic = startTraffic(appPort, { seconds: 120, max: 20_000, pauseMs: 10 });
  const spent = await waitFor('the budget to be spent', async () => {
    const s = await api('GET', '/api/v1/slo/web/production');
    return s.budget_remaining < 0 && s.objectives[0].alerts.page ? s : null;
  }, 60_000, 500);
  log(`budget left ${pct(spent.budget_remaining)}, 5m burn ${spent.objectives[0].burn['5m']}`);
  state.trafficStop = true;
  await Promise.race([traffic.done, sleep(5000)]);
  log(`${traffic.sent()} requests sent through the router`);

  const d2 = await api('POST', '/api/v1/deployments', { app: 'web', env: 'production', release: 'v2' });
  const held = await waitFor('v2 to wait at the SLO gate', async () => {
    const d = await deployment(d2.id);
    return d.state === 'waiting' && d.reason.startsWith('SLO gate') ? d : null;
  }, 30_000);
  log(`v2 held: ${held.reason}`);

  const { problems, newPage } = await launchBrowser();
  const { page } = await newPage();
  state.page = page;
  await signIn(page, base, token, 'slo-admin');

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
}

await runTest('slo dashboard', 'slo', 'production', main);
