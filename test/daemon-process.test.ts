import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Warehouse } from '../src/db/warehouse.ts';
import { spawnDaemon } from './helpers/daemon-process.ts';
import { committedRecords } from './helpers/files.ts';
import { useFreshWarehouse } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * `segsync daemon` as a real process against a real database: signals (graceful and forced stop, reload),
 * recovery after kill -9, and two replicas sharing one state database.
 */

let dbUrl: string;
let warehouse: Warehouse;

useFreshWarehouse('postgres', async (w, { url }) => {
  warehouse = w;
  dbUrl = url!;
  await seedSegments(warehouse.pool, 12);
});

async function project(mappings: Record<string, string>, daemon = 'drain_timeout: 20s'): Promise<TestProject> {
  const p = await createProject({ url: dbUrl });
  await p.write('config/segsync.yaml', `warehouse: {url: '${dbUrl}'}\nconnections:\n  files: {type: file, directory: '${p.outDir}'}\ndaemon: {host: 127.0.0.1, ${daemon}}\n`);
  for (const [name, text] of Object.entries(mappings)) await p.write(`mappings/${name}.yaml`, text);
  return p;
}

interface RunRow { id: number; status: string; trigger: string; started_at: Date; finished_at: Date | null; pid: number | null }
async function runsOf(name: string): Promise<RunRow[]> {
  return (await warehouse.pool.query(`SELECT id::int, status, actor_type || ':' || actor_id AS trigger, started_at, finished_at, pid FROM segsync.runs WHERE mapping = $1 ORDER BY id`, [name])).rows;
}

/** Runs, receipts, delivered state and the files must tell the same story. */
async function assertLedgerAgrees(mapping: string, dir: string): Promise<number> {
  const files = await committedRecords(dir);
  const delivered = (await warehouse.pool.query(`SELECT key FROM segsync.delivered WHERE mapping = $1 AND delivered_at IS NOT NULL ORDER BY key`, [mapping])).rows.map((r) => r.key as string);
  const receipts = (await warehouse.pool.query(`SELECT DISTINCT key FROM segsync.receipts WHERE mapping = $1 AND status = 'delivered' ORDER BY key`, [mapping])).rows.map((r) => r.key as string);
  const inFiles = [...new Set(files.map((r) => String(r.customer_id)))].sort();
  assert.deepEqual(delivered, receipts, 'delivered state = delivered receipts');
  assert.deepEqual(inFiles, delivered, 'what the files hold = delivered state');
  assert.equal((await runsOf(mapping)).filter((r) => r.status === 'delivering' || r.status === 'planning' || r.status === 'planned').length, 0, 'no run left running');
  return delivered.length;
}

test('SIGTERM during delivery: the batch in flight commits, the run is interrupted, exit 0; the next start resumes and converges', async () => {
  const p = await project({ term: FILE_MAPPING({ name: 'term', throttle: '400', extra: 'batch_size: 2\nconcurrency: 1\nschedule: "* * * * * *"' }) });
  const dir = path.join(p.outDir, 'term');
  try {
    const d = await spawnDaemon(p.dir);
    // Wait until delivery is under way: two batch files committed.
    await waitFor('two batch files', async () => (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.manifest.json')).length >= 2, 20_000)
      .finally(() => d.child.kill('SIGTERM'));
    const { code } = await d.exited();
    assert.equal(code, 0, d.logs.map((l) => l.msg).join('\n'));
    const runs = await runsOf('term');
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.status, 'interrupted');
    const sent = await assertLedgerAgrees('term', dir);
    assert.ok(sent >= 4 && sent < 12, `part of the records were delivered (${sent})`);
    const interruptedReceipts = (await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.receipts WHERE run_id = $1 AND status = 'interrupted'`, [runs[0]!.id])).rows[0].n as number;
    assert.equal(interruptedReceipts, 12 - sent, 'what was not sent is recorded as interrupted');

    // A restart catches up at once (the last run was interrupted) and sends exactly the rest.
    const again = await spawnDaemon(p.dir);
    await again.waitForLog((l) => l.msg === 'run finished' && l.status === 'succeeded');
    again.child.kill('SIGINT');
    assert.equal((await again.exited()).code, 0);
    const all = await runsOf('term');
    // With a schedule of every second, the first tick after the restart can start before the catch-up has
    // read the last run (it then finds the mapping busy and skips): either way one run resumes at once.
    // The catch-up itself is pinned down by daemon-inprocess.test.ts ("exactly one catch-up run").
    assert.ok(['daemon:catch-up', 'daemon:schedule'].includes(all[1]?.trigger ?? ''), all[1]?.trigger);
    assert.equal(await assertLedgerAgrees('term', dir), 12);
    assert.equal((await committedRecords(dir)).length, 12, 'nothing was sent twice');
  } finally {
    await p.cleanup();
  }
});

test('a second signal forces the exit with a non-zero code; the next start marks the run interrupted and resumes it', async () => {
  const p = await project({ force: FILE_MAPPING({ name: 'force', throttle: '3000', extra: 'batch_size: 2\nconcurrency: 1\nschedule: "* * * * * *"' }) });
  const dir = path.join(p.outDir, 'force');
  try {
    const d = await spawnDaemon(p.dir);
    await d.waitForLog((l) => l.msg === 'planned');
    d.child.kill('SIGTERM');
    await d.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('signal received'));
    d.child.kill('SIGTERM');
    const { code } = await d.exited();
    assert.equal(code, 128 + 15);
    assert.ok(['planned', 'delivering'].includes((await runsOf('force'))[0]?.status ?? ''), 'the forced exit left the run open (planned or delivering)');

    const again = await spawnDaemon(p.dir);
    await again.waitForLog((l) => l.msg === 'runs left by a stopped process were marked interrupted; they resume now');
    assert.equal((await runsOf('force'))[0]?.status, 'interrupted');
    again.child.kill('SIGTERM');
    assert.equal((await again.exited()).code, 0);
    await assertLedgerAgrees('force', dir);
  } finally {
    await p.cleanup();
  }
});

test('two replicas on one database never run one mapping at once', async () => {
  const p = await project({ shared: FILE_MAPPING({ name: 'shared', throttle: '300', extra: 'batch_size: 6\nconcurrency: 1\nschedule: "* * * * * *"' }) });
  try {
    // Each run: 2 batches of 300 ms (the first one delivers, reruns find nothing to send but still plan).
    const [a, b] = await Promise.all([spawnDaemon(p.dir), spawnDaemon(p.dir)]);
    await sleep(5000);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    assert.deepEqual([(await a.exited()).code, (await b.exited()).code], [0, 0]);
    const runs = (await runsOf('shared')).filter((r) => r.status !== 'blocked');
    assert.ok(runs.length >= 3, `several runs happened (${runs.length})`);
    const sorted = [...runs].sort((x, y) => x.started_at.getTime() - y.started_at.getTime());
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(sorted[i]!.started_at >= sorted[i - 1]!.finished_at!, `run ${sorted[i]!.id} started before run ${sorted[i - 1]!.id} finished`);
    }
    const skippedAsReplica = [...a.logs, ...b.logs].filter((l) => l.msg === 'running on another replica; this tick is skipped').length;
    assert.ok(skippedAsReplica >= 1, 'the replica that found the lock taken said so');
    assert.ok(![...a.logs, ...b.logs].some((l) => l.level === 50 && l.mapping === 'shared'), 'no errors from lock contention');
    await assertLedgerAgrees('shared', path.join(p.outDir, 'shared'));
    assert.equal((await committedRecords(path.join(p.outDir, 'shared'))).length, 12, 'every record sent exactly once');
  } finally {
    await p.cleanup();
  }
});

test('SIGHUP applies a valid config and keeps running the old one when the new one is invalid', async () => {
  const p = await project({ hup: FILE_MAPPING({ name: 'hup', extra: 'schedule: "0 3 * * *"' }) });
  try {
    const d = await spawnDaemon(p.dir);
    const base = `http://127.0.0.1:${d.port}`;
    await p.write('mappings/hup.yaml', FILE_MAPPING({ name: 'hup', extra: 'schedule: "*/2 * * * * *"' }));
    d.child.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'reload applied');
    await d.waitForLog((l) => l.msg === 'run finished' && l.mapping === 'hup');
    let status = (await (await fetch(`${base}/status`)).json()) as { config: string; jobs: Record<string, { schedule: string }> };
    assert.equal(status.jobs.hup?.schedule, '*/2 * * * * *');
    const applied = status.config;

    await p.write('mappings/hup.yaml', FILE_MAPPING({ name: 'hup', extra: 'schedule: "*/2 * * * * *"\nbatch_size: -1' }));
    d.child.kill('SIGHUP');
    const rejected = await d.waitForLog((l) => l.event === 'config_rejected');
    assert.match(String(rejected.msg), /mappings\/hup\.yaml:\d+:\d+ \(batch_size\)/);
    await d.waitForLog((l) => l.msg === 'reload rejected; previous configuration still running');
    status = (await (await fetch(`${base}/status`)).json()) as { config: string; jobs: Record<string, { schedule: string }> };
    assert.equal(status.config, applied, 'the old configuration is still the one running');
    const before = (await runsOf('hup')).length;
    await sleep(2500);
    assert.ok((await runsOf('hup')).length > before, 'the old schedule keeps firing');
    d.child.kill('SIGTERM');
    assert.equal((await d.exited()).code, 0);
  } finally {
    await p.cleanup();
  }
});

test('a run that does not finish within drain_timeout: exit 1 and a shutdown_timeout event, the run is recovered at the next start', async () => {
  // Planning sleeps 4 s inside PostgreSQL: an abort cannot cut it short, so the drain bound decides.
  const slowSql = FILE_MAPPING({ name: 'stubborn', extra: 'schedule: "* * * * * *"' }).replace('model: segments', 'sql: "select segments.* from segments, pg_sleep(4)"');
  const p = await project({ stubborn: slowSql }, 'drain_timeout: 1s');
  try {
    const d = await spawnDaemon(p.dir);
    await waitFor('the first run', async () => (await runsOf('stubborn')).length > 0, 10_000, 50).catch((err: unknown) => { d.child.kill('SIGKILL'); throw err; });
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    const { code } = await d.exited();
    assert.equal(code, 1);
    assert.ok(Date.now() - t0 < 3900, 'the drain bound, not the run, decided when to exit');
    const events = (await warehouse.pool.query(`SELECT kind, severity, message FROM segsync.events WHERE kind = 'shutdown_timeout' ORDER BY id DESC LIMIT 1`)).rows;
    assert.equal(events[0]?.severity, 'error');
    assert.match(events[0]?.message ?? '', /runs still in flight after 1s: stubborn/);
    await sleep(4500);
    // The planning transaction's connection is gone with the process; the next start marks the row.
    const again = await spawnDaemon(p.dir);
    again.child.kill('SIGKILL');
    await again.exited();
    const runs = await runsOf('stubborn');
    assert.ok(runs.every((r) => r.status !== 'delivering' && r.status !== 'planning' && r.status !== 'planned'), JSON.stringify(runs.map((r) => r.status)));
  } finally {
    await p.cleanup();
  }
});
