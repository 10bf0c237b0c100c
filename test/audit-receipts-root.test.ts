import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { OFF_THREAD_FROM, RunReceiptsTree } from '../src/audit/receipts-tree.ts';
import type { FinalOutcome } from '../src/state/record-batch.ts';
import { MerkleBuilder } from '../src/audit/hash.ts';
import { packLeaves, unpackLeaves } from '../src/audit/receipt-leaf.ts';
import { receiptLeaf, receiptsRoot } from '../src/audit/trail.ts';
import { verifyTrail } from '../src/audit/verify.ts';
import { getSigningKey } from '../src/audit/keys.ts';
import { runMapping } from '../src/sync/run.ts';
import { startCdpEmulator, type CdpEmulator } from './emulators/cdp/server.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

/**
 * A run builds its receipts' Merkle root while it records them (src/audit/receipts-tree.ts), so that the seal
 * does not read a million receipts again. That root must be the one the table gives: batches answered out of
 * order (concurrency), failures and resends inside batches; a run whose leftovers are closed afterwards hands
 * none, so the seal recomputes.
 */

const leaf = (key: string, status: FinalOutcome['status'] = 'delivered'): FinalOutcome =>
  ({ key, op: 'create', status, payloadHash: `h${key}`, destinationId: null, attempt: 1, sentAt: null, stateExists: false });

for (const offThread of [false, true]) {
  test(`the tree gives the root of the leaves in batch order, whatever order the batches are recorded in (${offThread ? 'on a worker thread' : 'in the thread'})`, async () => {
    const batches = [['a', 'b', 'c'], ['d'], [], ['e', 'f'], ['g', 'h', 'i', 'j']].map((ks) => ks.map((k) => leaf(k)));
    const expected = new MerkleBuilder();
    for (const b of batches) for (const r of b) expected.add(receiptLeaf({ ...r, destinationId: null, errorCode: null, requestId: null }));
    for (const order of [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 3, 4, 2]]) {
      const t = new RunReceiptsTree({ offThread });
      try {
        assert.equal(await t.root(batches.length), null, 'nothing recorded yet: no root');
        for (const i of order) await t.recorded(i, batches[i]!);
        assert.deepEqual(await t.root(batches.length), { count: 10, root: expected.root() }, `order ${order.join()}`);
      } finally {
        await t.close();
      }
    }
    const missing = new RunReceiptsTree({ offThread });
    await missing.recorded(1, batches[1]!);
    assert.equal(await missing.root(2), null, 'a batch read and never recorded: no root');
    await missing.close();
    const twice = new RunReceiptsTree({ offThread });
    await twice.recorded(0, batches[0]!);
    await assert.rejects(twice.recorded(0, batches[0]!), /batch 0 was recorded twice/);
    await assert.rejects(twice.recorded(1, [{ ...leaf('k'), attempt: Number.NaN }]), /receipt 0 of batch 1 has an attempt NaN that is not a number/);
    await twice.close();
  });
}

test('a worker thread hashes a large run to the same root as the thread itself, and answers no root once closed', async () => {
  // 30 batches of 1,000 receipts with failures, resends, destination ids and texts that look like the packing's
  // own marks (':', ';', '-', digits), recorded out of order.
  const batches = Array.from({ length: 30 }, (_, b) => Array.from({ length: 1000 }, (_, i) => {
    const k = i % 7 === 0 ? `${i}:-;${b}` : `k${String(b * 1000 + i).padStart(6, '0')}`;
    return { ...leaf(k, i % 97 === 0 ? 'failed' : 'delivered'), destinationId: i % 3 ? `d-${k}` : null, errorCode: i % 97 === 0 ? 'HTTP_400' : null, attempt: 1 + (i % 2), requestId: i % 5 ? null : `r\u00e9-${i}\u{1F600}` } as FinalOutcome;
  }));
  const inThread = new RunReceiptsTree();
  const offThread = new RunReceiptsTree({ offThread: true });
  try {
    for (const i of batches.keys()) await inThread.recorded(i, batches[i]!);
    for (const i of [...batches.keys()].reverse()) await offThread.recorded(i, batches[i]!);
    const expected = await inThread.root(batches.length);
    assert.equal(expected?.count, 30_000);
    assert.deepEqual(await offThread.root(batches.length), expected);
    assert.equal(offThread.failure, null);
  } finally {
    await offThread.close();
  }
  assert.equal(await offThread.root(batches.length), null, 'closed: the thread is gone, and no root is made up');
});

test('packed leaves come back exactly as they went, whatever their texts hold', () => {
  const rows = [
    { key: 'u1', op: 'create', status: 'delivered', payloadHash: 'abc', destinationId: null, errorCode: null, attempt: 1, requestId: null },
    { key: '-', op: 'update', status: 'failed', payloadHash: null, destinationId: '12:x', errorCode: 'E;1', attempt: 3, requestId: '' },
    { key: '', op: 'remove', status: 'in_doubt', payloadHash: '', destinationId: '-', errorCode: '', attempt: 0, requestId: '\u{1F600}:\n\t\u0000' },
    { key: '3:abc', op: 'create', status: 'delivered', payloadHash: ';', destinationId: 'é', errorCode: null, attempt: 1.5, requestId: '-' },
  ];
  assert.deepEqual([...unpackLeaves(packLeaves(rows))], rows);
  assert.deepEqual([...unpackLeaves(packLeaves([]))], []);
});

/** The root a run handed to the seal (its outbox entry), and the one sealed into the trail. */
const handedRoot = async (pool: pg.Pool, runId: number) => (await pool.query<{ r: { count: number; root: string } | null }>(
  `SELECT details -> 'receipts' AS r FROM segsync.outbox WHERE run_id = $1 AND subject = 'run' ORDER BY id DESC LIMIT 1`, [runId])).rows[0]?.r ?? null;
const sealedRoot = async (pool: pg.Pool, runId: number) => (await pool.query<{ r: { count: number; root: string } }>(
  `SELECT (entry::jsonb) -> 'details' -> 'receipts' AS r FROM segsync.audit WHERE subject = $1 AND action ~ '^run\\.(succeeded|partial|failed|deferred|interrupted)$'`, [`run:${runId}`])).rows[0]?.r;

let emu: CdpEmulator;
let db: TestDatabase;
let project: TestProject;
before(async () => {
  emu = await startCdpEmulator({ flavour: 'segment' });
  db = await createTestDatabase();
  process.env.ROOT_TEST_WRITE_KEY = emu.writeKey;
  project = await createProject({ url: db.url });
  // A CDP connection for the faults, files for the large run (its out folder is the project's).
  await project.write('config/segsync.yaml', `warehouse:\n  url: ${db.url}\nconnections:\n  cdp:\n    type: segment\n    write_key: \${ROOT_TEST_WRITE_KEY}\n    base_url: ${emu.url}\n  files:\n    type: file\n    directory: ${project.outDir}\n`);
  await project.write('mappings/m.yaml', `name: roots
source: { model: segments, key: user_id }
destination: { connection: cdp, object: identify, match_key: userId }
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: rfm_recency_score, from: recency_score }
batch_size: 7
concurrency: 3
guardrails: { disable: [changed, distribution, anomaly] }
`);
});
after(async () => {
  delete process.env.ROOT_TEST_WRITE_KEY;
  await project.cleanup();
  await db.drop();
  await emu.close();
});

test('the root a run hands to the seal is the root of its receipts in the table, with faults and concurrency', async () => {
  await project.app(async (app) => {
    const pool = app.warehouse.pool;
    await seedSegments(pool, 300);
    const handed = (runId: number) => handedRoot(pool, runId);
    const sealed = (runId: number) => sealedRoot(pool, runId);

    // 1. Faults (503s and resets, before and after the batch was stored): failures and resends inside batches,
    //    answered out of order by three workers.
    // Two batches refused outright (400: failed receipts), apart so that the circuit breaker does not stop the run.
    emu.faults.queue({ kind: 'status', status: 400 }, { kind: 'pass' }, { kind: 'pass' }, { kind: 'pass' }, { kind: 'status', status: 400 });
    emu.faults.randomly({ seed: 7, rate5xx: 0.15, rateReset: 0.1 });
    const first = await runMapping(app, 'roots');
    emu.faults.clear();
    assert.ok(emu.faults.injected.length > 0, 'faults were injected');
    assert.equal(first.status, 'partial', first.error);
    assert.equal(first.counts.failed, 14, 'two batches of 7 failed');
    const table1 = await receiptsRoot(pool, 'segsync', first.runId);
    assert.equal(table1.count, 300);
    const h1 = await handed(first.runId);
    assert.ok(h1, `run 1 (${first.status}) handed its root to the seal`);
    assert.deepEqual(h1, table1);
    assert.deepEqual(await sealed(first.runId), table1);

    // 2. A change of a third of the users, no faults.
    await pool.query(`UPDATE segments SET recency_score = recency_score % 5 + 1 WHERE right(user_id, 1) IN ('1', '4', '7')`);
    const second = await runMapping(app, 'roots');
    assert.equal(second.status, 'succeeded', second.error);
    const table2 = await receiptsRoot(pool, 'segsync', second.runId);
    assert.ok(table2.count > 0);
    assert.deepEqual(await handed(second.runId), table2);
    assert.deepEqual(await sealed(second.runId), table2);

    // 3. A run stopped after its first batches: its leftovers are closed as interrupted afterwards, so it hands
    //    no root, and the seal's (recomputed from the table) still verifies.
    await pool.query(`UPDATE segments SET recency_score = recency_score % 5 + 1`);
    const stop = new AbortController();
    const third = await runMapping(app, 'roots', { signal: stop.signal, onProgress: ({ done }) => { if (done >= 14) stop.abort(); } });
    assert.equal(third.status, 'interrupted');
    assert.equal(await handed(third.runId), null);
    assert.deepEqual(await sealed(third.runId), await receiptsRoot(pool, 'segsync', third.runId));

    const report = await verifyTrail(pool, 'segsync', { publicKey: getSigningKey().publicKey });
    assert.deepEqual(report.problems, []);
    assert.ok(report.runsChecked >= 3, `runs checked: ${report.runsChecked}`);
  });
});

test('a run of OFF_THREAD_FROM planned records or more hashes its tree on a worker thread, and the seal takes that root', async () => {
  await project.write('mappings/big.yaml', FILE_MAPPING({ name: 'bigroots', extra: 'guardrails: { disable: [changed, distribution, anomaly] }' }));
  await project.app(async (app) => {
    const pool = app.warehouse.pool;
    const n = OFF_THREAD_FROM + 1234;
    await seedSegments(pool, n);
    const run = await runMapping(app, 'bigroots');
    assert.equal(run.status, 'succeeded', run.error);
    assert.equal(run.counts.delivered, n);
    const table = await receiptsRoot(pool, 'segsync', run.runId);
    assert.equal(table.count, n);
    assert.deepEqual(await handedRoot(pool, run.runId), table, 'the thread built the table\'s root and handed it');
    assert.deepEqual(await sealedRoot(pool, run.runId), table);
  });
});
