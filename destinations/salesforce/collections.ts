import { BudgetExhaustedError, type DestinationError } from '../../src/errors.ts';
import type { Payload, RecordOutcome } from '../types.ts';
import { classify, type SfApi } from './api.ts';
import { chunk } from '../../src/db/chunk.ts';

/**
 * Upserts by external ID through sObject Collections: 200 records a call, allOrNone false, a bounded number
 * of calls in flight, each call sent once. Each call's records are reported by that call's answer: per
 * record from the results (UNABLE_TO_LOCK_ROW failed and retryable, for the engine to resend), or all alike
 * when the call failed as a whole (failed, or in_doubt when it may have reached the org); once the budget is
 * spent the records not yet sent are deferred.
 */

export const COLLECTIONS_MAX = 200;

export interface SendItem {
  key: string;
  values: Payload;
}

interface SaveResult {
  id?: string | null;
  success: boolean;
  created?: boolean;
  errors?: Array<{ statusCode?: string; errorCode?: string; message?: string; fields?: string[] }>;
}

export interface CollectionsOptions {
  concurrency: number;
  signal: AbortSignal;
}

export function saveOutcome(key: string, r: SaveResult | undefined): RecordOutcome {
  if (!r) return { key, status: 'failed', errorCode: 'NO_RESULT', errorMessage: 'Salesforce returned no result for this record', retryable: true };
  if (r.success) return { key, status: 'delivered', destinationId: r.id ?? null, created: r.created === true };
  const e = r.errors?.[0];
  const code = e?.statusCode ?? e?.errorCode ?? 'UNKNOWN';
  const fields = e?.fields?.length ? ` [${e.fields.join(', ')}]` : '';
  return { key, status: 'failed', errorCode: code, errorMessage: `${e?.message ?? code}${fields}`, retryable: code === 'UNABLE_TO_LOCK_ROW' };
}

/** Runs `fn` over `items` with at most `limit` in flight, stopping new starts once `stop()` says so. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The outcome of a record whose call failed as a whole (classified by SfApi). */
export function callFailure(key: string, e: DestinationError): RecordOutcome {
  if (e instanceof BudgetExhaustedError) return { key, status: 'deferred', errorCode: e.code, errorMessage: e.message };
  return { key, status: e.inDoubt ? 'in_doubt' : 'failed', errorCode: e.code, errorMessage: e.message, retryable: e.retryable };
}

export async function upsertViaCollections(api: SfApi, object: string, matchKey: string, items: SendItem[], opts: CollectionsOptions): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  await pool(chunk(items, COLLECTIONS_MAX), opts.concurrency, async (part) => {
    if (opts.signal.aborted || api.budget.exhausted) {
      for (const it of part) outcomes.set(it.key, { key: it.key, status: 'deferred', errorCode: api.budget.exhausted ? 'BUDGET' : 'ABORTED' });
      return;
    }
    const records = part.map((it) => ({ attributes: { type: object }, ...it.values, [matchKey]: it.key }));
    try {
      const results = await api.once(`upsert ${part.length} ${object} by ${matchKey}`,
        () => api.conn.sobject(object).upsert(records, matchKey, { allOrNone: false }) as unknown as Promise<SaveResult[]>);
      part.forEach((it, i) => outcomes.set(it.key, saveOutcome(it.key, results[i])));
    } catch (err) {
      const e = classify(err, `upsert ${object}`);
      for (const it of part) outcomes.set(it.key, callFailure(it.key, e));
    }
  });
  return outcomes;
}
