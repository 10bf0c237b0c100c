import type { App } from '../app.ts';
import { audit } from '../audit/trail.ts';
import { pseudonym } from '../audit/keys.ts';
import { durationMs } from '../daemon/duration.ts';
import { resolveConnection } from '../config/load.ts';
import { withTransaction } from '../db/transaction.ts';
import { describeError, UsageError } from '../errors.ts';
import type { Actor } from '../state/actor.ts';
import { formatActor } from '../state/actor.ts';
import { closeIfDone, deliveredIds, erasureSteps, nullPayloads, openErasures, recordStep, suppress, type StepRow } from '../state/erasure.ts';
import { insertEvent } from '../state/events.ts';
import { ensureState } from '../sync/run.ts';
import { ERASERS } from './erasers.ts';

export interface ForgetReport {
  erasureId: number;
  pseudonym: string;
  done: boolean;
  dueAt: Date;
  nulled: number;
  steps: StepRow[];
}

/**
 * `segsync forget <key>`: first the person is suppressed (the planner never sends them again) and their payloads
 * in the ledger nulled (hashes kept), in one transaction; then each mapping's destination is asked to erase them,
 * and each answer recorded with its request id. Steps that failed stay open: `segsync forget --pending` retries
 * them, and an erasure still open after privacy.erasure_sla raises an `erasure_overdue` event.
 */
export async function forget(app: App, key: string, o: { reason: string; actor: Actor; signal?: AbortSignal }): Promise<ForgetReport> {
  if (!key.trim()) throw new UsageError('forget: give the record key of the person to erase');
  if (!o.reason.trim()) throw new UsageError('forget: --reason is required (it is kept in the audit trail)');
  await ensureState(app);
  const db = app.warehouse.pool;
  const schema = app.config.settings.state.schema;
  const p = pseudonym(key);
  const dueAt = new Date(Date.now() + durationMs(app.config.settings.privacy.erasure_sla));
  const { erasureId, nulled } = await withTransaction(db, async (client) => {
    const erasureId = await suppress(client, schema, { key, pseudonym: p, requestedBy: formatActor(o.actor), reason: o.reason, dueAt });
    const nulled = await nullPayloads(client, schema, key);
    await audit(client, schema, { actor: o.actor, action: 'person.erasure_requested', subject: `erasure:${erasureId}`, details: { key, reason: o.reason, due_at: dueAt.toISOString(), ledger_rows_nulled: nulled } });
    return { erasureId, nulled };
  });
  const steps = await eraseEverywhere(app, key, erasureId, o.signal ?? new AbortController().signal);
  const done = await finish(app, erasureId, key, steps, o.actor, dueAt);
  return { erasureId, pseudonym: p, done, dueAt, nulled, steps };
}

async function eraseEverywhere(app: App, key: string, erasureId: number, signal: AbortSignal, only?: Set<string>): Promise<StepRow[]> {
  const db = app.warehouse.pool;
  const schema = app.config.settings.state.schema;
  const ids = await deliveredIds(db, schema, key);
  const steps: StepRow[] = [];
  for (const m of app.config.mappings) {
    const mapping = m.value;
    if (only && !only.has(mapping.name)) continue;
    const declared = app.config.settings.connections[mapping.destination.connection];
    const type = String(declared?.type ?? 'unknown');
    const eraser = ERASERS[type];
    let step: StepRow;
    let connection: Record<string, unknown> | undefined;
    try {
      connection = declared ? resolveConnection(app.config, mapping.destination.connection) : undefined; // secrets from the environment
    } catch (err) {
      step = { mapping: mapping.name, connection: mapping.destination.connection, type, status: 'failed', requestId: null, detail: describeError(err).slice(0, 500) };
      await recordStep(db, schema, erasureId, step);
      steps.push(step);
      continue;
    }
    if (!connection || !eraser) {
      step = { mapping: mapping.name, connection: mapping.destination.connection, type, status: 'failed', requestId: null, detail: `no erasure for destination type ${type}: erase by hand` };
    } else {
      try {
        const r = await eraser({ key, mapping, connectionName: mapping.destination.connection, connection, destinationId: ids.get(mapping.name) ?? null, erasureId, settings: app.config.settings, signal });
        step = { mapping: mapping.name, connection: mapping.destination.connection, type, ...r };
      } catch (err) {
        step = { mapping: mapping.name, connection: mapping.destination.connection, type, status: 'failed', requestId: null, detail: describeError(err).slice(0, 500) };
      }
    }
    await recordStep(db, schema, erasureId, step);
    steps.push(step);
  }
  return steps;
}

async function finish(app: App, erasureId: number, key: string, steps: StepRow[], actor: Actor, dueAt: Date): Promise<boolean> {
  const db = app.warehouse.pool;
  const schema = app.config.settings.state.schema;
  const done = await closeIfDone(db, schema, erasureId);
  const all = await erasureSteps(db, schema, erasureId);
  const open = all.filter((s) => s.status !== 'done');
  await audit(db, schema, {
    actor, action: done ? 'person.forgotten' : 'person.erasure_attempted', subject: `erasure:${erasureId}`,
    details: { key, steps: steps.map((s) => ({ mapping: s.mapping, type: s.type, status: s.status, request_id: s.requestId, detail: s.detail })) },
  });
  if (!done) {
    await insertEvent(db, schema, {
      kind: 'erasure_pending', severity: 'warning',
      message: `erasure ${erasureId} is not finished in ${open.map((s) => s.mapping).join(', ')}; due by ${dueAt.toISOString()} (segsync forget --pending retries)`,
      details: { erasure_id: erasureId, due_at: dueAt.toISOString(), open: open.map((s) => ({ mapping: s.mapping, detail: s.detail })) },
      dedupKey: `erasure:${erasureId}`,
    });
  }
  return done;
}

/** Retries the open steps of every open erasure; an erasure past its due date raises a critical `erasure_overdue` event. */
export async function retryPending(app: App, actor: Actor, signal = new AbortController().signal): Promise<Array<{ erasureId: number; done: boolean; overdue: boolean }>> {
  await ensureState(app);
  const db = app.warehouse.pool;
  const schema = app.config.settings.state.schema;
  const out: Array<{ erasureId: number; done: boolean; overdue: boolean }> = [];
  for (const e of await openErasures(db, schema)) {
    if (!e.key) continue;
    const failedOnly = e.failedMappings.length ? new Set(e.failedMappings) : undefined;
    const steps = await eraseEverywhere(app, e.key, e.id, signal, failedOnly);
    const done = await finish(app, e.id, e.key, steps, actor, e.dueAt);
    const overdue = !done && e.dueAt.getTime() < Date.now();
    if (overdue) {
      await insertEvent(db, schema, {
        kind: 'erasure_overdue', severity: 'critical',
        message: `erasure ${e.id} is past its due date (${e.dueAt.toISOString()}) and still open in ${e.failedMappings.join(', ')}`,
        details: { erasure_id: e.id, due_at: e.dueAt.toISOString() }, dedupKey: `erasure-overdue:${e.id}`,
      });
    }
    out.push({ erasureId: e.id, done, overdue });
  }
  return out;
}
