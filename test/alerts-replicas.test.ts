import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { migrate } from '../src/state/migrate.ts';
import { insertEvent } from '../src/state/events.ts';
import { startReceiver } from './helpers/alert-receivers.ts';
import { createTestDatabase } from './helpers/pg.ts';
import { createProject, REPO_ROOT } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/** Two dispatcher processes on one database: every group is notified once, and SIGTERM stops both cleanly. */
test('two replica processes send each notification exactly once and stop on SIGTERM', async () => {
  const db = await createTestDatabase();
  const slack = await startReceiver();
  const project = await createProject({ url: db.url, settings: `warehouse:\n  url: ${db.url}\nalerts:\n  group_wait: 150ms\n  group_interval: 1h\n  tick: 25ms\n  channels:\n    ops: { type: slack, url: "\${REPLICA_SLACK_URL}", rate_per_second: 100, burst: 10 }\n  routes:\n    - channels: [ops]\n` });
  const pool = new pg.Pool({ connectionString: db.url });
  const children: ChildProcess[] = [];
  try {
    await migrate(pool, 'segsync');
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test/helpers/alert-replica.ts'), project.dir], { env: { ...process.env, REPLICA_SLACK_URL: slack.url }, stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
        child.once('exit', (code) => reject(new Error(`replica exited with ${code}`)));
      });
    }
    for (let round = 0; round < 4; round++) {
      await Promise.all(['a', 'b', 'c', 'd', 'e'].map((m) => insertEvent(pool, 'segsync', { kind: 'run_failed', severity: 'error', mapping: m, message: `${m} failed (${round})` })));
    }
    await waitFor('five groups notified', () => slack.requests.length >= 5, 20_000);
    // A later group going out proves both replicas ticked past the first five since.
    await insertEvent(pool, 'segsync', { kind: 'blocked', severity: 'error', mapping: 'z', message: 'z blocked' });
    await waitFor('the sentinel notified', () => slack.requests.some((r) => /z blocked/.test(r.json.text)), 20_000);
    const subjects = slack.requests.map((r) => /on (\w+)/.exec(r.json.text)![1]).sort();
    assert.deepEqual(subjects, ['a', 'b', 'c', 'd', 'e', 'z'], 'one message per group from two processes');
    const exits = children.map((c) => new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code))));
    for (const c of children) c.kill('SIGTERM');
    assert.deepEqual(await Promise.all(exits), [0, 0]);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await pool.end();
    await slack.close();
    await project.cleanup();
    await db.drop();
  }
});
