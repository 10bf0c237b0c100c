import type pg from 'pg';
import Cursor from 'pg-cursor';
import type { Db } from './transition.ts';

/** SQL of the audit trail (src/audit/ holds the hashing, sealing and verifying). */

export interface PendingAction {
  id: number;
  at: Date;
  actorType: string;
  actorId: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

export interface AuditRow {
  seq: number;
  at: Date;
  actorType: string;
  actorId: string;
  action: string;
  subject: string | null;
  entry: string;
  leafHash: string;
  chainHash: string;
}

export async function insertPending(db: Db, schema: string, a: { actorType: string; actorId: string; action: string; subject: string | null; details: object }): Promise<void> {
  await db.query(`INSERT INTO ${schema}.audit_pending (actor_type, actor_id, action, subject, details) VALUES ($1, $2, $3, $4, $5::jsonb)`,
    [a.actorType, a.actorId, a.action, a.subject, JSON.stringify(a.details)]);
}

/** Locks the chain's head (the one row every appender must hold) and returns it. */
export async function lockHead(client: pg.ClientBase, schema: string): Promise<{ seq: number; chainHash: string }> {
  const { rows } = await client.query<{ seq: string; chain_hash: string }>(`SELECT seq, chain_hash FROM ${schema}.audit_head WHERE singleton FOR UPDATE`);
  return { seq: Number(rows[0]!.seq), chainHash: rows[0]!.chain_hash };
}

/** Takes the committed pending actions (oldest first), removing them; the caller appends them in the same transaction. */
export async function takePending(client: pg.ClientBase, schema: string, limit: number): Promise<PendingAction[]> {
  const { rows } = await client.query<{ id: string; at: Date; actor_type: string; actor_id: string; action: string; subject: string | null; details: Record<string, unknown> }>(
    `DELETE FROM ${schema}.audit_pending WHERE id IN (SELECT id FROM ${schema}.audit_pending ORDER BY id LIMIT $1)
     RETURNING id, at, actor_type, actor_id, action, subject, details`, [limit]);
  return rows.map((r) => ({ id: Number(r.id), at: r.at, actorType: r.actor_type, actorId: r.actor_id, action: r.action, subject: r.subject, details: r.details }))
    .sort((a, b) => a.id - b.id);
}

export async function appendRows(client: pg.ClientBase, schema: string, rows: AuditRow[]): Promise<void> {
  if (!rows.length) return;
  await client.query(
    `INSERT INTO ${schema}.audit (seq, at, actor_type, actor_id, action, subject, entry, leaf_hash, chain_hash)
     SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])`,
    [rows.map((r) => r.seq), rows.map((r) => r.at), rows.map((r) => r.actorType), rows.map((r) => r.actorId), rows.map((r) => r.action),
      rows.map((r) => r.subject), rows.map((r) => r.entry), rows.map((r) => r.leafHash), rows.map((r) => r.chainHash)]);
  const last = rows[rows.length - 1]!;
  await client.query(`UPDATE ${schema}.audit_head SET seq = $1, chain_hash = $2 WHERE singleton`, [last.seq, last.chainHash]);
}

/** The trail in stored order (by seq), a page at a time. */
export async function readTrail(db: Db, schema: string, afterSeq: number, limit: number): Promise<AuditRow[]> {
  const { rows } = await db.query<{ seq: string; at: Date; actor_type: string; actor_id: string; action: string; subject: string | null; entry: string; leaf_hash: string; chain_hash: string }>(
    `SELECT seq, at, actor_type, actor_id, action, subject, entry, leaf_hash, chain_hash FROM ${schema}.audit WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit]);
  return rows.map((r) => ({ seq: Number(r.seq), at: r.at, actorType: r.actor_type, actorId: r.actor_id, action: r.action, subject: r.subject, entry: r.entry, leafHash: r.leaf_hash, chainHash: r.chain_hash }));
}

export async function readHead(db: Db, schema: string): Promise<{ seq: number; chainHash: string }> {
  const { rows } = await db.query<{ seq: string; chain_hash: string }>(`SELECT seq, chain_hash FROM ${schema}.audit_head WHERE singleton`);
  return { seq: Number(rows[0]!.seq), chainHash: rows[0]!.chain_hash };
}

/** What a receipt contributes to its run's Merkle root: no payload, no message (they may quote personal data). */
export interface ReceiptLeaf {
  key: string;
  op: string;
  status: string;
  payloadHash: string | null;
  destinationId: string | null;
  errorCode: string | null;
  attempt: number;
  requestId: string | null;
}

/**
 * A run's receipts in key order, handed over in pages of 10,000: one statement through a cursor, so a run of a
 * million receipts is sorted (or index-scanned) once. Keyset pages of `key > $last ORDER BY key LIMIT n` were
 * planned per page, and on a fresh partition without statistics each page bitmap-scanned and sorted every
 * remaining receipt: quadratic, 150 s to seal a run of 1M (docs/benchmarks.md). The client is not free for
 * other statements until this returns.
 */
export async function eachRunReceiptPage(client: pg.ClientBase, schema: string, runId: number, onPage: (page: ReceiptLeaf[]) => void): Promise<void> {
  const cursor = client.query(new Cursor<ReceiptRow>(
    `SELECT key, op, status, payload_hash, destination_id, error_code, attempt, request_id FROM ${schema}.receipts WHERE run_id = $1 ORDER BY key`, [runId]));
  try {
    for (;;) {
      const rows = await cursor.read(10_000);
      if (!rows.length) return;
      onPage(rows.map((r) => ({ key: r.key, op: r.op, status: r.status, payloadHash: r.payload_hash, destinationId: r.destination_id, errorCode: r.error_code, attempt: r.attempt, requestId: r.request_id })));
    }
  } finally {
    await cursor.close();
  }
}
/** How many receipts a run has. */
export async function countRunReceipts(db: Db, schema: string, runId: number): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.receipts WHERE run_id = $1`, [runId])).rows[0]!.n;
}
type ReceiptRow = { key: string; op: string; status: string; payload_hash: string | null; destination_id: string | null; error_code: string | null; attempt: number; request_id: string | null };

export async function insertCheckpoint(db: Db, schema: string, c: { seq: number; chainHash: string; note: string }): Promise<void> {
  await db.query(`INSERT INTO ${schema}.audit_checkpoints (seq, chain_hash, note) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING`, [c.seq, c.chainHash, c.note]);
}

export async function listCheckpoints(db: Db, schema: string): Promise<Array<{ seq: number; chainHash: string; note: string }>> {
  const { rows } = await db.query<{ seq: string; chain_hash: string; note: string }>(`SELECT seq, chain_hash, note FROM ${schema}.audit_checkpoints ORDER BY seq`);
  return rows.map((r) => ({ seq: Number(r.seq), chainHash: r.chain_hash, note: r.note }));
}

/** Audit rows (newest first), optionally of one action prefix or subject, for `segsync audit log`. */
export async function listAudit(db: Db, schema: string, o: { limit: number; action?: string | undefined; subject?: string | undefined; beforeSeq?: number | undefined }): Promise<AuditRow[]> {
  const { rows } = await db.query<{ seq: string; at: Date; actor_type: string; actor_id: string; action: string; subject: string | null; entry: string; leaf_hash: string; chain_hash: string }>(
    `SELECT seq, at, actor_type, actor_id, action, subject, entry, leaf_hash, chain_hash FROM ${schema}.audit
     WHERE ($2::text IS NULL OR action LIKE $2 || '%') AND ($3::text IS NULL OR subject = $3) AND ($4::bigint IS NULL OR seq < $4) ORDER BY seq DESC LIMIT $1`,
    [o.limit, o.action ?? null, o.subject ?? null, o.beforeSeq ?? null]);
  return rows.map((r) => ({ seq: Number(r.seq), at: r.at, actorType: r.actor_type, actorId: r.actor_id, action: r.action, subject: r.subject, entry: r.entry, leafHash: r.leaf_hash, chainHash: r.chain_hash }));
}
