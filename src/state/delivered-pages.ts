import type { Payload } from '../../destinations/types.ts';
import type { Db } from './transition.ts';

export type DeliveredRow = { key: string; payload: Payload; payload_hash: string; destination_id: string | null };

const COLUMNS = 'key, payload, payload_hash, destination_id';

/** A random sample of the mapping's delivered (not removed) records. */
export async function sampleDelivered(db: Db, schema: string, mapping: string, n: number): Promise<DeliveredRow[]> {
  return (await db.query<DeliveredRow>(
    `SELECT ${COLUMNS} FROM ${schema}.delivered WHERE mapping = $1 AND payload_hash IS NOT NULL ORDER BY random() LIMIT $2`, [mapping, n])).rows;
}

/** The mapping's delivered records in keyset pages of `size`, in key order, so memory stays flat. */
export async function* deliveredPages(db: Db, schema: string, mapping: string, size: number): AsyncGenerator<DeliveredRow[]> {
  let last: string | null = null;
  for (;;) {
    const { rows }: { rows: DeliveredRow[] } = await db.query<DeliveredRow>(
      `SELECT ${COLUMNS} FROM ${schema}.delivered WHERE mapping = $1 AND payload_hash IS NOT NULL AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`,
      [mapping, last, size]);
    if (!rows.length) return;
    last = rows[rows.length - 1]!.key;
    yield rows;
  }
}

/** Delivered records by their destination ids (follow-up sweeps: which contacts have changed tickets). */
export async function deliveredByDestinationId(db: Db, schema: string, mapping: string, ids: string[]): Promise<Array<DeliveredRow & { destination_id: string }>> {
  if (!ids.length) return [];
  return (await db.query<DeliveredRow & { destination_id: string }>(
    `SELECT d.key, d.payload, d.payload_hash, d.destination_id FROM ${schema}.delivered d JOIN (SELECT DISTINCT unnest($2::text[]) AS id) u ON u.id = d.destination_id
     WHERE d.mapping = $1 AND d.payload_hash IS NOT NULL AND d.removed_at IS NULL ORDER BY d.key`,
    [mapping, ids])).rows;
}
