import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

test('CSV files: header, quoting, a manifest with the checksum, and read-back that compares text with numbers', async () => {
  await withMappingProject(FILE_MAPPING({ format: 'csv' }), async (project) => {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 3, () => 'Loyal, "Customers"');
      const run = await runMapping(app, 'seg-to-file');
      assert.equal(run.counts.delivered, 3);
      const dir = path.join(project.outDir, 'seg-to-file');
      const names = (await readdir(dir)).sort();
      // Named by the ledger (12 hex digits of its id) and the run, so two state databases never collide.
      const ledger = (await app.warehouse.pool.query(`SELECT replace(id::text, '-', '') AS id FROM segsync.ledger_identity`)).rows[0].id.slice(0, 12);
      assert.deepEqual(names.map((n) => n.replace(/-\d{8}-/, '-N-')), [`run-${ledger}-N-000001.csv`, `run-${ledger}-N-000001.csv.manifest.json`]);
      const body = await readFile(path.join(dir, names[0]!), 'utf8');
      assert.equal(body, '_op,customer_id,rfm_segment,recency_score,monetary\n' +
        'create,u0001,"Loyal, ""Customers""",1,0\ncreate,u0002,"Loyal, ""Customers""",2,10.5\ncreate,u0003,"Loyal, ""Customers""",3,21\n');
      const manifest = JSON.parse(await readFile(path.join(dir, names[1]!), 'utf8'));
      const { createHash } = await import('node:crypto');
      assert.equal(manifest.sha256, createHash('sha256').update(body).digest('hex'));
      assert.deepEqual([manifest.run_id, manifest.records, manifest.counts], [run.runId, 3, { create: 3, update: 0, remove: 0 }]);
      assert.match(manifest.ledger_id, new RegExp(`^${ledger.slice(0, 8)}-${ledger.slice(8)}`));
      const rec = await reconcileMapping(app, 'seg-to-file', { all: true });
      assert.deepEqual(rec.counts, { verified: 3, drifted: 0, missing: 0, unverifiable: 0 });
    });
  });
});

test('validate checks the source: a mapped column that is not there is named with its position', async () => {
  await withMappingProject(FILE_MAPPING().replace('from: recency_score', 'from: recency_scor'), async (project) => {
    await project.app(async (app) => seedSegments(app.warehouse.pool, 2));
    const r = await project.cli(['validate']);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /mappings\/m\.yaml:14:\d+: field 'recency_score': column 'recency_scor' is not in the source \(QUERY_COLUMN_MISSING\)/);
    assert.match(r.stderr, /the source has: user_id, rfm_segment, recency_score/);
    const ok = await project.cli(['validate', '--offline']);
    assert.equal(ok.code, 0, ok.stderr);
  });
});

test('validate: a transform the column type cannot take is named with its position', async () => {
  await withMappingProject(FILE_MAPPING().replace('- { to: recency_score, from: recency_score }', '- { to: recency_score, from: recency_score, transform: date }'), async (project) => {
    await project.app(async (app) => seedSegments(app.warehouse.pool, 2));
    const r = await project.cli(['validate']);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /mappings\/m\.yaml:14:\d+: field 'recency_score': transform "date" does not fit column 'recency_score' \(type oid 23\): cannot cast type integer to timestamp with time zone/);
  });
});
