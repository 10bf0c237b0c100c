import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { BudgetExhaustedError, DestinationError } from '../src/errors.ts';
import { cliActor, systemActor } from '../src/state/actor.ts';
import { closeAbandonedRuns } from '../src/state/close-abandoned.ts';
import { createRun } from '../src/state/create-run.ts';
import { stateDiagram } from '../src/state/machine.ts';
import { transition, TransitionError } from '../src/state/transition.ts';
import { decideHeld, runMapping } from '../src/sync/run.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, REPO_ROOT, seedSegments, type TestProject } from './helpers/project.ts';
import { SCRIPTED_MAPPING, script, scriptedSettings } from './helpers/scripted-destination.ts';

/**
 * The run as a persisted state machine (issue 11): each defect found in ordinary operation gets a test here
 * against real PostgreSQL and an in-process destination that really holds what it accepted.
 */

let db: TestDatabase;
let project: TestProject;
let n = 0;

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

/** A project whose only mapping `seg` delivers the `segments` model (`users` rows) to script `name`. */
async function withScript<T>(name: string, users: number, fn: (app: App) => Promise<T>, extra = ''): Promise<T> {
  project = await createProject({ settings: scriptedSettings(db.url, name) });
  try {
    await project.write('mappings/seg.yaml', SCRIPTED_MAPPING('seg', extra));
    return await project.app(async (app) => {
      await app.warehouse.pool.query('DROP SCHEMA IF EXISTS segsync CASCADE');
      await seedSegments(app.warehouse.pool, users);
      return fn(app);
    });
  } finally {
    await project.cleanup();
  }
}

const q = async <T = Record<string, unknown>>(app: App, sql: string, params: unknown[] = []) => (await app.warehouse.pool.query(sql, params)).rows as T[];
const receipts = (app: App, run: number) => q<{ key: string; status: string }>(app, `SELECT key, status FROM segsync.receipts WHERE run_id = $1 ORDER BY key`, [run]);
const delivered = (app: App) => q<{ key: string }>(app, `SELECT key FROM segsync.delivered WHERE mapping = 'seg' AND payload_hash IS NOT NULL ORDER BY key`);

test('a graceful stop never discards a batch the destination accepted (p-retry no longer throws away the answer)', async () => {
  const controller = new AbortController();
  const s = script(`stop-${++n}`, {
    // The stop arrives while the first batch is at the destination; the destination then answers "accepted".
    deliver: async (changes, call, accept) => {
      if (call === 1) controller.abort();
      await new Promise((r) => setImmediate(r));
      for (const c of changes) accept(c);
      return { outcomes: changes.map((c) => ({ key: c.key, status: 'delivered' as const })) };
    },
  });
  await withScript(`stop-${n}`, 20, async (app) => {
    const run = await runMapping(app, 'seg', { signal: controller.signal });
    assert.equal(run.status, 'interrupted');
    assert.equal(s.records.size, 5, 'the destination accepted the first batch');
    assert.equal(run.counts.delivered, 5);
    assert.deepEqual((await delivered(app)).map((r) => r.key), [...s.records.keys()].sort(), 'the ledger holds exactly what the destination accepted');
    const r = await receipts(app, run.runId);
    assert.deepEqual(r.filter((x) => x.status === 'delivered').map((x) => x.key), [...s.records.keys()].sort());
    assert.equal(r.filter((x) => x.status === 'interrupted').length, 15, 'only the never-sent records are interrupted');
  });
});

test('a request that fails after the stop arrived (a timeout after sending) is recorded in doubt, not as never sent', async () => {
  const controller = new AbortController();
  script(`stopdoubt-${++n}`, {
    deliver: async (changes, call) => {
      if (call === 1) {
        controller.abort();
        throw new DestinationError('TIMEOUT', 'no answer within 30 s (the request was sent)', { retryable: true, inDoubt: true });
      }
      return { outcomes: changes.map((c) => ({ key: c.key, status: 'delivered' as const })) };
    },
  });
  await withScript(`stopdoubt-${n}`, 10, async (app) => {
    const run = await runMapping(app, 'seg', { signal: controller.signal });
    assert.equal(run.status, 'interrupted');
    const r = await receipts(app, run.runId);
    assert.deepEqual(r.filter((x) => x.status === 'in_doubt').map((x) => x.key), ['u0001', 'u0002', 'u0003', 'u0004', 'u0005']);
    assert.equal(r.filter((x) => x.status === 'interrupted').length, 5, 'the batch never sent is interrupted');
    const next = await runMapping(app, 'seg');
    assert.deepEqual([next.status, next.counts.resent, next.counts.delivered], ['succeeded', 5, 10]);
  });
});

test('an approved run whose budget is spent before it sends stays approved; the next run delivers the held plan', async () => {
  let budget = true;
  const s = script(`approvedbudget-${++n}`, {
    check: async () => { if (budget) throw new BudgetExhaustedError('HUBSPOT_DAILY_LIMIT', 'daily limit reached'); },
  });
  await withScript(`approvedbudget-${n}`, 40, async (app) => {
    budget = false;
    await runMapping(app, 'seg');
    await q(app, `DELETE FROM segments WHERE user_id > 'u0020'`);
    const held = await runMapping(app, 'seg');
    assert.equal(held.status, 'held');
    await decideHeld(app, held.runId, 'approved', 'on purpose', cliActor());
    budget = true;
    const deferred = await runMapping(app, 'seg');
    assert.deepEqual([deferred.runId, deferred.status], [held.runId, 'deferred']);
    const [r] = await q<{ status: string }>(app, `SELECT status FROM segsync.runs WHERE id = $1`, [held.runId]);
    assert.equal(r!.status, 'approved', 'the approval is kept');
    budget = false;
    const done = await runMapping(app, 'seg');
    assert.deepEqual([done.runId, done.status, done.counts.delivered], [held.runId, 'succeeded', 20]);
    assert.equal(s.records.size, 20);
  }, 'on_removed: delete');
});

test('a ledger write error stops every worker, awaits them, closes the batch it could not record as in doubt; the next run resends it and counts it', async () => {
  const s = script(`ledger-${++n}`, { concurrency: 2 });
  await withScript(`ledger-${n}`, 40, async (app) => {
    // Run once to create the state schema, on an empty model (nothing to send), then break receipts for one key.
    await q(app, 'CREATE TABLE IF NOT EXISTS kept AS SELECT * FROM segments');
    await q(app, 'TRUNCATE segments');
    await runMapping(app, 'seg');
    await q(app, 'INSERT INTO segments SELECT * FROM kept');
    await q(app, `CREATE FUNCTION public.refuse_u0008() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.key = 'u0008' AND NEW.status = 'delivered' THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$`);
    await q(app, `CREATE TRIGGER refuse BEFORE INSERT ON segsync.receipts FOR EACH ROW EXECUTE FUNCTION public.refuse_u0008()`);
    const run = await runMapping(app, 'seg');
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /delivery stopped: .*disk full/);
    // Batches are u0001-05, u0006-10, ...: the second cannot be recorded; with two workers at most one more
    // batch was in flight when it failed, and nothing was sent after that.
    assert.ok(s.calls.length <= 3, `sends after the failure: ${s.calls.length}`);
    const r = await receipts(app, run.runId);
    const byStatus = (st: string) => r.filter((x) => x.status === st).map((x) => x.key);
    assert.deepEqual(byStatus('in_doubt'), ['u0006', 'u0007', 'u0008', 'u0009', 'u0010'], 'the unrecorded batch is in doubt, not "not sent"');
    // Every record the destination holds has a receipt that says delivered or in doubt: nothing sent silently.
    for (const key of s.records.keys()) assert.ok(byStatus('delivered').includes(key) || byStatus('in_doubt').includes(key), key);
    assert.equal(r.length, 40, 'every planned item has its final receipt');
    // The lock was released: the next run goes ahead, resends the in-doubt batch and says so.
    await q(app, 'DROP TRIGGER refuse ON segsync.receipts');
    const next = await runMapping(app, 'seg');
    assert.equal(next.status, 'succeeded');
    assert.equal(next.counts.resent, 5);
    assert.equal(s.records.size, 40);
    assert.equal((await delivered(app)).length, 40);
  });
});

test('records a destination answers in_doubt are resent next run, counted as resends, and never count towards dead_after', async () => {
  let doubt = true;
  script(`doubt-${++n}`, {
    deliver: async (changes, _call, accept) => {
      for (const c of changes) accept(c);
      return { outcomes: changes.map((c) => ({ key: c.key, status: doubt && c.key <= 'u0003' ? 'in_doubt' as const : 'delivered' as const, requestId: 'job-1' })) };
    },
  });
  await withScript(`doubt-${n}`, 8, async (app) => {
    // Sent, no answer: partial while others were confirmed; a run of nothing but in-doubt records confirmed nothing.
    for (const want of ['partial', 'failed']) {
      const run = await runMapping(app, 'seg');
      assert.deepEqual([run.status, run.counts.in_doubt], [want, 3]);
    }
    const [{ fail_count }] = await q<{ fail_count: number }>(app, `SELECT max(fail_count)::int AS fail_count FROM segsync.delivered WHERE mapping = 'seg'`);
    assert.equal(fail_count, 0, 'in doubt is not a failure');
    doubt = false;
    const run = await runMapping(app, 'seg');
    assert.deepEqual([run.status, run.counts.resent, run.counts.delivered], ['succeeded', 3, 3]);
    assert.equal((await runMapping(app, 'seg')).counts.delivered, 0, 'then nothing is left to send');
  }, 'dead_after: 2');
});

test('a transient error of the pre-flight check is retried like a delivery; a lasting one is a failed run row', async () => {
  const s = script(`preflight-${++n}`, {
    check: async (call) => {
      if (call === 1) throw new DestinationError('HTTP_503', 'service unavailable (GET /crm/v3/properties/contacts)', { retryable: true, status: 503 });
    },
  });
  await withScript(`preflight-${n}`, 4, async (app) => {
    const run = await runMapping(app, 'seg');
    assert.deepEqual([run.status, run.counts.delivered, s.checks], ['succeeded', 4, 2]);
    s.check = async () => { throw new DestinationError('UNAUTHORIZED', 'the token was refused (401)', { status: 401 }); };
    await seedSegments(app.warehouse.pool, 4, () => 'Lost');
    await assert.rejects(runMapping(app, 'seg'), /token was refused/);
    const [last] = await q<{ status: string; error: string; actor_type: string }>(app, `SELECT status, error, actor_type FROM segsync.runs ORDER BY id DESC LIMIT 1`);
    assert.deepEqual([last!.status, last!.actor_type], ['failed', 'cli']);
    assert.match(last!.error, /token was refused/);
  });
});

test('follow-up work has its own outcome: a contact stays delivered when its tickets hit the limit, the next run applies what is pending without resending it, and tickets changed on unchanged contacts are stamped', async () => {
  let budget = false;
  const s = script(`follow-${++n}`, {
    followUps: {
      applied: [], sweeps: [],
      apply: async (items) => {
        if (budget) throw new BudgetExhaustedError('HUBSPOT_DAILY_LIMIT', 'daily limit reached');
        return items.map((i) => ({ key: i.key, status: 'done' as const }));
      },
      changedSince: async () => ['id-u0002', 'id-u0004', 'id-unknown'],
    },
  });
  await withScript(`follow-${n}`, 6, async (app) => {
    budget = true;
    const first = await runMapping(app, 'seg');
    assert.equal(first.counts.delivered, 5, 'the first batch of contacts is confirmed');
    assert.equal(first.status, 'deferred', 'the limit defers the rest of the run');
    assert.ok(first.counts.followups.deferred >= 5);
    const pending = await q<{ key: string }>(app, `SELECT key FROM segsync.followups WHERE mapping = 'seg' AND status = 'pending' ORDER BY key`);
    assert.equal(pending.length, 5, 'the contacts\' tickets are pending, not lost');
    const [{ n: failedReceipts }] = await q<{ n: number }>(app, `SELECT count(*)::int AS n FROM segsync.receipts WHERE run_id = $1 AND status = 'failed'`, [first.runId]);
    assert.equal(failedReceipts, 0, 'no contact is marked failed because of its tickets');

    budget = false;
    const callsBefore = s.calls.length;
    const second = await runMapping(app, 'seg');
    assert.equal(second.status, 'succeeded');
    assert.equal(second.counts.delivered, 1, 'only the contact never sent is sent');
    assert.equal(s.calls.length, callsBefore + 1);
    assert.equal((await q(app, `SELECT 1 FROM segsync.followups WHERE status = 'pending'`)).length, 0, 'every pending follow-up was applied');

    // Nothing changed in the model; tickets changed in the destination on u0002 and u0004 get their stamp.
    const applied = s.followUps!.applied.length;
    const third = await runMapping(app, 'seg');
    assert.equal(third.counts.delivered, 0);
    assert.equal(s.followUps!.sweeps.length, 1, 'the sweep starts from the second run');
    const stamped = s.followUps!.applied.slice(applied).flat().map((i) => [i.key, i.payload?.rfm_segment]);
    assert.deepEqual(stamped, [['u0002', 'Champions'], ['u0004', 'Champions']], 'segment from the ledger, unknown contacts ignored');
    assert.equal(third.counts.followups.done, 2);
  });
});

test('run --all runs every mapping, reports each, exits non-zero if any failed; the failure is a run row', async () => {
  script(`all-${++n}`);
  project = await createProject({ settings: scriptedSettings(db.url, `all-${n}`) });
  try {
    await project.app(async (app) => {
      await app.warehouse.pool.query('DROP SCHEMA IF EXISTS segsync CASCADE');
      await seedSegments(app.warehouse.pool, 3);
    });
    await project.write('mappings/a.yaml', SCRIPTED_MAPPING('a-broken').replace('from: monetary', 'from: no_such_column'));
    await project.write('mappings/b.yaml', SCRIPTED_MAPPING('b-fine'));
    // The scripted destination lives in this process: the CLI's child cannot reach it, so run in-process.
    const { default: program } = await import('./helpers/run-all.ts');
    const result = await program(project.dir);
    assert.equal(result.exit, 1);
    assert.match(result.out, /a-broken: could not run: .*no_such_column/);
    assert.match(result.out, /run \d+ of b-fine: succeeded/);
    assert.match(result.out, /1 of 2 mapping\(s\) did not succeed: a-broken \(failed\)/);
    await project.app(async (app) => {
      const runs = await q<{ mapping: string; status: string }>(app, `SELECT mapping, status FROM segsync.runs ORDER BY id`);
      assert.deepEqual(runs, [{ mapping: 'a-broken', status: 'failed' }, { mapping: 'b-fine', status: 'succeeded' }]);
    });
  } finally {
    await project.cleanup();
  }
});

describe('the state machine', () => {
  test('transitions go through one write path with an actor and an outbox row; illegal ones are refused by name', async () => {
    script(`machine-${++n}`);
    await withScript(`machine-${n}`, 3, async (app) => {
      const run = await runMapping(app, 'seg', { actor: { type: 'cli', id: 'alice@host' } });
      const outbox = await q<{ from_state: string | null; to_state: string; actor: string; subject: string }>(app,
        `SELECT subject, from_state, to_state, actor_type || ':' || actor_id AS actor FROM segsync.outbox WHERE run_id = $1 ORDER BY id`, [run.runId]);
      assert.deepEqual(outbox.filter((o) => o.subject === 'run').map((o) => `${o.from_state ?? '*'}>${o.to_state}`), ['*>planning', 'planning>planned', 'planned>delivering', 'delivering>succeeded']);
      assert.deepEqual(outbox.filter((o) => o.subject === 'items').map((o) => `${o.from_state}>${o.to_state}`), ['planned>sending', 'sending>answered']);
      assert.ok(outbox.every((o) => o.actor === 'cli:alice@host'));
      await assert.rejects(transition(app.warehouse.pool, 'segsync', { run: run.runId }, 'delivering', cliActor(), 'again'),
        (err: unknown) => err instanceof TransitionError && /run \d+ is succeeded \(finished\); it cannot become delivering/.test(err.message));
      await assert.rejects(transition(app.warehouse.pool, 'segsync', { run: 999_999 }, 'approved', cliActor(), null), /run 999999 does not exist/);
    });
  });

  test('a held run survives recovery after a crash; an abandoned delivering run is closed as interrupted', async () => {
    script(`held-${++n}`);
    await withScript(`held-${n}`, 2, async (app) => {
      await runMapping(app, 'seg');
      const pool = app.warehouse.pool;
      const held = await createRun(pool, 'segsync', { mapping: 'seg', actor: systemActor, configHash: 'h', destination: 'dest', status: 'planning' });
      await transition(pool, 'segsync', { run: held }, 'held', systemActor, 'removals over 5%');
      const dead = await createRun(pool, 'segsync', { mapping: 'seg', actor: systemActor, configHash: 'h', destination: 'dest', status: 'planning' });
      await transition(pool, 'segsync', { run: dead }, 'planned', systemActor, null);
      await transition(pool, 'segsync', { run: dead }, 'delivering', systemActor, null);
      assert.equal(await closeAbandonedRuns(pool, 'segsync', 'seg'), 1);
      const rows = await q<{ id: string; status: string }>(app, `SELECT id, status FROM segsync.runs WHERE id = ANY($1) ORDER BY id`, [[held, dead]]);
      assert.deepEqual(rows.map((r) => r.status), ['held', 'interrupted']);
    });
  });

  test('a held run expires after hold_expires: cancelled, and the mapping plans afresh; a decision on a run of another mapping is refused', async () => {
    script(`expire-${++n}`);
    await withScript(`expire-${n}`, 3, async (app) => {
      await runMapping(app, 'seg');
      const pool = app.warehouse.pool;
      const held = await createRun(pool, 'segsync', { mapping: 'seg', actor: systemActor, configHash: 'h', destination: 'dest', status: 'planning' });
      await transition(pool, 'segsync', { run: held }, 'held', systemActor, 'removals over 5%');
      await assert.rejects(decideHeld(app, held, 'approved', 'ok', cliActor(), 'other-mapping'), /run \d+ is a run of seg, not of other-mapping: nothing was approved/);
      // Still held and younger than 72h: the mapping waits for a decision.
      assert.deepEqual([(await runMapping(app, 'seg')).status, (await runMapping(app, 'seg')).heldEarlier], ['held', true]);
      await q(app, `UPDATE segsync.runs SET status_at = now() - interval '73 hours' WHERE id = $1`, [held]);
      const next = await runMapping(app, 'seg');
      assert.equal(next.status, 'succeeded');
      const [r] = await q<{ status: string; status_reason: string }>(app, `SELECT status, status_reason FROM segsync.runs WHERE id = $1`, [held]);
      assert.equal(r!.status, 'cancelled');
      assert.match(r!.status_reason, /^expired: held longer than hold_expires \(72h\)/);
    });
  });

  test('guardrail settings out of range are located config errors', async () => {
    project = await createProject({ settings: scriptedSettings(db.url, 'unused') });
    try {
      await project.write('mappings/seg.yaml', SCRIPTED_MAPPING('seg', 'guardrails:\n  removals: { max_share: 1.5 }\n  disable: [removalz]\n  distribution: { warn: 0.3, hold: 0.2 }'));
      const out = await project.cli(['validate', '--offline']);
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, /mappings\/seg\.yaml:\d+:\d+ \(guardrails\.removals\.max_share\): a share from 0 to 1/);
      assert.match(out.stderr, /mappings\/seg\.yaml:\d+:\d+ \(guardrails\.disable\.0\)/);
      assert.match(out.stderr, /distribution\.warn must not be above distribution\.hold/);
    } finally {
      await project.cleanup();
    }
  });

  test('docs/sync.md carries the state diagram generated from src/state/machine.ts', async () => {
    const doc = await readFile(path.join(REPO_ROOT, 'docs/sync.md'), 'utf8');
    const m = /<!-- state-diagram:begin -->\n([\s\S]*?)<!-- state-diagram:end -->/.exec(doc);
    assert.ok(m, 'docs/sync.md has the state-diagram markers');
    assert.equal(m[1], stateDiagram(), 'regenerate with: segsync state-diagram');
  });
});
