import type { App } from '../app.ts';
import { withTransaction } from '../db/transaction.ts';
import { BudgetExhaustedError, describeError, UsageError } from '../errors.ts';
import type { GuardrailRule } from '../config/mapping.ts';
import { durationMs } from '../daemon/duration.ts';
import { quoteIdent } from '../db/sql.ts';
import { cliActor, formatActor, systemActor, type Actor } from '../state/actor.ts';
import { insertEvent } from '../state/events.ts';
import { runById, waitingRun } from '../state/held-run.ts';
import { dropItems, planFingerprint } from '../state/plan-fingerprint.ts';
import { runCounts } from '../state/run-counts.ts';
import { closeAbandonedRuns, dropUnplannedItems } from '../state/close-abandoned.ts';
import { closeUnsent } from '../state/close-unsent.ts';
import { createRun } from '../state/create-run.ts';
import { acquireRunLock } from '../state/locks.ts';
import type { FinalState } from '../state/machine.ts';
import { migrate } from '../state/migrate.ts';
import { sealAudit } from '../audit/trail.ts';
import { auditConfig } from '../audit/config-audit.ts';
import { planDetail, type PlanDetail } from '../state/plan-detail.ts';
import { planInto, refreshValuesHashes, type PlanCounts } from '../state/plan-items.ts';
import { maintainReceiptPartitions } from '../state/receipt-partitions.ts';
import { reviveDead as reviveDeadRecords } from '../state/revive-dead.ts';
import { transition, TransitionError } from '../state/transition.ts';
import { getMapping, openDestination, type OpenedDestination } from './connect.ts';
import { catchUpFollowUps, deliverPlanned, noDelivery, type DeliverOptions, type DeliverResult } from './deliver.ts';
import { checkKeys, enterPlanSnapshot, readSourceOnce, snapshotRelation, withPlanHelper } from './plan.ts';
import { pastFigures } from '../state/guardrail-figures.ts';
import { evaluate, holding, movedExamples, runFigures, type RuleVerdict } from './guardrails.ts';
import { withRetries } from './retry.ts';
import { checkSource, sourceQuery, sourceStatement } from './source.ts';

export type { PlanCounts } from '../state/plan-items.ts';

/** How a run ended (src/state/machine.ts has every state and transition). */
export type RunStatus = Exclude<FinalState, 'rejected' | 'cancelled'> | 'held';

export interface RunSummary {
  runId: number;
  mapping: string;
  status: RunStatus;
  planned: PlanCounts;
  counts: {
    create: number; update: number; remove: number; unchanged: number; dead: number;
    delivered: number; failed: number; deferred: number;
    /** Sent, no answer: resent next run. */
    in_doubt: number;
    /** Of the planned changes, resends of records an earlier run left in doubt. */
    resent: number;
    /** Follow-up work (tickets, Cases) applied, failed, or left pending by a limit. */
    followups: { done: number; failed: number; deferred: number };
  };
  startedAt: Date;
  finishedAt: Date;
  error?: string;
  /** With status held: the run was held by an earlier run and still waits (nothing was planned now). */
  heldEarlier?: boolean;
}

export interface RunOptions {
  /** A graceful stop: no new batch; batches in flight finish and are recorded. */
  signal?: AbortSignal;
  /** A forced stop: requests in flight are abandoned (their records end in doubt). */
  forceSignal?: AbortSignal;
  /** Wait for another runner of the same mapping to finish instead of failing with LOCKED. */
  wait?: boolean;
  /** Who asked for the run (default: the CLI's OS user). */
  actor?: Actor;
  onPlanned?: (planned: PlanCounts) => void;
  onProgress?: (p: { done: number; total: number }) => void;
  /** Process-wide objects shared by destinations (rate budgets). */
  shared?: Map<string, unknown>;
  /** Only records whose last delivery failed (segsync retry). */
  failedOnly?: boolean;
  /** A one-shot override: these guardrails do not hold this run (recorded with the actor and the reason). */
  allow?: GuardrailRule[];
  allowReason?: string;
}

const sharedDefault = new Map<string, unknown>();

/** Clears the dead mark of a mapping's records so the next run sends them again; returns how many. */
export async function reviveDead(app: App, name: string): Promise<number> {
  await ensureState(app);
  return reviveDeadRecords(app.warehouse.pool, app.config.settings.state.schema, getMapping(app.config, name).value.name);
}

/** Makes sure the state schema exists and is current. Cheap when it is. */
export async function ensureState(app: App): Promise<void> {
  await migrate(app.warehouse.pool, app.config.settings.state.schema);
  // A config not seen before is audited with its diff (the daemon audits its own loads and reloads first).
  await auditConfig(app.warehouse.pool, app.config.settings.state.schema, app.config, cliActor(), 'config.loaded');
}

/**
 * Opens the mapping's destination and runs its pre-flight check under the engine's retry policy: a 503, a
 * reset or a 429 on the first schema read is retried like a delivery, not a failed run.
 */
export async function openChecked(app: App, name: string, o: { runId?: number; shared: Map<string, unknown>; signal: AbortSignal; check: boolean; state?: boolean }): Promise<OpenedDestination> {
  const file = getMapping(app.config, name);
  const retry = { signal: o.signal, log: app.log.child({ mapping: file.value.name }), what: 'destination pre-flight' };
  // With the state open, the destination learns the ledger's identity (file batches carry it).
  const state = o.state ? { state: { db: app.warehouse.pool, schema: app.config.settings.state.schema } } : {};
  const dest = await withRetries(() => openDestination(app.config, file, { log: app.log, shared: o.shared, ...state, ...(o.runId === undefined ? {} : { runId: o.runId }) }), retry);
  if (o.check) {
    try {
      await withRetries(() => dest.session.check(), retry);
    } catch (err) {
      await dest.session.close().catch(() => {});
      throw err;
    }
  }
  return dest;
}

/**
 * Runs one mapping through the state machine (src/state/machine.ts): planning (the intent is written before
 * anything is sent, the guardrails judge it in the same snapshot) -> planned, or held for a person ->
 * delivering (batches marked sending before they leave, receipts and the delivered state per answered batch)
 * -> a final state. A mapping with a held run plans nothing new until the run is approved or rejected (or
 * expires); an approved run is delivered exactly as held, or planned again under its id when the model changed
 * since. Every transition goes through src/state/transition.ts with the run's actor. Never throws for
 * destination failures: they are in the summary and the receipts. Throws for what prevents a run at all
 * (config, lock held, source unreadable, duplicate keys) after recording the run as failed.
 */
export async function runMapping(app: App, name: string, opts: RunOptions = {}): Promise<RunSummary> {
  try {
    return await runMappingOnce(app, name, opts);
  } finally {
    // The run's transitions are sealed into the audit chain as it ends, whoever ran it (CLI, demo, daemon, API),
    // not at the next audited action. One sealer at a time across replicas (the chain's head row is locked).
    await sealAudit(app.warehouse.pool, app.config.settings.state.schema).catch((err: unknown) => app.log.warn({ err: describeError(err) }, 'the audit trail could not be sealed; the next audited action seals it'));
  }
}

async function runMappingOnce(app: App, name: string, opts: RunOptions): Promise<RunSummary> {
  const file = getMapping(app.config, name);
  const mapping = file.value;
  const schema = app.config.settings.state.schema;
  const pool = app.warehouse.pool;
  const signal = opts.signal ?? new AbortController().signal;
  const actor = opts.actor ?? cliActor();
  // The lock first: whoever asks first runs first (the in-process lock is taken before any await).
  const lock = await acquireRunLock(app.warehouse, mapping.name, { wait: opts.wait ?? false });
  const startedAt = new Date();
  let runId = 0;
  let reached: 'planning' | 'planned' | 'delivering' = 'planning';
  try {
    await ensureState(app);
    await maintainReceiptPartitions(pool, schema, app.config.settings.state.receipts_retention_months);
    await closeAbandonedRuns(pool, schema, mapping.name);
    // A run waiting for a person holds the mapping: one hold, one event, no new plan on every tick.
    let waiting = await waitingRun(pool, schema, mapping.name);
    if (waiting?.status === 'held' && waiting.statusAt.getTime() + durationMs(mapping.guardrails.hold_expires) < Date.now()) {
      try {
        // Only while still held: an approval that landed meanwhile wins.
        await transition(pool, schema, { run: waiting.id }, 'cancelled', systemActor, `expired: held longer than hold_expires (${mapping.guardrails.hold_expires}) without approval`, { onlyFrom: ['held'] });
      } catch (err) {
        if (!(err instanceof TransitionError)) throw err;
      }
      waiting = await waitingRun(pool, schema, mapping.name);
    }
    if (waiting?.status === 'held') return heldSummary(app, waiting.id, mapping.name, startedAt, true);
    const columns = await checkSource(pool, file, app.config.settings.models.schema).catch(async (err: unknown) => {
      // A run that cannot even read its source is still a visible run row.
      runId = waiting?.id ?? await createRun(pool, schema, { mapping: mapping.name, actor, configHash: app.config.hash, destination: mapping.destination.connection, status: 'planning' });
      throw err;
    });
    const q = sourceQuery(mapping, app.config.settings.models.schema);
    const relation = await snapshotRelation(pool, q);
    let replan = true;
    if (waiting?.status === 'approved') {
      runId = waiting.id;
      reached = 'planned'; // its items are the held plan: a failure closes them
      // Approval binds to the plan: the held plan is delivered only while the model still plans exactly it.
      const now = await withTransaction(pool, async (client) => {
        await enterPlanSnapshot(client, relation);
        const probe = -(process.pid * 1000 + Math.floor(Math.random() * 1000));
        await planInto(client, { schema, mapping, runId: probe, source: await readSourceOnce(client, q), helper: null });
        return { now: await planFingerprint(client, schema, probe), held: await planFingerprint(client, schema, runId) };
      }, { commit: false });
      replan = now.now !== now.held;
      if (replan) {
        await transition(pool, schema, { run: runId }, 'planning', actor, 'the model changed since the approval: planned again and judged again');
        await dropItems(pool, schema, runId);
        reached = 'planning';
      }
    } else {
      runId = await createRun(pool, schema, { mapping: mapping.name, actor, configHash: app.config.hash, destination: mapping.destination.connection, status: 'planning' });
    }
    const log = app.log.child({ mapping: mapping.name, run: runId });
    const dest = await openChecked(app, name, { runId, shared: opts.shared ?? sharedDefault, signal, check: false, state: true });
    try {
      let planned: PlanCounts;
      if (replan) {
        const plan = await planRun(app, { file, runId, q, relation, columns: columns.map((c) => c.name), actor, allow: opts.allow ?? [], failedOnly: opts.failedOnly ?? false, allowReason: opts.allowReason });
        if (plan.held) return heldSummary(app, runId, mapping.name, startedAt, false);
        planned = plan.counts;
      } else {
        planned = await runCounts(pool, schema, runId);
      }
      reached = 'planned';
      opts.onPlanned?.(planned);
      const total = planned.create + planned.update + planned.remove;
      log.info({ ...planned }, 'planned');
      const base = { app, runId, mapping: mapping.name, planned, startedAt, actor };
      if (total > 0 || dest.session.followUps) {
        // Checked after planning, so that a budget already spent today defers the whole plan (visible in
        // receipts, sent next time) instead of failing the run.
        try {
          await withRetries(() => dest.session.check(), { signal, log, what: 'destination pre-flight' });
        } catch (err) {
          if (!(err instanceof BudgetExhaustedError)) throw err;
          if (!replan) {
            // An approved run stays approved: the next run (tomorrow's budget) delivers the held plan.
            log.info({ reason: err.message }, 'approved run deferred before sending: it stays approved');
            return { ...(await heldSummary(app, runId, mapping.name, startedAt, false)), status: 'deferred', error: `approved, not sent yet: ${err.message}` };
          }
          const closed = await closeUnsent(pool, schema, mapping.name, runId, 'deferred', err.message);
          return await finish(base, 'deferred', noDelivery(), closed.unsent, err.message);
        }
      }
      await transition(pool, schema, { run: runId }, 'delivering', actor, replan ? null : 'delivering the approved plan');
      reached = 'delivering';
      const limits = dest.session.limits;
      const deliver: DeliverOptions = {
        pool, schema, mapping: mapping.name, runId, actor, session: dest.session, signal, log,
        ...(opts.forceSignal ? { forceSignal: opts.forceSignal } : {}),
        planned: total,
        batchSize: Math.min(mapping.batch_size ?? limits.defaultBatchSize ?? limits.maxBatchSize, limits.maxBatchSize),
        concurrency: Math.min(mapping.concurrency ?? limits.defaultConcurrency, limits.maxConcurrency),
        deadAfter: mapping.dead_after ?? app.config.settings.defaults.dead_after,
        copy: !app.warehouse.embedded,
        onProgress: (done) => opts.onProgress?.({ done, total }),
      };
      const result = total > 0 ? await deliverPlanned(deliver) : noDelivery();
      if (result.stoppedBy === null) {
        // Follow-ups left pending by earlier runs, and tickets/Cases changed since on records already delivered.
        const f = await catchUpFollowUps(deliver, startedAt);
        result.followUps.done += f.done;
        result.followUps.failed += f.failed;
        result.followUps.deferred += f.deferred;
      }
      const leftover = result.stoppedBy === 'abort' || result.stoppedBy === 'error' ? 'interrupted' : 'deferred';
      // A run that recorded every item has nothing to close: the anti-join of its items and receipts is skipped.
      const closed = result.allRecorded ? { unsent: 0, inDoubt: 0 } : await closeUnsent(pool, schema, mapping.name, runId, leftover, result.stopReason ?? 'not sent');
      result.inDoubt += closed.inDoubt;
      const status: RunStatus = result.stoppedBy === 'abort' ? 'interrupted'
        : result.stoppedBy === 'error' ? 'failed'
        : result.stoppedBy === 'budget' ? 'deferred'
        : result.failed === 0 && result.inDoubt === 0 && result.stoppedBy === null ? (result.followUps.failed > 0 ? 'partial' : 'succeeded')
        : result.delivered > 0 ? 'partial' : total === 0 ? 'succeeded' : 'failed';
      return await finish(base, status, result, closed.unsent, result.stopReason ?? undefined);
    } finally {
      await dest.session.close().catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'closing the destination failed'));
    }
  } catch (err) {
    if (runId) {
      const message = err instanceof Error ? err.message : String(err);
      try {
        // Whatever was sending is closed in doubt before the run is called failed; should that fail too (the
        // database is gone), the run stays open and the next run's recovery closes it.
        const stopped = signal.aborted;
        if (reached !== 'planning') await closeUnsent(pool, schema, mapping.name, runId, 'interrupted', stopped ? 'the run was stopped (shutdown or signal)' : `the run failed: ${message.slice(0, 300)}`);
        // A stop during the pre-flight is an interruption, not a failure.
        await transition(pool, schema, { run: runId }, stopped ? 'interrupted' : 'failed', actor, describeError(err).slice(0, 300), { error: message });
        await dropUnplannedItems(pool, schema, mapping.name);
      } catch (closing) {
        app.log.warn({ err: describeError(closing), run: runId }, 'could not close the failed run; the next run will');
      }
    }
    throw err;
  } finally {
    await lock.release();
  }
}

/**
 * Plans the run in one snapshot (the key check, the diff, both halves of it on a server, the guardrails'
 * figures and the counts all see the same model, taken after a models build in progress has committed), and
 * moves it to planned, or to held when a guardrail trips (the plan stays, an event carries the evidence).
 */
async function planRun(app: App, o: {
  file: ReturnType<typeof getMapping>; runId: number; q: ReturnType<typeof sourceQuery>; relation: string | null; columns: string[];
  actor: Actor; allow: GuardrailRule[]; allowReason: string | undefined; failedOnly: boolean;
}): Promise<{ counts: PlanCounts; held: boolean }> {
  const mapping = o.file.value;
  const schema = app.config.settings.state.schema;
  const pool = app.warehouse.pool;
  const hasSnapshot = o.columns.includes('snapshot_at');
  return withTransaction(pool, async (client) => {
    await enterPlanSnapshot(client, o.relation);
    const q = await readSourceOnce(client, o.q);
    await checkKeys(client, mapping, q);
    const { counts, figures } = await withPlanHelper(app.warehouse.embedded ? null : pool, o.relation, client, true, async (helper) => {
      const counts = await planInto(client, { schema, mapping, runId: o.runId, source: q, failedOnly: o.failedOnly, helper });
      return { counts, figures: await runFigures({ client, helper, schema, mapping, runId: o.runId, source: q, counts, columns: o.columns }) };
    });
    // State rows recorded without a current values hash get one, so the next plan skips their payload.
    await refreshValuesHashes(client, { schema, mapping: mapping.name, source: q });
    // The model snapshot this run delivers, so a receipt can be traced to the exact model state.
    const snapshotAt = hasSnapshot ? (await client.query<{ s: Date | null }>(sourceStatement(`SELECT max(snapshot_at) AS s FROM ${q.from}`, q.params))).rows[0]?.s ?? null : null;
    const g = mapping.guardrails;
    const history = await pastFigures(client, schema, mapping.name, o.runId, g.anomaly.runs * (g.anomaly.seasonality === 'weekday' ? 7 : 1));
    // A retry sends only what failed: no guardrail judges it.
    const verdicts = o.failedOnly ? [] : evaluate(g, figures, history, new Date(), o.allow);
    const held = holding(verdicts, counts.create + counts.update + counts.remove);
    const allowed = verdicts.filter((v) => v.allowed);
    const guardrails: Record<string, unknown> = { figures, verdicts, ...(allowed.length ? { allowed: { rules: allowed.map((v) => v.rule), reason: o.allowReason, by: formatActor(o.actor) } } : {}) };
    if (held.length) {
      guardrails.examples = await movedExamples(client, schema, o.runId, mapping.fields.find((f) => f.from === 'rfm_segment')?.to ?? null);
      const reason = held.map((v) => `${v.rule}: ${v.detail}`).join('; ');
      await transition(client, schema, { run: o.runId }, 'held', o.actor, reason, { planned: counts, snapshotAt, guardrails });
      await insertEvent(client, quoteIdent(schema), {
        kind: 'run_held', severity: 'warning', mapping: mapping.name, runId: o.runId,
        message: `${mapping.name} run ${o.runId} held for approval: ${reason}`,
        details: { verdicts: held, examples: guardrails.examples }, dedupKey: `run_held:${mapping.name}:${o.runId}`,
      });
      return { counts, held: true };
    }
    await transition(client, schema, { run: o.runId }, 'planned', o.actor, allowed.length ? `allowed by ${formatActor(o.actor)}: ${allowed.map((v) => v.rule).join(', ')} (${o.allowReason ?? 'no reason given'})` : null, { planned: counts, snapshotAt, guardrails });
    return { counts, held: false };
  });
}

/** The summary of a run that is held for approval (just now, or earlier and still waiting). */
async function heldSummary(app: App, runId: number, mapping: string, startedAt: Date, earlier: boolean): Promise<RunSummary> {
  const schema = app.config.settings.state.schema;
  const planned = await runCounts(app.warehouse.pool, schema, runId);
  const w = await waitingRun(app.warehouse.pool, schema, mapping);
  const p = planned;
  return {
    runId, mapping, status: 'held', planned: p, heldEarlier: earlier,
    counts: { create: p.create, update: p.update, remove: p.remove, unchanged: p.unchanged, dead: p.dead, resent: p.in_doubt, delivered: 0, failed: 0, deferred: 0, in_doubt: 0, followups: { done: 0, failed: 0, deferred: 0 } },
    startedAt, finishedAt: new Date(), error: `held for approval${earlier ? ` since ${w?.statusAt.toISOString()}` : ''}: ${w?.statusReason ?? ''}`,
  };
}

async function finish(b: { app: App; runId: number; mapping: string; planned: PlanCounts; startedAt: Date; actor: Actor }, status: RunStatus, r: DeliverResult, deferred: number, error?: string): Promise<RunSummary> {
  const outcome = { delivered: r.delivered, failed: r.failed, deferred, in_doubt: r.inDoubt, followups: r.followUps };
  const row = await transition(b.app.warehouse.pool, b.app.config.settings.state.schema, { run: b.runId }, status, b.actor, error ?? null, { outcome, error: error ?? null, receipts: r.receipts });
  const p = b.planned;
  return {
    runId: b.runId, mapping: b.mapping, status, planned: p,
    counts: { create: p.create, update: p.update, remove: p.remove, unchanged: p.unchanged, dead: p.dead, resent: p.in_doubt, ...outcome },
    startedAt: b.startedAt, finishedAt: row.finishedAt!, ...(error ? { error } : {}),
  };
}

export interface PlanSummary {
  mapping: string;
  counts: PlanCounts;
  detail: PlanDetail;
  destinationProblems: string[];
  /** Each guardrail's verdict on this plan, as a run would be judged now. */
  guardrails: RuleVerdict[];
  /** Milliseconds the guardrails took (their figures in the plan's snapshot, the history, the verdicts). */
  guardrailsMs: number;
}

/**
 * A dry run: the same SQL plan as a run, inside a transaction that is rolled back, so nothing is written
 * and nothing is sent. With `checkDestination`, the mapping is also checked against the destination schema.
 */
export async function planMapping(app: App, name: string, opts: { checkDestination?: boolean; samples?: number; skipGuardrails?: boolean } = {}): Promise<PlanSummary> {
  const file = getMapping(app.config, name);
  const mapping = file.value;
  const schema = app.config.settings.state.schema;
  await ensureState(app);
  const columns = (await checkSource(app.warehouse.pool, file, app.config.settings.models.schema)).map((c) => c.name);
  const sq = sourceQuery(mapping, app.config.settings.models.schema);
  let destinationProblems: string[] = [];
  if (opts.checkDestination) {
    const dest = await openChecked(app, name, { shared: sharedDefault, signal: new AbortController().signal, check: false });
    try {
      destinationProblems = await dest.session.validateMapping();
    } finally {
      await dest.session.close().catch(() => {});
    }
  }
  // The same plan as a run (in two halves on a server), every write rolled back on both connections.
  const relation = await snapshotRelation(app.warehouse.pool, sq);
  return withTransaction(app.warehouse.pool, async (client) => {
    await enterPlanSnapshot(client, relation);
    const src = await readSourceOnce(client, sq);
    await checkKeys(client, mapping, src);
    // A dry run is no run: it takes no run id from the sequence an auditor reads. Its items carry a negative
    // id of its own, inside a transaction that is rolled back.
    const runId = -(process.pid * 1000 + Math.floor(Math.random() * 1000));
    const q = src;
    return withPlanHelper(app.warehouse.embedded ? null : app.warehouse.pool, relation, client, false, async (helper) => {
      const counts = await planInto(client, { schema, mapping, runId, source: q, helper });
      const detail = await planDetail(client, schema, mapping, runId, opts.samples ?? 3, helper);
      // Without guardrails: the baseline bench:sync measures their cost against.
      if (opts.skipGuardrails) return { mapping: mapping.name, counts, detail, destinationProblems, guardrails: [], guardrailsMs: 0 };
      const t0 = performance.now();
      const figures = await runFigures({ client, helper, schema, mapping, runId, source: q, counts, columns });
      const g = mapping.guardrails;
      const history = await pastFigures(client, schema, mapping.name, runId, g.anomaly.runs * (g.anomaly.seasonality === 'weekday' ? 7 : 1));
      const guardrails = evaluate(g, figures, history, new Date());
      return { mapping: mapping.name, counts, detail, destinationProblems, guardrails, guardrailsMs: performance.now() - t0 };
    });
  }, { commit: false });
}


/**
 * A person's decision on a held run: approved (delivered as held by the next run of its mapping) or rejected
 * (closed, nothing sent). Refused, with what the run is, for a run that is not held.
 */
export async function decideHeld(app: App, runId: number, to: 'approved' | 'rejected', reason: string, actor: Actor = cliActor(), mapping?: string): Promise<{ mapping: string; by: string }> {
  if (!reason.trim()) throw new UsageError(`a ${to === 'approved' ? 'approval' : 'rejection'} needs --reason "..."`);
  await ensureState(app);
  const schema = app.config.settings.state.schema;
  const run = await runById(app.warehouse.pool, schema, runId);
  if (!run) throw new UsageError(`no run ${runId}`, 'segsync runs --held lists the runs waiting for approval');
  if (mapping !== undefined && run.mapping !== mapping) {
    throw new UsageError(`run ${runId} is a run of ${run.mapping}, not of ${mapping}: nothing was ${to}`, `segsync runs --held --mapping ${mapping}`);
  }
  if (run.status !== 'held') {
    throw new UsageError(`run ${runId} of ${run.mapping} is ${run.status}, not held: nothing to ${to === 'approved' ? 'approve' : 'reject'}`, 'segsync runs --held lists the runs waiting for approval');
  }
  try {
    await transition(app.warehouse.pool, schema, { run: runId }, to, actor, reason.trim());
  } catch (err) {
    if (err instanceof TransitionError) throw new UsageError(err.message, 'segsync runs --held lists the runs waiting for approval');
    throw err;
  }
  return { mapping: run.mapping, by: formatActor(actor) };
}
