import type pg from 'pg';
import type { Db } from './transition.ts';

/** SQL of erasure: the suppression list, erasure requests and their steps, and nulling a person's payloads. */

export async function suppress(client: pg.ClientBase, schema: string, o: { key: string; pseudonym: string; requestedBy: string; reason: string; dueAt: Date }): Promise<number> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO ${schema}.erasures (pseudonym, requested_by, reason, status, due_at) VALUES ($1, $2, $3, 'open', $4) RETURNING id`,
    [o.pseudonym, o.requestedBy, o.reason, o.dueAt]);
  const id = Number(rows[0]!.id);
  await client.query(`INSERT INTO ${schema}.suppressions (key, pseudonym, erasure_id) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET erasure_id = EXCLUDED.erasure_id`, [o.key, o.pseudonym, id]);
  return id;
}

/** Where the person was delivered, per mapping (their destination id, when a destination gave one). */
export async function deliveredIds(db: Db, schema: string, key: string): Promise<Map<string, string | null>> {
  const { rows } = await db.query<{ mapping: string; destination_id: string | null }>(`SELECT mapping, destination_id FROM ${schema}.delivered WHERE key = $1`, [key]);
  return new Map(rows.map((r) => [r.mapping, r.destination_id]));
}

/** Nulls every payload and message the ledger holds about the key; hashes, ids and statuses stay. */
export async function nullPayloads(client: pg.ClientBase, schema: string, key: string): Promise<number> {
  let n = 0;
  for (const sql of [
    `UPDATE ${schema}.delivered SET payload = NULL, last_error = NULL WHERE key = $1 AND (payload IS NOT NULL OR last_error IS NOT NULL)`,
    `UPDATE ${schema}.run_items SET after = NULL, before = NULL WHERE key = $1 AND (after IS NOT NULL OR before IS NOT NULL)`,
    `UPDATE ${schema}.receipts SET error_message = NULL WHERE key = $1 AND error_message IS NOT NULL`,
    `UPDATE ${schema}.reconciliations SET actual = NULL, detail = NULL WHERE key = $1 AND (actual IS NOT NULL OR detail IS NOT NULL)`,
  ]) n += (await client.query(sql, [key])).rowCount ?? 0;
  return n;
}

export interface StepRow {
  mapping: string;
  connection: string;
  type: string;
  status: 'done' | 'failed';
  requestId: string | null;
  detail: string | null;
}

export async function recordStep(db: Db, schema: string, erasureId: number, s: StepRow): Promise<void> {
  await db.query(
    `INSERT INTO ${schema}.erasure_steps (erasure_id, mapping, connection, type, status, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (erasure_id, mapping) DO UPDATE SET status = EXCLUDED.status, request_id = EXCLUDED.request_id, detail = EXCLUDED.detail,
       attempts = ${schema}.erasure_steps.attempts + 1, at = now()`,
    [erasureId, s.mapping, s.connection, s.type, s.status, s.requestId, s.detail]);
}

export async function closeIfDone(db: Db, schema: string, erasureId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ${schema}.erasures e SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'open'
       AND NOT EXISTS (SELECT 1 FROM ${schema}.erasure_steps s WHERE s.erasure_id = e.id AND s.status <> 'done')`, [erasureId]);
  return (rowCount ?? 0) > 0;
}

export interface OpenErasure {
  id: number;
  pseudonym: string;
  key: string | null;
  dueAt: Date;
  failedMappings: string[];
}

export async function openErasures(db: Db, schema: string): Promise<OpenErasure[]> {
  const { rows } = await db.query<{ id: string; pseudonym: string; key: string | null; due_at: Date; failed: string[] }>(
    `SELECT e.id, e.pseudonym, s.key, e.due_at, coalesce(array_agg(st.mapping) FILTER (WHERE st.status = 'failed'), '{}') AS failed
     FROM ${schema}.erasures e LEFT JOIN ${schema}.suppressions s ON s.erasure_id = e.id
     LEFT JOIN ${schema}.erasure_steps st ON st.erasure_id = e.id
     WHERE e.status = 'open' GROUP BY e.id, s.key ORDER BY e.id`);
  return rows.map((r) => ({ id: Number(r.id), pseudonym: r.pseudonym, key: r.key, dueAt: r.due_at, failedMappings: r.failed }));
}

export async function erasureSteps(db: Db, schema: string, erasureId: number): Promise<StepRow[]> {
  const { rows } = await db.query<{ mapping: string; connection: string; type: string; status: 'done' | 'failed'; request_id: string | null; detail: string | null }>(
    `SELECT mapping, connection, type, status, request_id, detail FROM ${schema}.erasure_steps WHERE erasure_id = $1 ORDER BY mapping`, [erasureId]);
  return rows.map((r) => ({ mapping: r.mapping, connection: r.connection, type: r.type, status: r.status, requestId: r.request_id, detail: r.detail }));
}
