import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { LockedError } from '../src/errors.ts';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { latestByKey } from './helpers/files.ts';
import { createProject, FILE_MAPPING, seedSegments } from './helpers/project.ts';

test('embedded PGlite: plan, run, rerun, reconcile and the in-process run lock on the one connection', async () => {
  const project = await createProject();
  await project.write('mappings/m.yaml', FILE_MAPPING({ extra: 'batch_size: 7\nconcurrency: 3', on_removed: 'clear' }));
  try {
    await project.app(async (app) => {
      assert.equal(app.warehouse.embedded, true);
      await seedSegments(app.warehouse.pool, 50);
      const plan = await planMapping(app, 'seg-to-file');
      assert.equal(plan.counts.create, 50);
      const first = runMapping(app, 'seg-to-file');
      await assert.rejects(runMapping(app, 'seg-to-file'), LockedError);
      const r1 = await first;
      assert.deepEqual([r1.status, r1.counts.delivered], ['succeeded', 50]);
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Promising' WHERE user_id <= 'u0010'`);
      const r2 = await runMapping(app, 'seg-to-file');
      assert.deepEqual([r2.counts.update, r2.counts.unchanged, r2.counts.delivered], [10, 40, 10]);
      const rec = await reconcileMapping(app, 'seg-to-file', { all: true });
      assert.deepEqual(rec.counts, { verified: 50, drifted: 0, missing: 0, unverifiable: 0 });
    });
    const files = await latestByKey(path.join(project.outDir, 'seg-to-file'));
    assert.equal(files.get('u0003')?.rfm_segment, 'Promising');
    assert.equal(files.size, 50);
    // The CLI on the same embedded folder sees the same ledger.
    const again = await project.cli(['run', 'seg-to-file']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 create, 0 update, 0 remove, 50 unchanged/);
  } finally {
    await project.cleanup();
  }
});
