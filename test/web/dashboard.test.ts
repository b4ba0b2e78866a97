/**
 * The dashboard end to end, in real headless Chromium against a real `tide up` (one simulated
 * H100): tenant A signs in with the keyboard, sees its running job hold the GPU, fills the submit
 * form (a bad field gets the API's error on the field), submits, and watches the job go from
 * pending to running to succeeded without a reload while a second tab cancels the job that held
 * the GPU; it reads the job's logs, sees the GPU turn free, filters the list. Tenant B sees none
 * of it; the admin sees both and compares two schedulers on the cluster's history. Every main view passes axe-core (no serious or critical violation), at laptop and phone
 * width, with no console error or failed request; screenshots go to test-output/web/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Api, freePort, ROOT, tempDir, tide, waitFor, type Proc } from '../e2e/harness.ts';
import { axeViolations, launch, watchProblems } from './browser.ts';

const SHOTS = join(ROOT, 'test-output', 'web');
let up: Proc;
let url = '';
let browser: Browser;
let alice = '';
let bob = '';
let admin: Api;
let adminToken = '';

before(async () => {
  // The dashboard as `npm run build` makes it (a no-op when it is fresh).
  const { buildWeb } = (await import(join(ROOT, 'scripts', 'buildWeb.mjs'))) as { buildWeb: () => Promise<string> };
  await buildWeb();
  mkdirSync(SHOTS, { recursive: true });
  const dir = tempDir('web');
  const port = await freePort();
  up = tide(['up', '--port', String(port), '--data-dir', dir, '--gpus', '1xH100']);
  await waitFor('tide up', async () => (up.output.includes('Tide is up') ? true : undefined), 60_000);
  url = `http://127.0.0.1:${port}`;
  const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { adminToken: string };
  adminToken = creds.adminToken;
  admin = new Api(url, adminToken);
  await waitFor('the node', async () => ((await admin.req('GET', '/v1/nodes')).json.nodes?.[0]?.state === 'ready' ? true : undefined), 30_000);
  for (const name of ['alice', 'bob']) {
    const r = await admin.req('POST', '/v1/tenants', { name });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    if (name === 'alice') alice = r.json.token;
    else bob = r.json.token;
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(url);
  await page.locator('#token').fill(token);
  await page.keyboard.press('Enter');
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Follows a link with the keyboard: focus, then Enter. */
async function follow(page: Page, href: string): Promise<void> {
  await page.locator(`a[href="${href}"]`).first().focus();
  await page.keyboard.press('Enter');
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

test('tenant A submits through the form and watches its job live; tenant B sees none of it', async () => {
  const a = new Api(url, alice);
  // It writes progress, so its simulated GPU reads busy ("in use"; a task that only sleeps reads idle: docs/idle.md).
  const busy = 'echo holding; i=0; while :; do i=$((i+1)); printf \'{"step": %d}\' $i > "$TIDE_PROGRESS_FILE.tmp"; mv "$TIDE_PROGRESS_FILE.tmp" "$TIDE_PROGRESS_FILE"; sleep 0.5; done';
  const blocker = await a.req('POST', '/v1/jobs', { name: 'blocker', kind: 'training', tasks: [{ gpus: 1, command: busy }] });
  assert.equal(blocker.status, 201, JSON.stringify(blocker.json));
  const blockerId: string = blocker.json.jobs[0].id;
  await a.waitState(blockerId, ['running'], 30_000);

  const ctx: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const problems = watchProblems(page);
  const axe: string[] = [];
  const check = async (view: string): Promise<void> => {
    for (const v of await axeViolations(page)) axe.push(`${view}: ${v}`);
  };
  await signIn(page, alice);
  assert.equal(await page.getByTestId('who').textContent(), 'tenant alice');

  // Cluster: the blocker holds the only GPU; focusing the cell names it.
  await page.locator('[data-gpu][data-state="whole"]').waitFor();
  assert.equal(await page.getByTestId('count-allocated').textContent(), '1');
  await page.locator('[data-gpu]').first().focus();
  await page.getByTestId('gpu-detail').getByText('blocker').waitFor();
  await shot(page, 'cluster');
  await check('cluster');

  // Submit: a bad memory value gets the API's error on its field; fixed, the server accepts it.
  await follow(page, '#/submit');
  await page.getByLabel('Name').fill('e2e-train');
  await page.getByLabel('Memory').fill('lots');
  await page.getByTestId('error-memory').waitFor();
  assert.match((await page.getByTestId('error-memory').textContent()) ?? '', /\S/);
  await page.getByLabel('Memory').fill('1Gi');
  await page.getByLabel('CPUs').fill('1');
  await page.getByLabel('Command').fill('echo hello-from-e2e; sleep 4; echo done-e2e');
  await page.getByTestId('validity').getByText('The server accepts this spec.').waitFor();
  assert.match((await page.getByTestId('yaml').textContent()) ?? '', /name: e2e-train/);
  await shot(page, 'submit');
  await check('submit');
  await page.getByRole('button', { name: 'Submit job' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/jobs\/\d+$/);
  const jobId = page.url().split('/').pop() as string;
  await page.evaluate('window.noReload = true');

  // Pending behind the blocker, with its reason.
  await page.getByTestId('job-state').getByText('pending', { exact: true }).waitFor();
  await page.getByTestId('job-reason').waitFor();
  await shot(page, 'job-pending');
  await check('job');

  // A second tab cancels the blocker (keyboard); the first watches without reloading.
  const tab = await ctx.newPage();
  const tabProblems = watchProblems(tab);
  await tab.goto(`${url}/#/jobs/${blockerId}`);
  await tab.getByRole('button', { name: 'Cancel job' }).focus();
  await tab.keyboard.press('Enter');
  await tab.getByTestId('job-state').getByText('cancelled', { exact: true }).waitFor({ timeout: 30_000 });
  await tab.close();

  await page.getByTestId('job-state').getByText('running', { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByTestId('logs').getByText(/hello-from-e2e/).waitFor({ timeout: 30_000 });
  await page.getByTestId('job-state').getByText('succeeded', { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByTestId('logs').getByText(/done-e2e/).waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate('window.noReload'), true, 'the page was not reloaded');
  const timeline = (await page.getByTestId('timeline').textContent()) ?? '';
  assert.match(timeline, /job:submitted/);
  await shot(page, 'job');

  // The GPU turns free on the grid (pushed, not reloaded).
  await follow(page, '#/cluster');
  await page.locator('[data-gpu][data-state="free"]').waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('count-free').textContent(), '1');

  // The list: both jobs, filtered by state.
  await follow(page, '#/jobs');
  await page.locator(`tr[data-job="${jobId}"] .s-succeeded`).waitFor();
  await page.getByLabel('State').selectOption('cancelled');
  await page.waitForURL(/state=cancelled/);
  await page.locator(`tr[data-job="${jobId}"]`).waitFor({ state: 'detached' });
  await page.locator(`tr[data-job="${blockerId}"] .s-cancelled`).waitFor();
  assert.equal(await page.locator('tr[data-job]').count(), 1, 'only the cancelled job is listed');
  await shot(page, 'jobs');
  await check('jobs');
  await follow(page, '#/queues');
  await page.getByTestId('queues-table').waitFor();
  await shot(page, 'queues');
  await check('queues');
  await follow(page, '#/whatif');
  await page.getByRole('heading', { name: 'What-if' }).waitFor();
  await check('whatif');

  // A phone-sized viewport: nothing wider than the screen.
  const phone = await ctx.newPage();
  const phoneProblems = watchProblems(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  for (const view of ['cluster', 'jobs', 'submit', 'queues']) {
    await phone.goto(`${url}/#/${view}`);
    await phone.locator('h1').first().waitFor();
    await phone.locator('main h1').waitFor();
    const overflow = (await phone.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    assert.ok(overflow <= 1, `${view} is ${overflow}px wider than a phone`);
    await shot(phone, `${view}-phone`);
  }
  await check('phone');
  assert.deepEqual(axe, [], 'axe-core: serious or critical violations');
  assert.deepEqual([...problems, ...tabProblems, ...phoneProblems], [], 'console errors or failed requests');
  await ctx.close();

  // Tenant B: none of A's jobs in the list, and A's job page is not found.
  const ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const pageB = await ctxB.newPage();
  await signIn(pageB, bob);
  await follow(pageB, '#/jobs');
  await pageB.getByTestId('no-jobs').waitFor();
  await pageB.goto(`${url}/#/jobs/${jobId}`);
  await pageB.getByText(`No job ${jobId} (or not yours).`).waitFor();
  const text = await pageB.locator('body').innerText();
  assert.doesNotMatch(text, /e2e-train|blocker|alice/);
  await shot(pageB, 'tenant-b');
  await ctxB.close();

  // The admin sees both tenants' jobs, and compares two schedulers on this cluster's history.
  const ctxAdmin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const pa = await ctxAdmin.newPage();
  const adminProblems = watchProblems(pa);
  await signIn(pa, adminToken);
  await follow(pa, '#/jobs');
  await pa.locator(`tr[data-job="${jobId}"]`).getByRole('cell', { name: 'alice', exact: true }).waitFor();
  await follow(pa, '#/whatif');
  await pa.getByRole('button', { name: 'Compare' }).focus();
  await pa.keyboard.press('Enter');
  await pa.getByTestId('whatif-result').waitFor({ timeout: 90_000 });
  assert.match((await pa.getByTestId('whatif-result').textContent()) ?? '', /2 jobs on 1 GPUs/);
  await pa.locator('.svg-chart img').waitFor();
  await shot(pa, 'whatif');
  const adminAxe = await axeViolations(pa);
  assert.deepEqual(adminAxe, [], 'axe-core on the what-if results');
  assert.deepEqual(adminProblems, [], 'console errors or failed requests (admin)');
  await ctxAdmin.close();
});

test('a batch array from the form: the list shows its elements, and its counts above them', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const problems = watchProblems(page);
  await signIn(page, alice);
  await follow(page, '#/submit');
  await page.getByLabel('Batch array over shards').check();
  await page.getByLabel('Name').fill('e2e-shards');
  await page.getByLabel('GPUs', { exact: true }).fill('0');
  await page.getByLabel('CPUs').fill('1');
  await page.getByLabel('Memory').fill('1Gi');
  await page.getByLabel('Command').fill('echo shard-$TIDE_ARRAY_INDEX');
  await page.getByLabel('Shards (array elements)').fill('2');
  await page.getByTestId('validity').getByText('The server accepts this spec.').waitFor();
  await page.getByRole('button', { name: 'Submit job' }).click();
  await page.waitForURL(/#\/jobs\?array=\d+$/);
  await page.getByTestId('array-summary').getByText(/e2e-shards, 2 jobs — 2 succeeded/).waitFor({ timeout: 30_000 });
  // CPU-only elements placed on the node together ran as one job (a range, one process each).
  assert.equal(await page.locator('tr[data-job]').count(), 1, "the one job of the array's two elements");
  assert.match((await page.locator('tr[data-job]').first().textContent()) ?? '', /e2e-shards-\[0-1\]/);
  await shot(page, 'array');
  // An element's page names its array and leads back to it.
  const arrayId = new URL(page.url()).hash.split('array=')[1] as string;
  await page.locator('tr[data-job] a').first().click();
  await page.getByText('elements 0-1, run together').waitFor();
  await page.getByRole('link', { name: `array ${arrayId}` }).click();
  await page.waitForURL(new RegExp(`#/jobs\\?array=${arrayId}$`));
  assert.deepEqual(await axeViolations(page), [], 'axe-core: serious or critical violations');
  assert.deepEqual(problems, [], 'console errors or failed requests');
  await ctx.close();
});
