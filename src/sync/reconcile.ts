import { chunk } from '../db/chunk.ts';
import type { App } from '../app.ts';
import type { ReadBackResult, ReconcileStatus } from '../../destinations/types.ts';
import { deliveredPages, sampleDelivered, type DeliveredRow } from '../state/delivered-pages.ts';
import { acquireRunLock } from '../state/locks.ts';
import { recordVerdicts } from '../state/record-verdicts.ts';
import { getMapping } from './connect.ts';
import { ensureState, openChecked } from './run.ts';
import { withRetries } from './retry.ts';

export interface ReconcileSummary {
  mapping: string;
  checked: number;
  counts: Record<ReconcileStatus, number>;
  /** Records queued for the next run (with --repair). */
  repaired: number;
  examples: Array<{ key: string; status: ReconcileStatus; driftedFields?: string[] }>;
}

export interface ReconcileOptions {
  /** Check a random sample of this many delivered records (default 100); ignored with `all`. */
  sample?: number;
  all?: boolean;
  /** Queue drifted and missing records so the next run delivers them again. */
  repair?: boolean;
  shared?: Map<string, unknown>;
  signal?: AbortSignal;
}

/**
 * The delivered records to read back, a chunk at a time: with `all`, keyset pages in key order, so memory
 * stays flat however large the mapping; otherwise one random sample of the requested size.
 */
async function* delivered(app: App, mapping: string, size: number, opts: ReconcileOptions): AsyncGenerator<DeliveredRow[]> {
  const schema = app.config.settings.state.schema;
  if (opts.all) yield* deliveredPages(app.warehouse.pool, schema, mapping, size);
  else yield* chunk(await sampleDelivered(app.warehouse.pool, schema, mapping, opts.sample ?? 100), size);
}

/**
 * Read-back: asks the destination what it holds for records the ledger says were delivered, and stores a
 * verdict per record: verified, drifted (edited in the destination since), missing, or unverifiable (a CDP
 * cannot be read). Holds the mapping's run lock so a run cannot move the state underneath.
 */
export async function reconcileMapping(app: App, name: string, opts: ReconcileOptions = {}): Promise<ReconcileSummary> {
  const file = getMapping(app.config, name);
  const mapping = file.value;
  const schema = app.config.settings.state.schema;
  const pool = app.warehouse.pool;
  const lock = await acquireRunLock(app.warehouse, mapping.name, { wait: true, waitTimeoutMs: 60_000 });
  const summary: ReconcileSummary = { mapping: mapping.name, checked: 0, counts: { verified: 0, drifted: 0, missing: 0, unverifiable: 0 }, repaired: 0, examples: [] };
  try {
    await ensureState(app);
    const signal = opts.signal ?? new AbortController().signal;
    const dest = await openChecked(app, name, { shared: opts.shared ?? new Map(), signal, check: false, state: true });
    const retry = { signal, log: app.log.child({ mapping: mapping.name }), what: 'read-back' };
    try {
      const size = dest.session.limits.readBackBatchSize;
      for await (const chunk of delivered(app, mapping.name, size, opts)) {
        if (opts.signal?.aborted) break;
        // Transient errors retried under the engine's policy, like delivery (connectors never retry).
        const results = await withRetries(() => dest.session.readBack(chunk.map((r) => ({ key: r.key, expected: r.payload, destinationId: r.destination_id })), signal), retry);
        const byKey = new Map(results.map((r) => [r.key, r]));
        const verdicts: ReadBackResult[] = chunk.map((r) => byKey.get(r.key) ?? { key: r.key, status: 'missing' as const, detail: 'no read-back result' });
        summary.repaired += await recordVerdicts(pool, schema, mapping.name, verdicts, opts.repair ?? false);
        for (const v of verdicts) {
          summary.counts[v.status]++;
          if (v.status !== 'verified' && summary.examples.length < 10) summary.examples.push({ key: v.key, status: v.status, ...('driftedFields' in v && v.driftedFields ? { driftedFields: v.driftedFields } : {}) });
        }
        summary.checked += chunk.length;
      }
    } finally {
      await dest.session.close().catch(() => {});
    }
  } finally {
    await lock.release();
  }
  return summary;
}
