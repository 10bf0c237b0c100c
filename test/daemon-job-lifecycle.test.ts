import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { DaemonContext } from '../src/daemon/context.ts';
import type { EventInput } from '../src/daemon/events.ts';
import { runJob, type JobSpec } from '../src/daemon/job-lifecycle.ts';
import { LockedError } from '../src/errors.ts';
import { registry } from '../src/metrics.ts';
import { testLog } from './helpers/pg.ts';

/** The lifecycle every daemon job goes through (src/daemon/job-lifecycle.ts), without a database. */

function context(): { ctx: DaemonContext; events: EventInput[] } {
  const events: EventInput[] = [];
  const ctx = { events: { record: async (ev: EventInput) => { events.push(ev); return events.length; } }, status: new Map() } as unknown as DaemonContext;
  return { ctx, events };
}

async function inFlight(): Promise<number> {
  return (await registry.getSingleMetricAsString('segsync_runs_in_flight')).split('\n').filter((l) => !l.startsWith('#')).map((l) => Number(l.split(' ').at(-1)))[0] ?? 0;
}

const spec = <T>(over: Partial<JobSpec<T>> & Pick<JobSpec<T>, 'work'>): JobSpec<T> => ({
  job: 'm', trigger: 'schedule', log: testLog, sla: { stage: 'run', limitMs: undefined, mapping: 'm' },
  failureEvent: (message) => ({ kind: 'run_failed', severity: 'error', mapping: 'm', message, dedupKey: 'run_failed:m' }),
  lastRun: (_r, startedAt, finishedAt) => ({ runId: 7, status: 'succeeded', startedAt, finishedAt }),
  ...over,
});

test('a job that finishes: running and counted in flight while it works, then idle with its last run', async () => {
  const { ctx, events } = context();
  const before = await inFlight();
  let during: { state?: string; inFlight?: number } = {};
  const result = await runJob(ctx, spec({ work: async () => { during = { state: ctx.status.get('m')?.state, inFlight: await inFlight() }; return 'done'; } }));
  assert.equal(result, 'done');
  assert.deepEqual(during, { state: 'running', inFlight: before + 1 });
  assert.equal(await inFlight(), before);
  assert.deepEqual({ ...ctx.status.get('m'), since: undefined, lastRun: { ...ctx.status.get('m')!.lastRun, startedAt: undefined, finishedAt: undefined } },
    { state: 'idle', trigger: 'schedule', since: undefined, lastRun: { runId: 7, status: 'succeeded', startedAt: undefined, finishedAt: undefined } });
  assert.deepEqual(events, []);
});

test('a job that fails: /status says failed with the reason, the failure is one event, the gauge is back', async () => {
  const { ctx, events } = context();
  const before = await inFlight();
  let failedAt: Date | null = null;
  const result = await runJob(ctx, spec({ work: async () => { throw new Error('warehouse gone'); }, onFailure: (_m, at) => { failedAt = at; } }));
  assert.equal(result, undefined);
  assert.equal(ctx.status.get('m')?.lastRun?.status, 'failed');
  assert.match(ctx.status.get('m')?.lastRun?.error ?? '', /warehouse gone/);
  assert.ok(failedAt);
  assert.deepEqual(events.map((e) => [e.kind, e.dedupKey]), [['run_failed', 'run_failed:m']]);
  assert.equal(await inFlight(), before);
});

test('a job another replica holds is skipped quietly: no event, no failed run', async () => {
  const { ctx, events } = context();
  const result = await runJob(ctx, spec({ work: async () => { throw new LockedError('MODELS_LOCKED', 'held'); }, lockedElsewhere: (err) => err instanceof LockedError }));
  assert.equal(result, undefined);
  assert.deepEqual([ctx.status.get('m')?.state, ctx.status.get('m')?.reason], ['skipped', 'running on another replica']);
  assert.deepEqual(events, []);
});

test('a job that outlives its time limit records an SLA breach while it is still running', async () => {
  const { ctx, events } = context();
  await runJob(ctx, spec({ sla: { stage: 'build', limitMs: 20, mapping: 'models' }, work: () => sleep(60) }));
  assert.deepEqual(events.map((e) => [e.kind, e.mapping]).slice(0, 1), [['sla_breach', 'models']]);
});
