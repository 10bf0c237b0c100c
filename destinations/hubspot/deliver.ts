import type { BatchResult, Change, RecordOutcome } from '../types.ts';
import { HubSpotBadRequest } from './api.ts';
import { BudgetExhaustedError, DestinationError } from '../../src/errors.ts';
import { segmentField, type SessionContext } from './context.ts';
import { toHubSpot } from './values.ts';
import { chunk } from '../../src/db/chunk.ts';

/**
 * One deliver() call: upserts (or updates, in mode `update`) by idProperty in batches of at most 100 with
 * keys de-duplicated, removals as clear or archive. Every 207 error comes back with the objectWriteTraceId we
 * set to the record's key, so it lands on exactly that record. Tickets are follow-up work (tickets.ts): the
 * engine applies them after delivery, with their own outcome, so a ticket never fails its contact.
 */

export const MAX_INPUTS = 100;

interface WriteInput { key: string; properties: Record<string, string> }

type Outcomes = Map<string, RecordOutcome>;

/** Error categories of a single record that may pass when sent again. */
const TRANSIENT = /RATE_LIMIT|INTERNAL_ERROR|UNAVAILABLE|TIMEOUT|LOCK/;

interface BatchError { category?: string; message?: string; context?: Record<string, string[]>; errors?: Array<{ code?: string; message?: string; in?: string; context?: Record<string, string[]> }> }

interface BatchData {
  results: Array<{ id: string; _new?: boolean; objectWriteTraceId?: string; properties: Record<string, string | null> }>;
  errors?: BatchError[];
}

function failed(key: string, code: string, message: string, retryable: boolean, requestId?: string): RecordOutcome {
  return { key, status: 'failed', errorCode: code, errorMessage: message, retryable, ...(requestId ? { requestId } : {}) };
}

/**
 * Runs the requests for `keys`. When one fails after an earlier request of this deliver() call was answered,
 * its records take the error (deferred for a spent budget, in_doubt when the request may have been applied,
 * else failed with the error's retryable flag) and the accepted records keep their outcomes. When nothing was
 * answered yet the whole call failed: the error is thrown for the engine to retry the batch.
 */
async function settled(out: Outcomes, keys: string[], send: () => Promise<void>): Promise<void> {
  try {
    await send();
  } catch (err) {
    if (out.size === 0 || !(err instanceof DestinationError)) throw err;
    const base = { errorCode: err.code, errorMessage: err.message, ...(err.requestId ? { requestId: err.requestId } : {}) };
    for (const key of keys) {
      if (out.has(key)) continue;
      if (err instanceof BudgetExhaustedError) out.set(key, { key, status: 'deferred', ...base });
      else if (err.inDoubt) out.set(key, { key, status: 'in_doubt', ...base });
      else out.set(key, { key, status: 'failed', ...base, retryable: err.retryable, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) });
    }
  }
}

/** Property names a whole-batch 400 is about (HubSpot names them in errors[].in / context.propertyName). */
function namedProperties(body: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const e of (body.errors as BatchError['errors']) ?? []) {
    if (e.in) names.add(e.in);
    for (const n of e.context?.propertyName ?? []) names.add(n);
  }
  return names;
}

/**
 * Sends one batch (<= 100). A 400 for the whole batch (HubSpot rejects a batch when one record names an
 * unknown property, for example) is narrowed down: records carrying the named properties fail, the others
 * are sent again; with nothing named, the batch is split in halves until the bad record stands alone.
 */
async function write(ctx: SessionContext, kind: 'upsert' | 'update', inputs: WriteInput[], out: Outcomes, notFoundIsOk: boolean, signal: AbortSignal): Promise<void> {
  if (inputs.length === 0) return;
  const body = { inputs: inputs.map((i) => ({ id: i.key, idProperty: ctx.idProperty, objectWriteTraceId: i.key, properties: i.properties })) };
  let data: BatchData;
  let requestId: string | undefined;
  try {
    const info = kind === 'upsert'
      ? await ctx.api.call(`${ctx.objectType} batch upsert`, (c) => c.crm.objects.batchApi.upsertWithHttpInfo(ctx.objectType, body), signal)
      : await ctx.api.call(`${ctx.objectType} batch update`, (c) => c.crm.objects.batchApi.updateWithHttpInfo(ctx.objectType, body), signal);
    data = info.data as unknown as BatchData;
    requestId = info.headers['x-hubspot-correlation-id'];
  } catch (err) {
    if (!(err instanceof HubSpotBadRequest)) throw err;
    if (inputs.length === 1) {
      out.set(inputs[0]!.key, failed(inputs[0]!.key, 'VALIDATION_ERROR', err.message, false, err.requestId));
      return;
    }
    const named = namedProperties(err.body);
    const guilty = inputs.filter((i) => Object.keys(i.properties).some((p) => named.has(p)));
    if (guilty.length > 0) {
      for (const i of guilty) out.set(i.key, failed(i.key, 'PROPERTY_DOESNT_EXIST', err.message, false, err.requestId));
      await write(ctx, kind, inputs.filter((i) => !guilty.includes(i)), out, notFoundIsOk, signal);
      return;
    }
    const half = Math.ceil(inputs.length / 2);
    await write(ctx, kind, inputs.slice(0, half), out, notFoundIsOk, signal);
    await write(ctx, kind, inputs.slice(half), out, notFoundIsOk, signal);
    return;
  }
  const sent = new Set(inputs.map((i) => i.key));
  for (const r of data.results ?? []) {
    const key = r.objectWriteTraceId ?? r.properties[ctx.idProperty] ?? undefined;
    if (key === undefined || key === null || !sent.has(key)) continue;
    out.set(key, { key, status: 'delivered', destinationId: r.id, created: r._new === true, ...(requestId ? { requestId } : {}) });
  }
  for (const e of data.errors ?? []) {
    const detail = (e.errors ?? []).map((d) => `${d.in ? `${d.in}: ` : ''}${d.message ?? d.code}`).join('; ') || e.message || 'rejected';
    const code = e.errors?.[0]?.code ?? e.category ?? 'ERROR';
    const keys = e.context?.objectWriteTraceId ?? (e.category === 'OBJECT_NOT_FOUND' ? e.context?.ids : undefined) ?? [];
    for (const key of keys) {
      if (!sent.has(key)) continue;
      if (e.category === 'OBJECT_NOT_FOUND') {
        out.set(key, notFoundIsOk ? { key, status: 'delivered', destinationId: null } : failed(key, 'NOT_IN_HUBSPOT', `mode update: HubSpot has no ${ctx.objectType} with this ${ctx.idProperty}`, false));
      } else {
        // Validation errors (and conflicts) are about the record's values: sending it again cannot help.
        out.set(key, failed(key, code, detail, TRANSIENT.test(e.category ?? ''), requestId));
      }
    }
  }
  for (const i of inputs) {
    if (!out.has(i.key)) out.set(i.key, failed(i.key, 'NO_RESULT', 'HubSpot answered without a result or error for this record', true));
  }
}

function upsertProperties(ctx: SessionContext, c: Change, today: string, seg: string | undefined): Record<string, string> {
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.after ?? {})) props[k] = toHubSpot(v);
  props[ctx.idProperty] = c.key;
  if (ctx.options.since_property && seg !== undefined && c.after && seg in c.after && (c.before === null || c.before[seg] !== c.after[seg])) {
    props[ctx.options.since_property] = today;
  }
  if (ctx.options.run_property) props[ctx.options.run_property] = ctx.runStamp;
  return props;
}

/** HubSpot ids of records by key: from the ledger when known, else one batch read by idProperty. */
async function hubspotIds(ctx: SessionContext, changes: Change[], signal: AbortSignal): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const unknown = changes.filter((c) => c.destinationId === null).map((c) => c.key);
  for (const c of changes) if (c.destinationId !== null) ids.set(c.key, c.destinationId);
  for (const part of chunk(unknown, MAX_INPUTS)) {
    const info = await ctx.api.call(`${ctx.objectType} batch read`, (cl) => cl.crm.objects.batchApi.readWithHttpInfo(ctx.objectType, { idProperty: ctx.idProperty, inputs: part.map((id) => ({ id })), properties: [ctx.idProperty], propertiesWithHistory: [] }), signal);
    for (const r of (info.data as unknown as BatchData).results ?? []) {
      const key = r.properties[ctx.idProperty];
      if (key) ids.set(key, r.id);
    }
  }
  return ids;
}

async function removeAll(ctx: SessionContext, removes: Change[], out: Outcomes, signal: AbortSignal): Promise<void> {
  if (removes.length === 0) return;
  if (ctx.mapping.on_removed === 'delete') {
    const ids = await hubspotIds(ctx, removes, signal);
    for (const part of chunk(removes.filter((c) => ids.has(c.key)), MAX_INPUTS)) {
      await ctx.api.call(`${ctx.objectType} batch archive`, (cl) => cl.crm.objects.batchApi.archiveWithHttpInfo(ctx.objectType, { inputs: part.map((c) => ({ id: ids.get(c.key)! })) }), signal);
    }
    // Archived now, or already gone from HubSpot: either way the record is not there any more.
    for (const c of removes) out.set(c.key, { key: c.key, status: 'delivered', destinationId: ids.get(c.key) ?? c.destinationId });
    return;
  }
  // clear (also what mode mirror does without on_removed: delete): empty the mapped properties. Batch update,
  // not upsert, so a record deleted in HubSpot meanwhile is not re-created just to be emptied.
  const inputs = removes.map((c) => {
    const properties: Record<string, string> = {};
    for (const k of Object.keys(c.before ?? {})) if (k !== ctx.idProperty) properties[k] = '';
    for (const f of ctx.mapping.fields) if (f.to !== ctx.idProperty) properties[f.to] = '';
    if (ctx.options.run_property) properties[ctx.options.run_property] = ctx.runStamp;
    return { key: c.key, properties };
  });
  for (const part of chunk(inputs, MAX_INPUTS)) await write(ctx, 'update', part, out, true, signal);
}

export async function deliver(ctx: SessionContext, changes: Change[], signal: AbortSignal): Promise<BatchResult> {
  // The last change of a key wins; HubSpot answers 400 to a batch that names one id twice.
  const latest = new Map<string, Change>();
  for (const c of changes) latest.set(c.key, c);
  const unique = [...latest.values()];
  const out: Outcomes = new Map();
  const today = new Date().toISOString().slice(0, 10);
  const writes = unique.filter((c) => c.op !== 'remove' && c.after !== null);
  const kind = ctx.mapping.mode === 'update' ? 'update' : 'upsert';
  // Once per batch, not per record: which mapped property carries the segment.
  const seg = segmentField(ctx)?.to;
  for (const part of chunk(writes, MAX_INPUTS)) {
    await settled(out, part.map((c) => c.key), () => write(ctx, kind, part.map((c) => ({ key: c.key, properties: upsertProperties(ctx, c, today, seg) })), out, false, signal));
  }
  const removes = unique.filter((c) => c.op === 'remove' || c.after === null);
  await settled(out, removes.map((c) => c.key), () => removeAll(ctx, removes, out, signal));
  return { outcomes: changes.map((c) => ({ ...out.get(c.key)!, key: c.key })) };
}
