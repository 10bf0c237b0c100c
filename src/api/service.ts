import cron from 'node-cron';
import type { App } from '../app.ts';
import type { LoadedMapping } from '../config/load.ts';
import type { Mapping } from '../config/mapping.ts';
import { durationMs } from '../daemon/duration.ts';
import { modelsFreshness } from '../daemon/freshness.ts';
import { syncEngine } from '../daemon/sync-adapter.ts';
import { describeError, LockedError, SegsyncError, UsageError } from '../errors.ts';
import type { Identity } from '../auth/permissions.ts';
import { mayApprove } from '../auth/authenticate.ts';
import { openRef, sealRef } from '../pii/refs.ts';
import { approvalSubject } from '../state/approval-subject.ts';
import { formatActor, type Actor } from '../state/actor.ts';
import { eventsPage } from '../state/events-page.ts';
import { findReceipts } from '../state/find-receipts.ts';
import { runById, waitingRun, wasDecided } from '../state/held-run.ts';
import { RUN_STATES, type RunState } from '../state/machine.ts';
import { latestMonitorResults } from '../state/monitor-results.ts';
import { segmentField, segmentTransitions } from '../state/plan-detail.ts';
import { recordTimeline } from '../state/record-timeline.ts';
import { changedShares, latestRuns, runDetail, runItemsPage, runsPage, type RunRow } from '../state/run-pages.ts';
import { customerSegments, segmentFlows, segmentSizes } from '../state/segment-history.ts';
import { approveRun, cancelRun, CANCELLABLE, rejectRun } from '../sync/decide.ts';
import { ensureState, planMapping, runMapping } from '../sync/run.ts';
import type { Severity } from '../state/events.ts';
import type { RuleVerdict } from '../sync/guardrails.ts';
import { fieldClasses, maskShown } from '../pii/mask.ts';
import { allowedList, badRequest, conflict, decodeCursor, encodeCursor, notFound, ApiError } from './errors.ts';

/**
 * What the API and the dashboard show and do, built once from the state reads (src/state) and the same
 * functions the CLI calls (src/sync). Both front ends mask what they show (maskDeep) on the way out.
 */

export interface ControlPlane {
  /** The current app (the daemon swaps it on reload). */
  app(): App;
  /** The next scheduled time of a job, when a scheduler runs (the daemon); else computed from the cron. */
  nextRun?(mapping: string): Date | null;
  /** Process-wide objects shared by destinations (rate budgets), the daemon's when it serves. */
  shared?: Map<string, unknown>;
  /** Stops background runs started through the API (the daemon's stop signal). */
  signal?: AbortSignal;
}

const classesByConfig = new WeakMap<object, Map<string, string>>();

/**
 * What the API and the dashboard send, masked: maskDeep plus every field the mappings classify (`pii:`), by
 * its class (the one masking of src/pii/mask.ts, with the config's classification).
 */
export function shown<T>(cp: ControlPlane, value: T): T {
  const config = cp.app().config;
  let classes = classesByConfig.get(config);
  if (!classes) classesByConfig.set(config, (classes = fieldClasses(config.mappings.map((m) => m.value))));
  return maskShown(value, classes) as T;
}

export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error', 'critical'];

const runLinks = (id: number) => ({ self: `/api/v1/runs/${id}`, dashboard: `/runs/${id}` });

export function runSummary(r: RunRow) {
  return {
    id: r.id, mapping: r.mapping, status: r.status, actor: r.actor, destination: r.destination, configHash: r.configHash,
    planned: r.planned, outcome: r.outcome, error: r.error, reason: r.reason, startedAt: r.startedAt, plannedAt: r.plannedAt,
    finishedAt: r.finishedAt, statusAt: r.statusAt, snapshotAt: r.snapshotAt, links: runLinks(r.id),
  };
}

function state(cp: ControlPlane) {
  const app = cp.app();
  return { app, db: app.warehouse.pool, schema: app.config.settings.state.schema };
}

function findMapping(app: App, name: string): LoadedMapping {
  const m = app.config.mappings.find((x) => x.value.name === name);
  if (!m) throw notFound('mapping', name, `mappings: ${app.config.mappings.map((x) => x.value.name).join(', ') || '(none)'}`);
  return m;
}

function nextFire(cp: ControlPlane, app: App, m: Mapping): Date | null {
  if (!m.schedule) return null;
  const fromScheduler = cp.nextRun?.(m.name);
  if (fromScheduler) return fromScheduler;
  const task = cron.createTask(m.schedule, () => {}, { timezone: app.config.settings.daemon.timezone });
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    void task.destroy();
  }
}

async function freshness(app: App, m: Mapping) {
  try {
    const f = await modelsFreshness(app.warehouse.pool, app.config.settings, app.config.root, syncEngine, m);
    const limit = m.max_staleness ?? app.config.settings.defaults.max_staleness;
    const stale = f.at && limit ? Date.now() - f.at.getTime() > durationMs(limit) : null;
    return { at: f.at, source: f.source, stale: f.failed ? true : stale, problem: f.failed ?? null };
  } catch (err) {
    return { at: null, source: null, stale: null, problem: (err as Error).message };
  }
}

export async function mappings(cp: ControlPlane, only?: string) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const files = only ? [findMapping(app, only)] : app.config.mappings;
  const last = await latestRuns(db, schema, files.map((f) => f.value.name));
  const out = await Promise.all(files.map(async ({ value: m }) => {
    const w = await waitingRun(db, schema, m.name);
    const l = last.get(m.name);
    return {
      name: m.name, description: m.description ?? null,
      source: { model: 'model' in m.source && typeof m.source.model === 'string' ? m.source.model : null, key: m.source.key },
      destination: { connection: m.destination.connection, object: typeof m.destination.object === 'string' ? m.destination.object : null, matchKey: m.destination.match_key },
      mode: m.mode, fields: m.fields.map((f) => ({ to: f.to, from: typeof f.from === 'string' ? f.from : null })),
      schedule: m.schedule ?? null, nextRun: nextFire(cp, app, m), maxStaleness: m.max_staleness ?? app.config.settings.defaults.max_staleness ?? null,
      freshness: await freshness(app, m),
      lastRun: l ? runSummary(l) : null,
      waiting: w ? { id: w.id, status: w.status, since: w.statusAt, reason: w.statusReason } : null,
    };
  }));
  // Runs waiting for a person first, then by name.
  return out.sort((a, b) => Number(b.waiting?.status === 'held') - Number(a.waiting?.status === 'held') || (a.name < b.name ? -1 : 1));
}

const pageSize = (limit: string | undefined) => {
  if (limit === undefined) return 50;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw badRequest('BAD_REQUEST', `limit ${limit} is out of range: 1-500`, { parameter: 'limit', value: limit });
  return n;
};

async function knownMapping(cp: ControlPlane, name: string | undefined): Promise<void> {
  if (name === undefined) return;
  const { app, db, schema } = state(cp);
  if (app.config.mappings.some((m) => m.value.name === name)) return;
  const { rows } = await db.query(`SELECT 1 FROM ${schema}.runs WHERE mapping = $1 LIMIT 1`, [name]);
  if (!rows.length) throw badRequest('BAD_FILTER', `mapping '${name}' is not configured and has no runs; one of: ${app.config.mappings.map((m) => m.value.name).join(', ')}`, { parameter: 'mapping', value: name, allowed: app.config.mappings.map((m) => m.value.name) });
}

export async function runs(cp: ControlPlane, q: { mapping?: string; status?: string; since?: string; limit?: string; cursor?: string }) {
  const { app, db, schema } = state(cp);
  const status = allowedList<RunState>('status', q.status, RUN_STATES);
  const beforeId = decodeCursor(q.cursor, 'id') as number | undefined;
  const limit = pageSize(q.limit);
  await ensureState(app);
  await knownMapping(cp, q.mapping);
  const page = await runsPage(db, schema, { ...(q.mapping ? { mapping: q.mapping } : {}), ...(status ? { status } : {}), ...(beforeId ? { beforeId } : {}), ...(q.since ? { since: new Date(q.since) } : {}), limit });
  return { runs: page.runs.map(runSummary), nextCursor: page.next === null ? null : encodeCursor(page.next) };
}

export async function run(cp: ControlPlane, id: number, o: { transitions?: boolean } = {}) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const configured = (name: string) => app.config.mappings.find((m) => m.value.name === name)?.value;
  const head = await runById(db, schema, id);
  if (!head) throw notFound('run', id);
  const m = configured(head.mapping);
  const d = await runDetail(db, schema, id, m ? segmentField(m) : null, o);
  if (!d) throw notFound('run', id);
  const g = d.guardrails as { verdicts?: unknown[]; figures?: unknown; examples?: unknown; allowed?: unknown } | null;
  const actions: Array<'approve' | 'reject' | 'cancel'> = d.status === 'held' ? ['approve', 'reject', 'cancel'] : (CANCELLABLE as readonly string[]).includes(d.status) ? ['cancel'] : [];
  return {
    ...runSummary(d),
    guardrails: g ? { verdicts: (g.verdicts ?? []) as RuleVerdict[], figures: g.figures ?? null, examples: g.examples ?? null, allowed: g.allowed ?? null } : null,
    items: d.items, outcomes: d.outcomes, errors: d.errors, transitions: d.transitions, transitionField: m ? segmentField(m) : null,
    history: d.history, actions,
  };
}

/** The run's mapping and state, or a 404. */
export async function runHead(cp: ControlPlane, id: number) {
  const { db, schema } = state(cp);
  const r = await runById(db, schema, id);
  if (!r) throw notFound('run', id);
  return r;
}

/** The run's segment transitions (a pass over its items: the dashboard loads them after the page). */
export async function runTransitions(cp: ControlPlane, id: number) {
  const { app, db, schema } = state(cp);
  const r = await runHead(cp, id);
  const m = app.config.mappings.find((x) => x.value.name === r.mapping)?.value;
  const field = m ? segmentField(m) : null;
  return { field, transitions: field ? await segmentTransitions(db, schema, id, field) : [] };
}

export async function runItems(cp: ControlPlane, id: number, q: { op?: 'create' | 'update' | 'remove'; limit?: string; cursor?: string }) {
  const { app, db, schema } = state(cp);
  const afterKey = decodeCursor(q.cursor, 'key') as string | undefined;
  const limit = pageSize(q.limit);
  await ensureState(app);
  if (!(await runById(db, schema, id))) throw notFound('run', id);
  const page = await runItemsPage(db, schema, id, { ...(afterKey === undefined ? {} : { afterKey }), ...(q.op ? { op: q.op } : {}), limit });
  return { items: page.items.map((i) => ({ ...i, ref: sealRef(String(i.key)) })), nextCursor: page.next === null ? null : encodeCursor(page.next) };
}

/** `key` is the record's key, or a sealed reference to it (`ref` of a run item or a timeline: src/pii/refs.ts). */
export async function record(cp: ControlPlane, mapping: string, keyOrRef: string) {
  const key = openRef(keyOrRef) ?? keyOrRef;
  const { app, db, schema } = state(cp);
  const m = findMapping(app, mapping).value;
  await ensureState(app);
  const t = await recordTimeline(db, schema, m.name, key);
  const segments = await customerSegments(db, app.config.settings.models.schema, key).catch(() => null);
  if (!t.delivered && !t.runs.length && !segments?.length) throw notFound('record', key, `no run of ${m.name} planned or sent this key, and the models have no customer with it`);
  return { ...t, ref: sealRef(key), segments };
}

export async function events(cp: ControlPlane, q: { mapping?: string; severity?: string; kind?: string; run?: string; limit?: string; cursor?: string }) {
  const { app, db, schema } = state(cp);
  const severity = allowedList<Severity>('severity', q.severity, SEVERITIES);
  const beforeId = decodeCursor(q.cursor, 'id') as number | undefined;
  const limit = pageSize(q.limit);
  await ensureState(app);
  await knownMapping(cp, q.mapping);
  const page = await eventsPage(db, schema, { ...(q.mapping ? { mapping: q.mapping } : {}), ...(severity ? { severity } : {}), ...(q.kind ? { kind: q.kind } : {}), ...(q.run ? { runId: Number(q.run) } : {}), ...(beforeId ? { beforeId } : {}), limit });
  return { events: page.events, nextCursor: page.next === null ? null : encodeCursor(page.next) };
}

export async function monitors(cp: ControlPlane) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  return { monitors: (await latestMonitorResults(db, schema)).map((r) => ({ ...r, evidence: r.evidence ?? null })) };
}

export async function segments(cp: ControlPlane, q: { mapping?: string; snapshots?: string }) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const models = app.config.settings.models.schema;
  const name = q.mapping ?? app.config.mappings[0]?.value.name;
  if (q.mapping) findMapping(app, q.mapping);
  const n = q.snapshots ? Number(q.snapshots) : 36;
  if (!Number.isInteger(n) || n < 2 || n > 500) throw badRequest('BAD_REQUEST', `snapshots ${q.snapshots} is out of range: 2-500`, { parameter: 'snapshots' });
  const [sizes, flows, changed] = await Promise.all([segmentSizes(db, models, n), segmentFlows(db, models), name ? changedShares(db, schema, name) : Promise.resolve(null)]);
  return { sizes, flows, changed: name && changed ? { mapping: name, runs: changed } : null };
}

/**
 * A held run's approval is refused to the identity that made the run or brought in the config it was planned
 * with (four eyes: src/auth/authenticate.ts mayApprove).
 */
async function notOwnRun(cp: ControlPlane, identity: Identity, runId: number, runActor: string): Promise<void> {
  const { db, schema } = state(cp);
  const at = runActor.indexOf(':');
  const subject = (await approvalSubject(db, schema, runId)) ?? { actor: { type: runActor.slice(0, at) as Actor['type'], id: runActor.slice(at + 1) } };
  const may = mayApprove(identity, subject);
  if (!may.ok) throw new ApiError(403, 'SELF_APPROVAL', `run ${runId} was made by ${runActor}: ${may.reason}`);
}

async function waitingFor(cp: ControlPlane, id: number, identity: Identity, action: 'approve' | 'reject' | 'cancel') {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const r = await runById(db, schema, id);
  if (!r) throw notFound('run', id);
  const allowed = action === 'cancel' ? (CANCELLABLE as readonly string[]) : ['held'];
  if (!allowed.includes(r.status)) {
    // Approved then delivered at once: still a decided run, whatever state its delivery reached by now.
    const decided = r.status === 'approved' || r.status === 'rejected' || (action !== 'cancel' && (await wasDecided(db, schema, id)));
    throw conflict(decided ? 'ALREADY_DECIDED' : 'CONFLICT', `run ${id} of ${r.mapping} is ${r.status}: only a ${allowed.join(' or ')} run can be ${action === 'cancel' ? 'cancelled' : action === 'approve' ? 'approved' : 'rejected'}`, { run: id, status: r.status });
  }
  if (action === 'approve') await notOwnRun(cp, identity, id, r.actor); // rejecting sends nothing: anyone with the permission may
  return r;
}

/** UsageErrors of the shared functions after our checks mean the run moved meanwhile: a conflict. */
function asConflict(err: unknown): never {
  if (err instanceof UsageError) throw conflict('CONFLICT', err.message);
  throw err;
}

export async function approve(cp: ControlPlane, id: number, reason: string, deliver: boolean, identity: Identity) {
  await waitingFor(cp, id, identity, 'approve');
  const app = cp.app();
  const r = await approveRun(app, id, reason, identity.actor).catch(asConflict);
  if (deliver) background(cp, r.mapping, identity);
  return { runId: id, mapping: r.mapping, status: 'approved', by: r.by, delivering: deliver };
}

export async function reject(cp: ControlPlane, id: number, reason: string, identity: Identity) {
  await waitingFor(cp, id, identity, 'reject');
  const r = await rejectRun(cp.app(), id, reason, identity.actor).catch(asConflict);
  return { runId: id, mapping: r.mapping, status: 'rejected', by: r.by, delivering: false };
}

export async function cancel(cp: ControlPlane, id: number, reason: string, identity: Identity) {
  await waitingFor(cp, id, identity, 'cancel');
  const r = await cancelRun(cp.app(), id, reason, identity.actor).catch(asConflict);
  return { runId: id, mapping: r.mapping, status: 'cancelled', by: r.by, delivering: false };
}

/** Runs the mapping in the background (the request does not wait for delivery); resolves with its run id once the run row exists. */
function background(cp: ControlPlane, mapping: string, identity: Identity, beforeId = 0): Promise<number | null> {
  const app = cp.app();
  const done = runMapping(app, mapping, { actor: identity.actor, wait: false, ...(cp.signal ? { signal: cp.signal } : {}), ...(cp.shared ? { shared: cp.shared } : {}) });
  const settled = done.then((s) => s.runId, (err: unknown) => {
    // describeError masks what the database quoted (a name in a cast error is no address maskDeep would see).
    app.log.warn({ mapping, err: describeError(err) }, 'run started through the API failed');
    throw err;
  });
  settled.catch(() => {});
  return Promise.race([settled, newRunId(cp, mapping, beforeId, done)]);
}

async function newRunId(cp: ControlPlane, mapping: string, beforeId: number, done: Promise<unknown>): Promise<number | null> {
  let finished = false;
  done.finally(() => { finished = true; }).catch(() => {});
  const { db, schema } = state(cp);
  for (let i = 0; i < 400 && !finished; i++) {
    const { rows } = await db.query<{ id: string }>(`SELECT max(id) AS id FROM ${schema}.runs WHERE mapping = $1 AND id > $2`, [mapping, beforeId]);
    if (rows[0]?.id) return Number(rows[0].id);
    await new Promise((r) => setTimeout(r, 25));
  }
  return new Promise(() => {}); // the run itself settles the race
}

export async function trigger(cp: ControlPlane, mapping: string, dryRun: boolean, identity: Identity) {
  const { app, db, schema } = state(cp);
  const m = findMapping(app, mapping).value;
  await ensureState(app);
  if (dryRun) {
    const p = await planMapping(app, m.name).catch(planProblem);
    return { dry: true as const, body: { mapping: p.mapping, counts: p.counts, samples: p.detail.samples, transitions: p.detail.transitions, transitionField: p.detail.transitionField, guardrails: p.guardrails } };
  }
  const w = await waitingRun(db, schema, m.name);
  if (w?.status === 'held') throw conflict('RUN_HELD', `run ${w.id} of ${m.name} is held for approval: approve or reject it first`, { run: w.id });
  const { rows } = await db.query<{ id: string | null }>(`SELECT max(id) AS id FROM ${schema}.runs WHERE mapping = $1`, [m.name]);
  const beforeId = Number(rows[0]?.id ?? 0);
  let runId: number | null;
  try {
    runId = await background(cp, m.name, identity, beforeId);
  } catch (err) {
    if (err instanceof LockedError) throw conflict('LOCKED', `${m.name} is running in another process: ${err.message}`);
    // A run that failed before its row was seen answers as one that fails a moment later: 202 with that run
    // (failed, its error kept on it), not a 500 that depends on how fast it failed.
    const made = await db.query<{ id: string | null }>(`SELECT max(id) AS id FROM ${schema}.runs WHERE mapping = $1 AND id > $2`, [m.name, beforeId]);
    if (!made.rows[0]?.id) throw planProblem(err);
    runId = Number(made.rows[0].id);
  }
  const status = runId === null ? 'unknown' : (await runById(db, schema, runId))?.status ?? 'unknown';
  return { dry: false as const, body: { runId: runId ?? 0, mapping: m.name, status, links: runLinks(runId ?? 0) } };
}

/** What prevents a plan (a missing column, duplicate keys) is the caller's data: 422 with the engine's code. */
function planProblem(err: unknown): never {
  if (err instanceof SegsyncError && !(err instanceof ApiError)) throw new ApiError(422, err.code, err.message, err.hint ? { hint: err.hint } : {});
  throw err;
}

export async function receipts(cp: ControlPlane, q: { mapping?: string; key?: string; run?: string; status?: string; limit?: string }) {
  const { app, db, schema } = state(cp);
  const limit = q.limit === undefined ? 100 : pageSize(q.limit);
  await ensureState(app);
  await knownMapping(cp, q.mapping);
  const rows = await findReceipts(db, schema, { ...(q.mapping ? { mapping: q.mapping } : {}), ...(q.key ? { key: q.key } : {}), ...(q.run ? { run: Number(q.run) } : {}), ...(q.status ? { status: q.status } : {}), limit });
  return { receipts: rows.map((r) => ({ ...r, run_id: Number(r.run_id) })) };
}
