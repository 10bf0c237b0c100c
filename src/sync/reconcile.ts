import type { Pool } from 'pg';
import { chunk } from '../db/chunk.ts';
import type { App } from '../app.ts';
import type { Payload, ReconcileStatus } from '../../destinations/types.ts';
import { withTransaction } from '../db/transaction.ts';
import { acquireRunLock } from '../state/locks.ts';
import { getMapping, openDestination } from './connect.ts';
import { ensureState } from './engine.ts';

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

type DeliveredRow = { key: string; payload: Payload; payload_hash: string; destination_id: string | null };

/**
 * The delivered records to read back, a chunk at a time: with `all`, keyset pages in key order, so memory
 * stays flat however large the mapping; otherwise one random sample of the requested size.
 */
async function* delivered(pool: Pool, schema: string, mapping: string, size: number, opts: ReconcileOptions): AsyncGenerator<DeliveredRow[]> {
  const columns = `key, payload, payload_hash, destination_id FROM ${schema}.delivered WHERE mapping = $1 AND payload_hash IS NOT NULL`;
  if (!opts.all) {
    const { rows } = await pool.query<DeliveredRow>(`SELECT ${columns} ORDER BY random() LIMIT $2`, [mapping, opts.sample ?? 100]);
    yield* chunk(rows, size);
    return;
  }
  let last: string | null = null;
  for (;;) {
    const { rows }: { rows: DeliveredRow[] } = await pool.query<DeliveredRow>(
      `SELECT ${columns} AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`, [mapping, last, size]);
    if (!rows.length) return;
    last = rows[rows.length - 1]!.key;
    yield rows;
  }
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
    const dest = await openDestination(app.config, file, { log: app.log, shared: opts.shared ?? new Map(), state: { db: pool, schema } });
    try {
      const size = dest.session.limits.readBackBatchSize;
      for await (const chunk of delivered(pool, schema, mapping.name, size, opts)) {
        if (opts.signal?.aborted) break;
        const results = await dest.session.readBack(chunk.map((r) => ({ key: r.key, expected: r.payload, destinationId: r.destination_id })), opts.signal ?? new AbortController().signal);
        const byKey = new Map(results.map((r) => [r.key, r]));
        const verdicts = chunk.map((r) => byKey.get(r.key) ?? { key: r.key, status: 'missing' as const, detail: 'no read-back result' });
        await withTransaction(pool, async (client) => {
          await client.query(
            `INSERT INTO ${schema}.reconciliations (mapping, key, status, expected_hash, drifted_fields, actual, detail)
             SELECT $1, u.key, u.status, d.payload_hash, CASE WHEN u.fields = '' THEN NULL ELSE string_to_array(u.fields, ',') END, u.actual::jsonb, u.detail
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(key, status, fields, actual, detail)
             JOIN ${schema}.delivered d ON d.mapping = $1 AND d.key = u.key`,
            [mapping.name, verdicts.map((v) => v.key), verdicts.map((v) => v.status), verdicts.map((v) => ('driftedFields' in v ? v.driftedFields ?? [] : []).join(',')),
              verdicts.map((v) => ('actual' in v && v.actual ? JSON.stringify(v.actual) : null)), verdicts.map((v) => v.detail ?? null)]);
          await client.query(
            `UPDATE ${schema}.delivered d SET reconcile_status = u.status, reconciled_at = now()
             FROM unnest($2::text[], $3::text[]) AS u(key, status) WHERE d.mapping = $1 AND d.key = u.key`,
            [mapping.name, verdicts.map((v) => v.key), verdicts.map((v) => v.status)]);
          if (opts.repair) {
            // Forget the confirmation of what is not there as delivered: the next run's diff plans it again
            // (missing -> create, drifted -> update with the model's current values).
            const { rowCount } = await client.query(
              `UPDATE ${schema}.delivered d SET payload_hash = CASE WHEN u.status = 'missing' THEN NULL ELSE 'repair:' || d.payload_hash END,
                 payload = CASE WHEN u.status = 'missing' THEN NULL ELSE d.payload END
               FROM unnest($2::text[], $3::text[]) AS u(key, status) WHERE d.mapping = $1 AND d.key = u.key AND u.status IN ('drifted', 'missing')`,
              [mapping.name, verdicts.map((v) => v.key), verdicts.map((v) => v.status)]);
            summary.repaired += rowCount ?? 0;
          }
        });
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
