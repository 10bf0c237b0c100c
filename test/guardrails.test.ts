import assert from 'node:assert/strict';
import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { addUtcMonths } from '../src/demo/generate.ts';
import { loadDemoPayments } from '../src/demo/load.ts';
import { decideHeld, planMapping, runMapping, type RunSummary } from '../src/sync/run.ts';
import { buildAt, openApp } from './helpers/open-app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, REPO_ROOT, type TestProject } from './helpers/project.ts';

/**
 * Guardrails on real models built from deterministic demo data (issue 12): ordinary month-to-month change
 * holds nothing; an upstream accident, an as-of typo or a distribution shift holds the run, nothing is sent,
 * and approval delivers exactly the held plan (or plans again when the model changed since).
 */

const MAPPING = 'rfm-to-file';
const END = new Date('2026-01-01T00:00:00Z');
const MONTHS = 36;
const START = addUtcMonths(END, -MONTHS);

let db: TestDatabase;
let project: TestProject;
let app: App;
let close: () => Promise<void>;

before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  await copyFile(path.join(REPO_ROOT, 'mappings/rfm-to-file.yaml'), path.join(project.dir, 'mappings/rfm-to-file.yaml'));
  ({ app, close } = await openApp(project));
  await loadDemoPayments(app.warehouse, { relation: 'fact_payments', users: 2000, months: MONTHS, seed: 11, end: END });
});

after(async () => {
  await close();
  await project.cleanup();
  await db.drop();
});

const build = (asOf: Date, fullRefresh = false) => buildAt(app, asOf, fullRefresh);
const run = (opts: Parameters<typeof runMapping>[2] = {}) => runMapping(app, MAPPING, opts);
const batches = async () => (await readdir(path.join(project.outDir, MAPPING)).catch(() => [])).filter((f) => f.endsWith('.manifest.json')).length;
const q = async <T>(sql: string, params: unknown[] = []) => (await app.warehouse.pool.query(sql, params)).rows as T[];
const heldRules = (s: RunSummary) => s.error ?? '';

/** Moves `share` of the population from the largest segment to the smallest in the current snapshot. */
async function moveSegments(share: number): Promise<{ from: string; to: string; moved: number }> {
  const segs = await q<{ s: string; n: number }>(`SELECT rfm_segment AS s, count(*)::int AS n FROM rfm_current_segments GROUP BY 1 ORDER BY 2 DESC`);
  const total = segs.reduce((a, r) => a + r.n, 0);
  const from = segs[0]!.s;
  const to = segs[segs.length - 1]!.s;
  const n = Math.round(total * share);
  await q(`UPDATE rfm_segments_hist h SET rfm_segment = $2 WHERE snapshot_at = (SELECT max(snapshot_at) FROM rfm_segments_hist)
           AND user_id IN (SELECT user_id FROM rfm_current_segments WHERE rfm_segment = $1 ORDER BY user_id LIMIT $3)`, [from, to, n]);
  return { from, to, moved: n };
}

describe('guardrails on the RFM models of two years of demo data', () => {
  test('ordinary month-to-month change holds no run: 24 consecutive months, and the figures that show it', async (t) => {
    const psis: number[] = [];
    const changed: number[] = [];
    let holds = 0;
    for (let m = 12; m <= MONTHS; m++) {
      await build(addUtcMonths(START, m));
      const s = await run();
      if (s.status === 'held') {
        holds++;
        t.diagnostic(`month ${m}: held: ${heldRules(s)}`);
        await decideHeld(app, s.runId, 'rejected', 'a false alarm, counted by the test');
        continue;
      }
      assert.equal(s.status, 'succeeded', s.error);
      const [g] = await q<{ verdicts: Array<{ rule: string; value: number | null }> }>(`SELECT guardrails -> 'verdicts' AS verdicts FROM segsync.runs WHERE id = $1`, [s.runId]);
      const v = (rule: string) => g!.verdicts.find((x) => x.rule === rule)?.value;
      if (typeof v('distribution') === 'number') psis.push(v('distribution')!);
      if (typeof v('changed') === 'number') changed.push(v('changed')!);
    }
    t.diagnostic(`24 months: ${holds} held; PSI max ${Math.max(...psis).toFixed(3)}, median ${psis.sort((a, b) => a - b)[psis.length >> 1]!.toFixed(3)}; changed share max ${Math.max(...changed).toFixed(3)}`);
    assert.equal(holds, 0, 'no false alarm on ordinary months');
    assert.ok(psis.length >= 23 && Math.max(...psis) < 0.1, `ordinary months stay below the warning band: ${psis.map((x) => x.toFixed(3)).join(' ')}`);
  });

  test('a 12-point move between two segments is held by PSI (and the anomaly rule); rejected, nothing is sent', async () => {
    const files = await batches();
    const moved = await moveSegments(0.12);
    const dry = await planMapping(app, MAPPING);
    assert.equal(dry.guardrails.find((v) => v.rule === 'distribution')?.verdict, 'hold', JSON.stringify(dry.guardrails));
    const s = await run();
    assert.equal(s.status, 'held');
    assert.match(heldRules(s), /distribution: segment shares moved by PSI/);
    assert.match(heldRules(s), /anomaly: most unusual: share of/);
    assert.equal(await batches(), files, 'nothing was sent');
    const [ev] = await q<{ details: { examples: Array<{ key: string; from: string; to: string }> } }>(`SELECT details FROM segsync.events WHERE kind = 'run_held' AND run_id = $1`, [s.runId]);
    assert.ok(ev!.details.examples.length > 0 && ev!.details.examples.every((e) => e.key.includes('***')), 'the evidence carries masked examples of moved keys');
    assert.ok(ev!.details.examples.some((e) => e.from === moved.from && e.to === moved.to));
    // While held, the mapping plans nothing new: the same held run answers.
    const again = await run();
    assert.deepEqual([again.status, again.runId, again.heldEarlier], ['held', s.runId, true]);
    await decideHeld(app, s.runId, 'rejected', 'upstream bug, fixed in the model');
    const [r] = await q<{ status: string; status_reason: string }>(`SELECT status, status_reason FROM segsync.runs WHERE id = $1`, [s.runId]);
    assert.deepEqual(r, { status: 'rejected', status_reason: 'upstream bug, fixed in the model' });
    await assert.rejects(decideHeld(app, s.runId, 'approved', 'too late'), /is rejected, not held: nothing to approve/);
    assert.equal(await batches(), files, 'a rejected run sends nothing');
  });

  test('approve delivers exactly the held plan; a model changed after the hold is planned and judged again', async () => {
    // The same move (the model still carries it) holds the next run.
    const s = await run();
    assert.equal(s.status, 'held');
    const heldKeys = (await q<{ key: string }>(`SELECT key FROM segsync.run_items WHERE run_id = $1 ORDER BY key`, [s.runId])).map((r) => r.key);
    await decideHeld(app, s.runId, 'approved', 'the segment definitions changed on purpose');
    await assert.rejects(decideHeld(app, s.runId, 'approved', 'twice'), /is approved, not held/);
    const delivered = await run();
    assert.deepEqual([delivered.runId, delivered.status], [s.runId, 'succeeded'], 'the approved run itself is delivered');
    const sent = (await q<{ key: string }>(`SELECT key FROM segsync.receipts WHERE run_id = $1 AND status = 'delivered' ORDER BY key`, [s.runId])).map((r) => r.key);
    assert.deepEqual(sent, heldKeys, 'exactly the held plan was delivered');
    const outbox = (await q<{ t: string }>(`SELECT coalesce(from_state, '*') || '>' || to_state AS t FROM segsync.outbox WHERE run_id = $1 AND subject = 'run' ORDER BY id`, [s.runId])).map((r) => r.t);
    assert.deepEqual(outbox, ['*>planning', 'planning>held', 'held>approved', 'approved>delivering', 'delivering>succeeded']);

    // Hold again, then the model changes before approval: the approval binds to the held plan only.
    await moveSegments(0.12);
    const held = await run();
    assert.equal(held.status, 'held');
    await q(`UPDATE rfm_segments_hist SET monetary = monetary + 1 WHERE snapshot_at = (SELECT max(snapshot_at) FROM rfm_segments_hist) AND user_id IN (SELECT user_id FROM rfm_current_segments ORDER BY user_id LIMIT 3)`);
    await decideHeld(app, held.runId, 'approved', 'looks right');
    const replanned = await run();
    assert.equal(replanned.runId, held.runId, 'the same run, planned again');
    assert.equal(replanned.status, 'held', 'judged again, and held again: the move is still there');
    const t2 = (await q<{ t: string }>(`SELECT coalesce(from_state, '*') || '>' || to_state AS t FROM segsync.outbox WHERE run_id = $1 AND subject = 'run' ORDER BY id`, [held.runId])).map((r) => r.t);
    assert.deepEqual(t2, ['*>planning', 'planning>held', 'held>approved', 'approved>planning', 'planning>held']);
    await decideHeld(app, held.runId, 'rejected', 'enough');
  });

  test('an emptied payments table (an upstream accident) holds the run: nothing is cleared', async () => {
    await build(END, true); // back to the real model: the moves above edited the model table by hand
    const ok = await run({ allow: ['distribution', 'anomaly'], allowReason: 'restoring the real model after the test moves' });
    assert.equal(ok.status, 'succeeded', ok.error);
    const files = await batches();
    await q(`CREATE TABLE payments_kept AS SELECT * FROM fact_payments`);
    await q(`TRUNCATE fact_payments`);
    await build(END);
    const s = await run();
    assert.equal(s.status, 'held');
    assert.equal(s.counts.delivered, 0);
    assert.match(heldRules(s), /population: the source is empty while \d+ record\(s\) are delivered/);
    assert.equal(await batches(), files, 'nothing was sent');
    await decideHeld(app, s.runId, 'rejected', 'the load failed upstream');
    await q(`INSERT INTO fact_payments SELECT * FROM payments_kept`);
    await build(END);
    const back = await run();
    assert.deepEqual([back.status, back.counts.delivered], ['succeeded', 0], 'the restored model is what was delivered');
  });

  test('models build --as-of 1900 (a typo) holds the run', async () => {
    await build(new Date('1900-01-01T00:00:00Z'));
    const s = await run();
    assert.equal(s.status, 'held', s.error);
    assert.equal(s.heldEarlier, false, 'held by this run');
    assert.equal(s.counts.delivered, 0);
    await decideHeld(app, s.runId, 'rejected', 'typo');
    await build(END);
  });
});
