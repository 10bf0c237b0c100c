import pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import { maskEmails } from '../pii/mask.ts';
import type { Actor } from '../state/actor.ts';
import { appendRows, countRunReceipts, eachRunReceiptPage, insertPending, lockHead, takePending, type AuditRow, type PendingAction, type ReceiptLeaf } from '../state/audit.ts';
import { FINAL_STATES } from '../state/machine.ts';
import type { Db } from '../state/transition.ts';
import { canonical, chainHash, leafHash, MerkleBuilder, payloadDigest } from './hash.ts';
import { pseudonym, pseudonymizer } from './keys.ts';
import { receiptLeafTextWith, receiptLeafWith } from './receipt-leaf.ts';

/** What happened, as a caller tells the trail (docs/security.md lists the actions segsync records). */
export interface AuditInput {
  actor: Actor;
  /** Dotted verb, e.g. `run.approved`, `config.reloaded`, `token.created`, `pii.viewed`, `person.forgotten`. */
  action: string;
  /** What it was done to: `run:42`, `mapping:hubspot_contacts`, `token:ssk_ab12`. A person's key goes in `details.key`. */
  subject?: string | null;
  /**
   * Anything else. Before it is stored: `key`/`keys`/`user_id` values become keyed pseudonyms; `payload`,
   * `before`, `after`, `record`, `properties`, `traits` become hashes; secrets are blanked; e-mail addresses
   * inside any other text are masked. So nothing in the trail has to change when a person is erased.
   */
  details?: Record<string, unknown>;
}

const KEY_FIELDS = /^(key|keys|user_?id|person|external_?id)$/i;
const PAYLOAD_FIELDS = /^(payload|before|after|record|records|properties|traits|values)$/i;
const SECRET_FIELDS = /^(password|token|access_?token|refresh_?token|client_?secret|write_?key|secret|authorization|private_?key|api_?key|connection_?string)$/i;

/** Details as the trail keeps them (see AuditInput.details). Idempotent on what it produced. */
export function sanitizeDetails(value: unknown, field = '', depth = 0): unknown {
  if (depth > 10) return '[…]';
  if (SECRET_FIELDS.test(field) && value != null) return '[redacted]';
  if (PAYLOAD_FIELDS.test(field) && value != null) return typeof value === 'string' && value.startsWith('sha256:') ? value : payloadDigest(value);
  if (KEY_FIELDS.test(field)) {
    const p = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? (String(v).startsWith('p_') ? String(v) : pseudonym(String(v))) : sanitizeDetails(v, '', depth + 1));
    return Array.isArray(value) ? value.map(p) : p(value);
  }
  if (typeof value === 'string') return maskEmails(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => sanitizeDetails(v, '', depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = sanitizeDetails(v, k, depth + 1);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return String(value);
  return value ?? null;
}

function isPool(db: Db): db is pg.Pool {
  return db instanceof pg.Pool || (typeof (db as pg.Pool).connect === 'function' && 'totalCount' in db);
}

/**
 * Records an action in the audit trail and seals it into the hash chain. Pass the client of your transaction
 * to make the record part of it (it then waits for the chain's head lock until you commit); pass a pool to
 * record it at once on its own.
 */
export async function audit(db: Db, schema: string, input: AuditInput): Promise<void> {
  const row = { actorType: input.actor.type, actorId: input.actor.id, action: input.action, subject: input.subject ?? null, details: input.details ?? {} };
  if (isPool(db)) {
    await withTransaction(db, async (client) => {
      await insertPending(client, schema, row);
      await sealWith(client, schema);
    });
  } else {
    await insertPending(db, schema, row);
    await sealWith(db as pg.ClientBase, schema);
  }
}

/** Moves every committed pending action into the chain (one sealer at a time: the head row is locked). */
export async function sealAudit(db: Db, schema: string): Promise<number> {
  if (isPool(db)) return withTransaction(db, (client) => sealWith(client, schema));
  return sealWith(db as pg.ClientBase, schema);
}

const FINAL_ACTIONS = new Set<string>(FINAL_STATES.map((s) => `run.${s}`));

async function sealWith(client: pg.ClientBase, schema: string): Promise<number> {
  let head = await lockHead(client, schema);
  let sealed = 0;
  for (;;) {
    const pending = await takePending(client, schema, 500);
    if (!pending.length) return sealed;
    const rows: AuditRow[] = [];
    for (const p of pending) {
      const row = await buildRow(client, schema, p, head.seq + 1, head.chainHash);
      rows.push(row);
      head = { seq: row.seq, chainHash: row.chainHash };
    }
    await appendRows(client, schema, rows);
    sealed += rows.length;
  }
}

/** The leaf of a run's receipt under the configured pseudonym key (receipt-leaf.ts). */
export function receiptLeaf(r: ReceiptLeaf): string {
  return receiptLeafWith(r, pseudonym);
}

/** The leaf's RFC 8785 text under the configured pseudonym key (receipt-leaf.ts). */
export function receiptLeafText(r: ReceiptLeaf): string {
  return receiptLeafTextWith(r, pseudonym);
}

export async function receiptsRoot(db: Db, schema: string, runId: number): Promise<{ count: number; root: string }> {
  const tree = new MerkleBuilder();
  const pseudonymOf = pseudonymizer();
  const add = (page: ReceiptLeaf[]) => {
    for (const r of page) tree.add(receiptLeafWith(r, pseudonymOf));
  };
  if (isPool(db)) {
    const client = await db.connect();
    try {
      await eachRunReceiptPage(client, schema, runId, add);
    } finally {
      client.release();
    }
  } else {
    await eachRunReceiptPage(db as pg.ClientBase, schema, runId, add);
  }
  return { count: tree.count, root: tree.root() };
}

/**
 * The root to seal for a finished run: the one the run built while it recorded its receipts
 * (receipts-tree.ts) when the table holds exactly that many receipts for the run, else recomputed from the
 * table. Either way a later `audit verify` recomputes it from the table.
 */
async function sealedRoot(client: pg.ClientBase, schema: string, runId: number, offered: unknown): Promise<{ count: number; root: string }> {
  const o = offered as { count?: unknown; root?: unknown } | undefined;
  if (o && typeof o.count === 'number' && typeof o.root === 'string' && /^[0-9a-f]{64}$/.test(o.root)) {
    if (await countRunReceipts(client, schema, runId) === o.count) return { count: o.count, root: o.root };
  }
  return receiptsRoot(client, schema, runId);
}

export interface Entry {
  v: 1;
  seq: number;
  at: string;
  prev: string;
  actor: { type: string; id: string };
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

async function buildRow(client: pg.ClientBase, schema: string, p: PendingAction, seq: number, prev: string): Promise<AuditRow> {
  const details = sanitizeDetails(p.details) as Record<string, unknown>;
  // A finished run seals the Merkle root of its receipts into the chain: a receipt changed later shows.
  const runId = p.subject?.startsWith('run:') ? Number(p.subject.slice(4)) : NaN;
  if (FINAL_ACTIONS.has(p.action) && Number.isSafeInteger(runId)) details.receipts = await sealedRoot(client, schema, runId, details.receipts);
  const subject = p.subject == null ? null : maskEmails(p.subject);
  const entry: Entry = { v: 1, seq, at: p.at.toISOString(), prev, actor: { type: p.actorType, id: p.actorId }, action: p.action, subject, details };
  const text = canonical(entry);
  const leaf = leafHash(text);
  return { seq, at: p.at, actorType: p.actorType, actorId: p.actorId, action: p.action, subject, entry: text, leafHash: leaf, chainHash: chainHash(prev, leaf) };
}
