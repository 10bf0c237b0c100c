import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { controlPlaneFixture, MAPPING, TOKEN, type ControlPlaneFixture } from './helpers/control-plane.ts';
import { REPO_ROOT } from './helpers/project.ts';
import { AlertDispatcher } from '../src/alerts/dispatcher.ts';
import { createSilence } from '../src/alerts/silences.ts';
import { quoteIdent } from '../src/db/sql.ts';
import { cliActor } from '../src/state/actor.ts';
import { insertEvent } from '../src/state/events.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The dashboard in a real headless Chromium (Debian's package, driven by playwright-core), on real data from
 * real runs and a real held run: each page renders with that data, the approve flow works by clicking,
 * charts draw on a non-empty canvas, no console errors (a CSP violation is one), pages read without
 * JavaScript, and a phone-sized viewport needs no sideways scrolling. Screenshots go to test-artifacts/.
 */

const CHROMIUM = process.env.SEGSYNC_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install it with apt-get install -y chromium (scripts/dev.sh test does when it can)`;
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts/dashboard');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

let f: ControlPlaneFixture;
let ctx: BrowserContext;
let profile: string;
const problems: string[] = [];

async function browser(opts: { javaScriptEnabled?: boolean; viewport?: { width: number; height: number } } = {}): Promise<{ ctx: BrowserContext; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-chromium-'));
  const c = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: ARGS, headless: true, ...opts });
  c.on('page', (p) => watch(p));
  for (const p of c.pages()) watch(p);
  return { ctx: c, dir };
}

function watch(p: Page): void {
  p.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()} (${p.url()})`); });
  p.on('pageerror', (e) => problems.push(`pageerror: ${e.message} (${p.url()})`));
}

async function login(page: Page): Promise<void> {
  await page.goto(`${f.url}/`);
  assert.match(page.url(), /\/login\?next=%2F$/);
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${f.url}/`), page.click('button[type=submit]')]);
}

/** Non-transparent pixels on the chart's canvas. */
async function inkedPixels(page: Page, selector: string): Promise<number> {
  await page.waitForSelector(`${selector} canvas`);
  // Runs in the page (the test's TypeScript has no DOM types, so as a string).
  return page.evaluate(`(() => {
    const canvas = document.querySelector(${JSON.stringify(selector + ' canvas')});
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  })()`);
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

describe('the dashboard in headless Chromium', { skip }, () => {
  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    f = await controlPlaneFixture();
    ({ ctx, dir: profile } = await browser());
  });
  after(async () => {
    await ctx?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await f?.close();
  });

  test('login, then the overview: every mapping, the held run first and flagged', async () => {
    const page = await ctx.newPage();
    await login(page);
    await page.waitForSelector('.card.held');
    assert.match(await page.textContent('.card.held') ?? '', new RegExp(`Run #${f.held.runId} of ${MAPPING} is held for approval`));
    const row = await page.textContent('table tbody tr');
    assert.match(row ?? '', new RegExp(MAPPING));
    assert.match(row ?? '', /held/);
    assert.match(row ?? '', /0 4 \* \* \*/);
    await shot(page, 'overview');
    await page.close();
  });

  test('a mapping page: config, runs and the changed-share chart drawn', async () => {
    const page = await ctx.newPage();
    await page.goto(`${f.url}/mappings/${MAPPING}`);
    assert.match(await page.textContent('main') ?? '', /match on customer_id/);
    assert.equal(await page.locator('main table tbody tr').count() >= f.runs.length + 1, true);
    assert.ok(await inkedPixels(page, '#changed-chart') > 500, 'the chart drew on its canvas');
    await shot(page, 'mapping');
    await page.close();
  });

  test('a run page: what changed and why, and its planned items paged in place by htmx', async () => {
    const page = await ctx.newPage();
    const s = f.runs[0]!;
    await page.goto(`${f.url}/runs/${s.runId}`);
    const main = await page.textContent('main') ?? '';
    assert.match(main, new RegExp(`Run #${s.runId} of ${MAPPING}: succeeded`));
    const createRow = await page.textContent('main table tbody tr');
    assert.match(createRow ?? '', new RegExp(`create\\s*${s.counts.create}\\s*${s.counts.create}`), 'planned and delivered creates');
    await page.waitForSelector('#transitions tbody tr');
    assert.match(await page.textContent('#transitions') ?? '', /\(new\)/, 'the transitions loaded after the page (htmx)');
    const before = await page.locator('#items ~ div table tbody tr').count();
    assert.equal(before, 50);
    await page.click('#more-items a');
    await waitFor('the next page of items', async () => (await page.locator('#items ~ div table tbody tr').count()) > 50);
    assert.match(page.url(), new RegExp(`/runs/${s.runId}$`), 'htmx swapped in place');
    await shot(page, 'run');
    await page.close();
  });

  test('the held run: the evidence, then approve by clicking; the run is delivered', async () => {
    const page = await ctx.newPage();
    await page.goto(`${f.url}/runs/${f.held.runId}`);
    assert.match(await page.textContent('h1') ?? '', /held/);
    const verdicts = await page.textContent('#verdicts') ?? '';
    assert.match(verdicts, /distribution\s*hold/);
    assert.match(verdicts, /PSI/);
    await shot(page, 'held-run');
    await page.fill('#approve-form textarea[name=reason]', 'segment definitions changed on purpose');
    const [posted] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/approve')), page.click('#approve-form button')]);
    assert.equal(posted.status(), 303, 'the approval was accepted and redirects to the run');
    await page.waitForURL(`${f.url}/runs/${f.held.runId}`);
    await waitFor('the approved run to be delivered', async () => (await f.q<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [f.held.runId]))[0]!.status === 'succeeded');
    await page.reload();
    assert.match(await page.textContent('h1') ?? '', /succeeded/);
    assert.equal(await page.locator('#approve-form').count(), 0, 'nothing left to approve');
    const history = await page.textContent('main') ?? '';
    assert.match(history, /approved\s*api:admin-token\s*segment definitions changed on purpose/);
    await shot(page, 'approved-run');
    await page.close();
  });

  test('the record debugger: search a key (htmx), see each run\'s send, receipts and segment history', async () => {
    const page = await ctx.newPage();
    const [k] = await f.q<{ key: string }>(`SELECT key FROM segsync.run_items GROUP BY key ORDER BY count(*) DESC, key LIMIT 1`);
    await page.goto(`${f.url}/records`);
    await page.fill('input[name=key]', k!.key);
    await page.click('#record-search button');
    await page.waitForSelector('#timeline');
    assert.match(page.url(), /\/records$/, 'swapped in place');
    assert.ok(await page.locator('#timeline tbody tr').count() >= 2);
    assert.match(await page.textContent('#timeline') ?? '', /delivered/);
    assert.ok(await page.locator('#segment-history tbody tr').count() >= 5);
    await shot(page, 'record');
    // A record's link on a run page carries a sealed reference, never the key, and opens the same timeline.
    await page.goto(`${f.url}/runs/${f.runs[0]!.runId}`);
    const link = page.locator('a[href^="/records?"]').first();
    const href = (await link.getAttribute('href'))!;
    assert.match(href, /[?&]ref=r_[A-Za-z0-9_-]+$/);
    const keys = await f.q<{ key: string }>(`SELECT key FROM segsync.run_items WHERE run_id = $1`, [f.runs[0]!.runId]);
    assert.ok(keys.length > 0 && !keys.some((x) => href.includes(x.key) || href.includes(encodeURIComponent(x.key))), `no key in ${href}`);
    await link.click();
    await page.waitForSelector('#timeline');
    assert.ok(!keys.some((x) => page.url().includes(x.key)), 'nor in the address the browser shows');
    // An edited reference finds nothing and says so.
    await page.goto(`${f.url}/records?mapping=${MAPPING}&ref=${href.split('ref=')[1]!.slice(0, -2)}xx`);
    assert.equal(await page.locator('#timeline').count(), 0);
    await page.close();
  });

  test('segment history: sizes over time and changed share drawn, transitions listed', async () => {
    const page = await ctx.newPage();
    await page.goto(`${f.url}/segments`);
    assert.ok(await inkedPixels(page, '#sizes-chart') > 1000, 'the sizes chart drew');
    assert.ok(await inkedPixels(page, '#changed-chart') > 500, 'the changed-share chart drew');
    assert.ok(await page.locator('#flows tbody tr').count() > 0);
    await shot(page, 'segments');
    await page.close();
  });

  test('the events list shows the hold and the approval run', async () => {
    const page = await ctx.newPage();
    await page.goto(`${f.url}/events`);
    assert.match(await page.textContent('#events') ?? '', /run_held/);
    await shot(page, 'events');
    await page.close();
  });

  test('the alerts page, reached from the events list: open incidents with their deliveries and the silences in force, masked', async () => {
    const schema = f.app.config.settings.state.schema;
    await insertEvent(f.app.warehouse.pool, schema, { kind: 'destination_down', severity: 'critical', mapping: MAPPING, message: `files unreachable for carol.white@example.com's export` });
    const dispatcher = new AlertDispatcher({ pool: f.app.warehouse.pool, schema, config: () => f.app.config, log: f.app.log });
    await dispatcher.tick();
    await dispatcher.settle();
    await createSilence(f.app.warehouse.pool, quoteIdent(schema), cliActor(), { matchers: [`mapping=${MAPPING}`], forMs: 3_600_000, comment: 'maintenance, ask bob.jones@example.com' });
    const page = await ctx.newPage();
    await page.goto(`${f.url}/events`);
    await page.click('main a[href="/alerts"]');
    await page.waitForURL(`${f.url}/alerts`);
    const incidents = await page.textContent('#incidents') ?? '';
    assert.match(incidents, /destination_down/);
    assert.ok(!incidents.includes('carol.white@example.com'), `the message's address is masked: ${incidents}`);
    const silences = await page.textContent('#silences') ?? '';
    assert.match(silences, new RegExp(`mapping=${MAPPING}`));
    assert.ok(!silences.includes('bob.jones@example.com'), `the comment's address is masked: ${silences}`);
    assert.equal(await page.locator('header nav a[href="/alerts"]').count(), 1, 'in the nav');
    assert.equal(await page.locator('main form[method="post"]').count(), 0, 'read-only');
    await shot(page, 'alerts');
    await page.close();
  });

  test('on a phone: no sideways scrolling of the page', async () => {
    const page = await ctx.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    for (const p of ['/', `/runs/${f.held.runId}`, '/segments', '/alerts']) {
      await page.goto(f.url + p);
      const [scroll, width] = await page.evaluate<[number, number]>('[document.documentElement.scrollWidth, window.innerWidth]');
      assert.ok(scroll! <= width! + 1, `${p}: ${scroll} > ${width}`);
    }
    await shot(page, 'phone-run');
    await page.close();
  });

  test('without JavaScript every page still reads (forms post, links page)', async () => {
    const nojs = await browser({ javaScriptEnabled: false });
    try {
      const page = await nojs.ctx.newPage();
      await login(page);
      await page.goto(`${f.url}/runs/${f.runs[0]!.runId}`);
      assert.match(await page.textContent('h1') ?? '', /succeeded/);
      await page.click('#more-items a');
      assert.match(page.url(), /cursor=/, 'the link pages without htmx');
      await page.goto(`${f.url}/runs/${f.runs[0]!.runId}`);
      await page.click('text=Show the segment transitions');
      assert.ok(await page.locator('#transitions tbody tr').count() > 0, 'the transitions without htmx');
      // Without JavaScript the search form posts the key: the result comes back, the key stays out of the URL.
      const [first] = await f.q<{ key: string }>('SELECT min(key) AS key FROM segsync.run_items');
      await page.goto(`${f.url}/records`);
      await page.fill('input[name=key]', first!.key);
      await page.click('#record-search button');
      await page.waitForSelector('#timeline');
      assert.ok(await page.locator('#timeline tbody tr').count() >= 1);
      assert.ok(!page.url().includes(first!.key) && !page.url().includes(encodeURIComponent(first!.key)));
      await page.goto(`${f.url}/segments`);
      assert.ok(await page.locator('#sizes tbody tr').count() > 0, 'the figures are in a table');
      await shot(page, 'nojs-segments');
    } finally {
      await nojs.ctx.close();
      await rm(nojs.dir, { recursive: true, force: true });
    }
  });

  test('no console errors and no page errors anywhere (CSP violations included)', () => {
    assert.deepEqual(problems, []);
  });
});
