import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DestinationError } from '../src/errors.ts';
import { readLedgerIdentity } from '../src/state/ledger-identity.ts';
import { migrate } from '../src/state/migrate.ts';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

/**
 * Two state databases (a new embedded folder, a switch to a server) delivering one mapping into one folder:
 * run ids start at 1 in both, so batch names that carry only the run id collide.
 */
async function twoLedgers(shared: string, extra: string): Promise<{ dbs: TestDatabase[]; projects: TestProject[]; cleanup(): Promise<void> }> {
  const dbs = [await createTestDatabase(), await createTestDatabase()];
  const projects: TestProject[] = [];
  for (const db of dbs) {
    const p = await createProject({ url: db.url, settings: `warehouse:\n  url: ${db.url}\nconnections:\n  files:\n    type: file\n    directory: ${shared}\n` });
    await p.write('mappings/m.yaml', FILE_MAPPING().replace('    throttle_ms: 0', `    throttle_ms: 0\n${extra}`));
    projects.push(p);
  }
  return {
    dbs, projects,
    async cleanup() {
      for (const p of projects) await p.cleanup();
      for (const d of dbs) await d.drop();
    },
  };
}

test('the ledger identity is made once with the state schema and kept', async () => {
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url });
  try {
    await project.app(async (app) => {
      await migrate(app.warehouse.pool, 'segsync');
      const first = await readLedgerIdentity(app.warehouse.pool, 'segsync');
      assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      await migrate(app.warehouse.pool, 'segsync');
      assert.equal(await readLedgerIdentity(app.warehouse.pool, 'segsync'), first);
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});

test('a second ledger writing into a folder of another is refused, naming the folder and both ledgers', async () => {
  const shared = await mkdtemp(path.join(tmpdir(), 'segsync-shared-'));
  const env = await twoLedgers(shared, '');
  try {
    const [a, b] = env.projects as [TestProject, TestProject];
    const idA = await a.app(async (app) => {
      await seedSegments(app.warehouse.pool, 5);
      assert.equal((await runMapping(app, 'seg-to-file')).status, 'succeeded');
      return readLedgerIdentity(app.warehouse.pool, 'segsync');
    });
    const before = (await readdir(path.join(shared, 'seg-to-file'))).sort();
    await b.app(async (app) => {
      await seedSegments(app.warehouse.pool, 5, () => 'Other');
      await migrate(app.warehouse.pool, 'segsync');
      const idB = await readLedgerIdentity(app.warehouse.pool, 'segsync');
      assert.notEqual(idB, idA);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => {
        assert.ok(err instanceof DestinationError && err.code === 'FILE_OTHER_LEDGER', String(err));
        assert.ok(err.message.includes(path.join(shared, 'seg-to-file')), err.message);
        assert.ok(err.message.includes(idA) && err.message.includes(idB), err.message);
        return true;
      });
    });
    assert.deepEqual((await readdir(path.join(shared, 'seg-to-file'))).sort(), before, 'nothing written by the second ledger');
    const rec = await a.app((app) => reconcileMapping(app, 'seg-to-file', { all: true }));
    assert.deepEqual(rec.counts, { verified: 5, drifted: 0, missing: 0, unverifiable: 0 });
  } finally {
    await env.cleanup();
    await rm(shared, { recursive: true, force: true });
  }
});

test('with allow_other_ledger both ledgers write the folder, and each reads back only its own batches', async () => {
  const shared = await mkdtemp(path.join(tmpdir(), 'segsync-shared-'));
  const env = await twoLedgers(shared, '    allow_other_ledger: true');
  try {
    const ids: string[] = [];
    for (const [i, p] of env.projects.entries()) {
      await p.app(async (app) => {
        await seedSegments(app.warehouse.pool, 5, () => `Segment of ledger ${i}`);
        assert.equal((await runMapping(app, 'seg-to-file')).status, 'succeeded');
        ids.push(await readLedgerIdentity(app.warehouse.pool, 'segsync'));
      });
    }
    const names = (await readdir(path.join(shared, 'seg-to-file'))).filter((n) => n.endsWith('.manifest.json'));
    assert.equal(names.length, 2, `one batch per ledger, none overwritten: ${names.join(', ')}`);
    const manifests = await Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(shared, 'seg-to-file', n), 'utf8')) as { ledger_id: string; run_id: number }));
    assert.deepEqual(manifests.map((m) => m.ledger_id).sort(), [...ids].sort());
    assert.deepEqual(manifests.map((m) => m.run_id), [1, 1], 'both are run 1 of their ledger');
    for (const p of env.projects) {
      const rec = await p.app((app) => reconcileMapping(app, 'seg-to-file', { all: true }));
      assert.deepEqual(rec.counts, { verified: 5, drifted: 0, missing: 0, unverifiable: 0 });
    }
  } finally {
    await env.cleanup();
    await rm(shared, { recursive: true, force: true });
  }
});
