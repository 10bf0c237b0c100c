import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideHeld, planMapping, runMapping } from '../src/sync/run.ts';
import { createProject, seedSegments } from './helpers/project.ts';
import { SCRIPTED_MAPPING, script, scriptedSettings } from './helpers/scripted-destination.ts';

/**
 * The embedded default (PGlite, one session) runs the same state machine and guardrails: the plan, its figures
 * and the hold share the single connection, the plan is never split in halves, and approval delivers the held
 * plan there too.
 */
test('embedded PGlite: a mass removal is held with nothing sent, approve delivers exactly the held plan, a rerun sends nothing', async () => {
  const s = script('embedded-guard');
  const project = await createProject({ settings: scriptedSettings('', 'embedded-guard') });
  try {
    await project.write('mappings/seg.yaml', SCRIPTED_MAPPING('seg', 'on_removed: delete'));
    await project.app(async (app) => {
      assert.equal(app.warehouse.embedded, true);
      await seedSegments(app.warehouse.pool, 40);
      assert.equal((await runMapping(app, 'seg')).counts.delivered, 40);
      await app.warehouse.pool.query(`DELETE FROM segments WHERE user_id > 'u0020'`);
      const dry = await planMapping(app, 'seg');
      assert.equal(dry.guardrails.find((v) => v.rule === 'removals')?.verdict, 'hold');
      const calls = s.calls.length;
      const held = await runMapping(app, 'seg');
      assert.equal(held.status, 'held');
      assert.match(held.error ?? '', /removals: 20 of 40 delivered record\(s\) removed \(50\.0%/);
      assert.equal(s.calls.length, calls, 'nothing was sent');
      assert.equal(s.records.size, 40);
      await decideHeld(app, held.runId, 'approved', 'those customers asked to leave', { type: 'cli', id: 'test' });
      const done = await runMapping(app, 'seg');
      assert.deepEqual([done.runId, done.status, done.counts.delivered], [held.runId, 'succeeded', 20]);
      assert.equal(s.records.size, 20, 'the held removals, and only they, were delivered');
      assert.equal((await runMapping(app, 'seg')).counts.delivered, 0);
    });
  } finally {
    await project.cleanup();
  }
});
