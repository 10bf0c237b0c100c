import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runDetail } from '../src/state/run-pages.ts';
import { runMapping } from '../src/sync/run.ts';
import { memoryStore } from './helpers/memory-destination.ts';
import { createTestDatabase } from './helpers/pg.ts';
import { createProject, seedSegments } from './helpers/project.ts';

/**
 * A run with rejected records (issue 17): the run detail derives a finished run's delivered counts from its
 * planned counts and its undelivered receipts (the partial index of migration 070). They must equal a full
 * count of its receipts, and the errors are grouped by code.
 */
test('a partial run: counts per op and status equal a full count of its receipts; errors grouped by code', async () => {
  const db = await createTestDatabase();
  const project = await createProject({ settings: `warehouse:\n  url: ${db.url}\nconnections:\n  mem:\n    type: memory\n    store: api-detail\n` });
  await project.write('mappings/m.yaml', `name: seg-to-memory
source: { model: segments, key: user_id }
destination: { connection: mem, object: x, match_key: id }
fields:
  - { to: rfm_segment, from: rfm_segment }
`);
  const store = memoryStore('api-detail');
  try {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 20);
      store.rejectKeys = new Set(['u0003', 'u0007', 'u0011']);
      const s = await runMapping(app, 'seg-to-memory');
      assert.equal(s.status, 'partial');
      const d = await runDetail(app.warehouse.pool, 'segsync', s.runId, 'rfm_segment');
      const full = (await app.warehouse.pool.query<{ op: string; status: string; n: number }>(
        `SELECT op, status, count(*)::int AS n FROM segsync.receipts WHERE run_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`, [s.runId])).rows;
      assert.deepEqual(d!.outcomes, full);
      assert.deepEqual(d!.outcomes.find((o) => o.status === 'failed')?.n, 3);
      assert.equal(d!.errors.reduce((a, e) => a + e.n, 0), 3);
      assert.ok(d!.errors.every((e) => e.code !== 'UNKNOWN' && e.example), JSON.stringify(d!.errors));
      assert.deepEqual(d!.items, [{ op: 'create', n: 20 }]);
      assert.ok(d!.transitions.some((t) => t.from === '(new)'));
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});
