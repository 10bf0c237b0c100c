import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Warehouse } from '../src/db/warehouse.ts';
import { openCheckpoint, signCheckpoint } from '../src/audit/checkpoint.ts';
import { getSigningKey } from '../src/audit/keys.ts';
import { audit, sealAudit } from '../src/audit/trail.ts';
import { verifyTrail } from '../src/audit/verify.ts';
import { cliActor, systemActor } from '../src/state/actor.ts';
import { insertCheckpoint, readHead } from '../src/state/audit.ts';
import { createRun } from '../src/state/create-run.ts';
import { migrate } from '../src/state/migrate.ts';
import { transition } from '../src/state/transition.ts';
import { useFreshWarehouse } from './helpers/pg.ts';

/** The audit trail against real PostgreSQL: appends, the append-only trigger, and every kind of tampering named. */
describe('audit trail', () => {
  let warehouse: Warehouse;
  let keyDir: string;
  let n = 0;
  before(async () => {
    keyDir = await mkdtemp(path.join(tmpdir(), 'segsync-audit-keys-'));
    process.env.SEGSYNC_AUDIT_KEY_DIR = keyDir;
    process.env.SEGSYNC_PSEUDONYM_KEY = 'test-pseudonym-key-0123456789';
  });
  after(() => rm(keyDir, { recursive: true, force: true }));
  useFreshWarehouse('postgres', (w) => { warehouse = w; });

  /** A schema with a trail of 8+ rows: a run triggered, planned, delivered with receipts, and a few actions. */
  async function trail(): Promise<string> {
    const schema = `audit_t${++n}`;
    const pool = warehouse.pool;
    await migrate(pool, schema);
    const actor = cliActor();
    const runId = await createRun(pool, schema, { mapping: 'contacts', actor, configHash: 'h', destination: 'hubspot', status: 'planning' });
    await transition(pool, schema, { run: runId }, 'planned', systemActor, null);
    await audit(pool, schema, { actor, action: 'config.loaded', subject: 'config', details: { diff: ['+ mappings/contacts.yaml'], token: 'pat-na1-secret' } });
    await transition(pool, schema, { run: runId }, 'delivering', systemActor, null);
    await pool.query(`INSERT INTO ${schema}.receipts (run_id, mapping, key, op, status, payload_hash, destination_id, attempt) VALUES
      ($1, 'contacts', 'alice@example.com', 'create', 'delivered', 'h1', '101', 1), ($1, 'contacts', 'bob@example.com', 'create', 'delivered', 'h2', '102', 1)`, [runId]);
    await transition(pool, schema, { run: runId }, 'succeeded', systemActor, 'all delivered');
    await audit(pool, schema, { actor, action: 'pii.viewed', subject: `run:${runId}`, details: { key: 'alice@example.com', reason: 'ticket 7 asked by alice@example.com', payload: { email: 'alice@example.com' } } });
    await audit(pool, schema, { actor, action: 'token.created', subject: 'token:ssk_abcd', details: { role: 'operator' } });
    await audit(pool, schema, { actor, action: 'token.revoked', subject: 'token:ssk_abcd', details: {} });
    return schema;
  }

  const verify = (schema: string, extra?: Array<{ note: string; where: string }>) => verifyTrail(warehouse.pool, schema, { publicKey: getSigningKey().publicKey, ...(extra ? { extra } : {}) });
  const tamper = async (schema: string, sql: string) => {
    const pool = warehouse.pool;
    await pool.query(`ALTER TABLE ${schema}.audit DISABLE TRIGGER USER`);
    await pool.query(sql.replaceAll(':schema', schema));
    await pool.query(`ALTER TABLE ${schema}.audit ENABLE TRIGGER USER`);
  };

  test('run transitions and actions are chained in order; PII is pseudonymised, payloads hashed, secrets blanked', async () => {
    const schema = await trail();
    const { rows } = await warehouse.pool.query<{ seq: string; action: string; entry: string }>(`SELECT seq, action, entry FROM ${schema}.audit ORDER BY seq`);
    assert.deepEqual(rows.map((r) => r.action), ['run.planning', 'run.planned', 'config.loaded', 'run.delivering', 'run.succeeded', 'pii.viewed', 'token.created', 'token.revoked']);
    const all = rows.map((r) => r.entry).join('\n');
    assert.ok(!all.includes('alice@example.com') && !all.includes('bob@example.com'), all);
    assert.ok(!all.includes('pat-na1-secret'));
    const viewed = JSON.parse(rows[5]!.entry);
    assert.match(viewed.details.key, /^p_[A-Za-z0-9_-]{22}$/);
    assert.match(viewed.details.payload, /^sha256:[0-9a-f]{64}$/);
    assert.match(viewed.details.reason, /^ticket 7 asked by a\*\*\*@e\*\*\*\.com$/);
    assert.equal(JSON.parse(rows[0]!.entry).actor.id, cliActor().id);
    const done = JSON.parse(rows[4]!.entry);
    assert.equal(done.details.receipts.count, 2);
    const report = await verify(schema);
    assert.deepEqual(report.problems, []);
    assert.equal(report.rows, 8);
    assert.equal(report.runsChecked, 1);
  });

  test('the trigger refuses UPDATE, DELETE and TRUNCATE', async () => {
    const schema = await trail();
    for (const sql of [`UPDATE ${schema}.audit SET action = 'x' WHERE seq = 1`, `DELETE FROM ${schema}.audit WHERE seq = 1`, `TRUNCATE ${schema}.audit`]) {
      await assert.rejects(warehouse.pool.query(sql), /append-only/);
    }
  });

  test('an edited row is named', async () => {
    const schema = await trail();
    await tamper(schema, `UPDATE :schema.audit SET entry = replace(entry, '"operator"', '"admin"') WHERE seq = 7`);
    const r = await verify(schema);
    assert.equal(r.problems[0]?.kind, 'edited');
    assert.equal(r.problems[0]?.seq, 7);
  });

  test('an edit whose leaf and chain hashes were recomputed is named (by the next row\'s link)', async () => {
    const schema = await trail();
    const { leafHash, chainHash } = await import('../src/audit/hash.ts');
    const { rows } = await warehouse.pool.query<{ seq: string; entry: string; chain_hash: string }>(`SELECT seq, entry, chain_hash FROM ${schema}.audit WHERE seq IN (2, 3) ORDER BY seq`);
    const entry = rows[1]!.entry.replace('config.loaded', 'config.loadex');
    const leaf = leafHash(entry);
    await tamper(schema, `UPDATE :schema.audit SET entry = '${entry.replaceAll("'", "''")}', action = 'config.loadex', leaf_hash = '${leaf}', chain_hash = '${chainHash(rows[0]!.chain_hash, leaf)}' WHERE seq = 3`);
    const r = await verify(schema);
    assert.deepEqual([r.problems[0]?.kind, r.problems[0]?.seq], ['edited', 3]);
  });

  test('a deleted row is named', async () => {
    const schema = await trail();
    await tamper(schema, `DELETE FROM :schema.audit WHERE seq = 4`);
    const r = await verify(schema);
    assert.deepEqual([r.problems[0]?.kind, r.problems[0]?.seq], ['deleted', 4]);
  });

  test('deleting the last rows shows against the head; against a checkpoint when the head is rewound too', async () => {
    const schema = await trail();
    await tamper(schema, `DELETE FROM :schema.audit WHERE seq >= 7`);
    assert.deepEqual((await verify(schema)).problems.map((p) => [p.kind, p.seq]), [['deleted', 7]]);
    const schema2 = await trail();
    const key = getSigningKey();
    const head = await readHead(warehouse.pool, schema2);
    const cp = signCheckpoint('segsync/test', head.seq, head.chainHash, key.privateKey, key.publicKey);
    await tamper(schema2, `DELETE FROM :schema.audit WHERE seq >= 7; UPDATE :schema.audit_head SET seq = 6, chain_hash = (SELECT chain_hash FROM :schema.audit WHERE seq = 6)`);
    assert.deepEqual((await verify(schema2)).problems, []);
    const r = await verify(schema2, [{ note: cp.note, where: 'cp.txt' }]);
    assert.equal(r.problems[0]?.kind, 'deleted');
  });

  test('an inserted row is named', async () => {
    const schema = await trail();
    const { leafHash, chainHash, canonical } = await import('../src/audit/hash.ts');
    const { rows } = await warehouse.pool.query<{ entry: string; chain_hash: string }>(`SELECT entry, chain_hash FROM ${schema}.audit WHERE seq = 2`);
    const at = new Date().toISOString();
    const forged = canonical({ v: 1, seq: 3, at, prev: rows[0]!.chain_hash, actor: { type: 'cli', id: 'mallory@host' }, action: 'run.approved', subject: 'run:1', details: {} });
    const leaf = leafHash(forged);
    // Room at seq 3: every later row moves up by one, then the forged row goes in, properly chained to row 2.
    await tamper(schema, `UPDATE :schema.audit SET seq = -seq WHERE seq >= 3; UPDATE :schema.audit SET seq = 1 - seq WHERE seq < 0;
      INSERT INTO :schema.audit (seq, at, actor_type, actor_id, action, subject, entry, leaf_hash, chain_hash)
      VALUES (3, '${at}', 'cli', 'mallory@host', 'run.approved', 'run:1', '${forged}', '${leaf}', '${chainHash(rows[0]!.chain_hash, leaf)}')`);
    const r = await verify(schema);
    assert.deepEqual([r.problems[0]?.kind, r.problems[0]?.seq], ['inserted', 3], JSON.stringify(r.problems));
  });

  test('reordered rows are named', async () => {
    const schema = await trail();
    await tamper(schema, `UPDATE :schema.audit SET seq = CASE seq WHEN 5 THEN -6 ELSE -5 END WHERE seq IN (5, 6); UPDATE :schema.audit SET seq = -seq WHERE seq < 0`);
    const r = await verify(schema);
    assert.deepEqual([r.problems[0]?.kind, r.problems[0]?.seq], ['reordered', 5], JSON.stringify(r.problems));
  });

  test('a receipt changed after its run finished is named with the run', async () => {
    const schema = await trail();
    await warehouse.pool.query(`UPDATE ${schema}.receipts SET status = 'failed' WHERE key = 'bob@example.com'`);
    const r = await verify(schema);
    assert.deepEqual(r.problems.map((p) => [p.kind, p.seq]), [['receipts', 5]]);
    assert.match(r.problems[0]!.message, /run 1's receipts changed/);
  });

  test('a chain rewritten from some row on verifies alone but not against a signed checkpoint; checkpoints are Ed25519 notes', async () => {
    const schema = await trail();
    const key = getSigningKey();
    const head4 = { seq: 4, chainHash: (await warehouse.pool.query(`SELECT chain_hash FROM ${schema}.audit WHERE seq = 4`)).rows[0].chain_hash };
    const cp4 = signCheckpoint('segsync/test', head4.seq, head4.chainHash, key.privateKey, key.publicKey);
    await insertCheckpoint(warehouse.pool, schema, { seq: 4, chainHash: head4.chainHash, note: cp4.note });
    const head = await readHead(warehouse.pool, schema);
    const cp = signCheckpoint('segsync/test', head.seq, head.chainHash, key.privateKey, key.publicKey);
    assert.equal(openCheckpoint(cp.note, key.publicKey).chainHash, head.chainHash);
    assert.throws(() => openCheckpoint(cp.note.replace(`\n${head.seq}\n`, `\n${head.seq + 1}\n`), key.publicKey), /does not verify/);
    assert.throws(() => openCheckpoint(cp.note, generateKeyPairSync('ed25519').publicKey), /another key/);
    assert.deepEqual((await verify(schema, [{ note: cp.note, where: 'cp.txt' }])).problems, []);
    // Rewrite rows 6.. with every hash recomputed (a careful attacker with the trigger off).
    const { leafHash, chainHash } = await import('../src/audit/hash.ts');
    const { rows } = await warehouse.pool.query<{ seq: string; entry: string; chain_hash: string }>(`SELECT seq, entry, chain_hash FROM ${schema}.audit ORDER BY seq`);
    let prev = rows[4]!.chain_hash;
    const updates: string[] = [];
    for (const row of rows.slice(5)) {
      const e = JSON.parse(row.entry);
      e.prev = prev;
      if (e.action === 'token.created') e.details.role = 'admin';
      const { canonical } = await import('../src/audit/hash.ts');
      const text = canonical(e);
      const leaf = leafHash(text);
      prev = chainHash(prev, leaf);
      updates.push(`UPDATE :schema.audit SET entry = '${text.replaceAll("'", "''")}', leaf_hash = '${leaf}', chain_hash = '${prev}' WHERE seq = ${row.seq}`);
    }
    updates.push(`UPDATE :schema.audit_head SET chain_hash = '${prev}'`);
    await tamper(schema, updates.join(';'));
    assert.deepEqual((await verify(schema)).problems, []);
    const r = await verify(schema, [{ note: cp.note, where: 'cp.txt' }]);
    assert.deepEqual(r.problems.map((p) => [p.kind, p.seq]), [['edited', 5]]);
    assert.match(r.problems[0]!.message, /rows 5 to 8 were rewritten/);
  });

  test('a run\'s receipts root over several pages equals the root of all its leaves at once', async () => {
    const schema = `audit_t${++n}`;
    await migrate(warehouse.pool, schema);
    await warehouse.pool.query(`INSERT INTO ${schema}.receipts (run_id, mapping, key, op, status, payload_hash, attempt)
      SELECT 7, 'm', 'k' || g, 'create', 'delivered', md5(g::text), 1 FROM generate_series(1, 25000) g`);
    const { receiptsRoot, receiptLeaf } = await import('../src/audit/trail.ts');
    const { merkleRoot } = await import('../src/audit/hash.ts');
    const { rows } = await warehouse.pool.query(`SELECT key, op, status, payload_hash, destination_id, error_code, attempt, request_id FROM ${schema}.receipts WHERE run_id = 7 ORDER BY key`);
    const all = merkleRoot(rows.map((r) => receiptLeaf({ key: r.key, op: r.op, status: r.status, payloadHash: r.payload_hash, destinationId: r.destination_id, errorCode: r.error_code, attempt: r.attempt, requestId: r.request_id })));
    assert.deepEqual(await receiptsRoot(warehouse.pool, schema, 7), { count: 25000, root: all });
  });

  test('concurrent writers never fork the chain', async () => {
    const schema = `audit_t${++n}`;
    await migrate(warehouse.pool, schema);
    await Promise.all(Array.from({ length: 40 }, (_, i) => audit(warehouse.pool, schema, { actor: systemActor, action: 'test.concurrent', subject: `n:${i}` })));
    await sealAudit(warehouse.pool, schema);
    const r = await verify(schema);
    assert.deepEqual(r.problems, []);
    assert.equal(r.rows, 40);
  });
});

describe('audit trail on the embedded database (PGlite)', () => {
  let warehouse: Warehouse;
  let keyDir: string;
  before(async () => { keyDir = await mkdtemp(path.join(tmpdir(), 'segsync-audit-keys-')); process.env.SEGSYNC_AUDIT_KEY_DIR = keyDir; });
  after(() => rm(keyDir, { recursive: true, force: true }));
  useFreshWarehouse('embedded', async (w) => { warehouse = w; await migrate(w.pool, 'segsync'); });

  test('runs are audited beside the write path, the trigger refuses changes, verify holds', async () => {
    process.env.SEGSYNC_PSEUDONYM_KEY ??= 'test-pseudonym-key-0123456789';
    const pool = warehouse.pool;
    const runId = await createRun(pool, 'segsync', { mapping: 'm', actor: cliActor(), configHash: 'h', destination: 'files', status: 'planning' });
    await transition(pool, 'segsync', { run: runId }, 'planned', systemActor, null);
    await audit(pool, 'segsync', { actor: cliActor(), action: 'token.created', subject: 'token:x', details: { key: 'a@b.example' } });
    const actions = (await pool.query(`SELECT action FROM segsync.audit ORDER BY seq`)).rows.map((r) => r.action);
    assert.deepEqual(actions, ['run.planning', 'run.planned', 'token.created']);
    await assert.rejects(pool.query(`DELETE FROM segsync.audit`), /append-only/);
    assert.deepEqual((await verifyTrail(pool, 'segsync', { publicKey: getSigningKey().publicKey })).problems, []);
  });
});

test('the streaming Merkle builder gives the RFC 6962 root of the pairwise one for every size', async () => {
  const { merkleRoot, MerkleBuilder, leafHash, nodeHash } = await import('../src/audit/hash.ts');
  const leaves = Array.from({ length: 37 }, (_, i) => leafHash(String(i)));
  for (let n = 0; n <= leaves.length; n++) {
    const b = new MerkleBuilder();
    for (const l of leaves.slice(0, n)) b.add(l);
    assert.equal(b.root(), merkleRoot(leaves.slice(0, n)), `n = ${n}`);
  }
  // RFC 6962 for 3 leaves: MTH = H(1 || H(1 || l0 || l1) || l2).
  assert.equal(merkleRoot(leaves.slice(0, 3)), nodeHash(nodeHash(leaves[0]!, leaves[1]!), leaves[2]!));
});

test('the hashes are RFC 6962 and the receipt leaf is the RFC 8785 text of its fields, byte for byte', async () => {
  const { createHash, createHmac } = await import('node:crypto');
  const { canonical, leafHash, nodeHash } = await import('../src/audit/hash.ts');
  const { pseudonym, getPseudonymKey } = await import('../src/audit/keys.ts');
  const { receiptLeafText } = await import('../src/audit/trail.ts');
  // The definitions, with the streaming API: H(0x00 || data) and H(0x01 || left || right).
  for (const data of ['', 'a', 'ü €', '\u0000x', '{"k":"v"}']) {
    assert.equal(leafHash(data), createHash('sha256').update(Buffer.from([0])).update(data, 'utf8').digest('hex'), JSON.stringify(data));
  }
  const [l, r] = [leafHash('l'), leafHash('r')];
  assert.equal(nodeHash(l, r), createHash('sha256').update(Buffer.from([1])).update(Buffer.from(l, 'hex')).update(Buffer.from(r, 'hex')).digest('hex'));
  assert.equal(nodeHash(l.toUpperCase(), r), nodeHash(l, r));
  // Two digests or nothing: a short, long or non-hex side is refused, never truncated into a hash.
  for (const bad of [l.slice(0, 63), `${l}0`, `zz${l.slice(2)}`, `${l.slice(0, 62)}g0`, '']) {
    assert.throws(() => nodeHash(bad, r), /two SHA-256 digests/, bad);
    assert.throws(() => nodeHash(l, bad), /two SHA-256 digests/, bad);
  }
  assert.equal(pseudonym('u1'), 'p_' + createHmac('sha256', getPseudonymKey()).update('u1', 'utf8').digest('base64url').slice(0, 22));
  // Quotes, backslashes, control and line-separator characters, non-ASCII, a lone surrogate, nulls, numbers.
  const cases = [
    { key: 'u1', op: 'create', status: 'delivered', payloadHash: 'ab12', destinationId: 'x"y\\z\u2028', errorCode: null, attempt: 1, requestId: null },
    { key: 'ü\ud800 e', op: 'remove', status: 'failed', payloadHash: null, destinationId: null, errorCode: 'E_1', attempt: 12, requestId: 'r\n\t1\u0007' },
    { key: '', op: 'update', status: 'in_doubt', payloadHash: '', destinationId: '', errorCode: '', attempt: 0, requestId: '' },
  ];
  for (const c of cases) {
    const text = receiptLeafText(c);
    assert.equal(text, canonical({ key: pseudonym(c.key), op: c.op, status: c.status, payload_hash: c.payloadHash, destination_id: c.destinationId, error_code: c.errorCode, attempt: c.attempt, request_id: c.requestId }));
    // the key appears only as its pseudonym: the key member is it, and no member holds the key itself
    const members = JSON.parse(text) as Record<string, unknown>;
    assert.match(String(members.key), /^p_[A-Za-z0-9_-]{22}$/);
    assert.equal(members.key, pseudonym(c.key));
    if (c.key) assert.ok(!Object.values(members).includes(c.key), `the raw key ${JSON.stringify(c.key)} is in ${text}`);
  }
});
