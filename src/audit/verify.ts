import type { KeyObject } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { readHead, readTrail, listCheckpoints, type AuditRow } from '../state/audit.ts';
import type { Db } from '../state/transition.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { canonical, chainHash, GENESIS, leafHash } from './hash.ts';
import { receiptsRoot, type Entry } from './trail.ts';

export type ProblemKind = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'receipts' | 'checkpoint';

export interface Problem {
  kind: ProblemKind;
  /** The first row concerned (the seq it has, or for a deletion the first seq missing). */
  seq: number;
  message: string;
}

export interface VerifyReport {
  rows: number;
  headSeq: number;
  checkpoints: number;
  runsChecked: number;
  /** The first break found in the chain (later rows are not trusted past it), then every receipts mismatch. */
  problems: Problem[];
  /** Rows after the last verified checkpoint: chained, but covered by no signature yet. */
  unsigned: number;
}

function parse(row: AuditRow): Entry | null {
  try {
    const e = JSON.parse(row.entry) as Entry;
    return canonical(e) === row.entry ? e : null;
  } catch {
    return null;
  }
}

/**
 * Recomputes the whole trail from the database alone: every leaf from its entry, the chain from the first row,
 * each finished run's Merkle root from its receipts, and every checkpoint (stored ones and `extra`, e.g. a file
 * kept elsewhere) against the chain. Names the first row edited, deleted, inserted or reordered.
 */
export async function verifyTrail(db: Db, schema: string, o: { publicKey?: KeyObject | undefined; extra?: Array<{ note: string; where: string }>; receipts?: boolean }): Promise<VerifyReport> {
  const rows: AuditRow[] = [];
  for (let after = -Infinity; ;) {
    const page = await readTrail(db, schema, after === -Infinity ? -1 : after, 5000);
    rows.push(...page);
    if (page.length < 5000) break;
    after = page[page.length - 1]!.seq;
  }
  const entries = rows.map(parse);
  const entrySeqAt = new Map<number, number>(); // entry seq -> row index
  entries.forEach((e, i) => { if (e && typeof e.seq === 'number') entrySeqAt.set(e.seq, i); });
  const problems: Problem[] = [];
  const chainOf = new Map<string, number>(); // recomputed chain hash -> row seq
  const computed = new Map<number, string>(); // row seq -> recomputed chain hash
  let prev = GENESIS;
  let prevSeq = 0;
  let broken = false;
  for (let i = 0; i < rows.length && !broken; i++) {
    const row = rows[i]!;
    const e = entries[i];
    const fail = (kind: ProblemKind, seq: number, message: string) => { problems.push({ kind, seq, message }); broken = true; };
    if (row.seq !== prevSeq + 1) {
      fail('deleted', prevSeq + 1, row.seq === prevSeq + 2 ? `row ${prevSeq + 1} was deleted (seq jumps from ${prevSeq} to ${row.seq})` : `rows ${prevSeq + 1} to ${row.seq - 1} were deleted (seq jumps from ${prevSeq} to ${row.seq})`);
      break;
    }
    if (!e || leafHash(row.entry) !== row.leafHash) {
      fail('edited', row.seq, `row ${row.seq} was edited: ${e ? 'its entry does not hash to its leaf' : 'its entry is not the canonical JSON it was written as'}`);
      break;
    }
    if (e.seq !== row.seq) {
      const k = chainOf.get(e.prev);
      const holder = entrySeqAt.get(row.seq);
      if (k !== undefined && k < row.seq - 1) fail('inserted', k + 1, `rows were inserted before row ${row.seq}: it holds the entry written as seq ${e.seq}, chained to row ${k}`);
      else if (holder !== undefined && holder !== i) fail('reordered', row.seq, `rows were reordered: row ${row.seq} holds the entry written as seq ${e.seq}, row ${rows[holder]!.seq} the one written as seq ${row.seq}`);
      else if (e.seq > row.seq) fail('deleted', row.seq, `the row written as seq ${row.seq} was deleted and later rows renumbered (row ${row.seq} holds the entry of seq ${e.seq})`);
      else fail('inserted', row.seq, `rows were inserted before row ${row.seq} (it holds the entry written as seq ${e.seq})`);
      break;
    }
    if (e.prev !== prev) {
      const k = chainOf.get(e.prev);
      if (k !== undefined && k < row.seq - 1) fail('inserted', k + 1, k + 1 === row.seq - 1 ? `row ${k + 1} was inserted: row ${row.seq} was chained to row ${k}` : `rows ${k + 1} to ${row.seq - 1} were inserted: row ${row.seq} was chained to row ${k}`);
      else if (row.seq === 1 || k !== undefined) fail('edited', row.seq, `row ${row.seq} was edited: it names a previous hash the chain never had`);
      else fail('edited', row.seq - 1, `row ${row.seq - 1} was edited and its hashes recomputed: row ${row.seq} was chained to another row ${row.seq - 1}`);
      break;
    }
    const c = chainHash(prev, row.leafHash);
    if (c !== row.chainHash) {
      fail('edited', row.seq, `row ${row.seq} was edited: its stored chain hash is not the chain's`);
      break;
    }
    if (row.at.toISOString() !== e.at || row.actorType !== e.actor.type || row.actorId !== e.actor.id || row.action !== e.action || row.subject !== e.subject) {
      fail('edited', row.seq, `row ${row.seq} was edited: its columns (at, actor, action, subject) differ from its hashed entry`);
      break;
    }
    chainOf.set(c, row.seq);
    computed.set(row.seq, c);
    prev = c;
    prevSeq = row.seq;
  }
  const head = await readHead(db, schema);
  if (!broken) {
    if (head.seq > prevSeq) problems.push({ kind: 'deleted', seq: prevSeq + 1, message: `rows ${prevSeq + 1} to ${head.seq} were deleted (the chain's head is at ${head.seq}, the last row is ${prevSeq})` });
    else if (head.seq < prevSeq) problems.push({ kind: 'inserted', seq: head.seq + 1, message: `rows ${head.seq + 1} to ${prevSeq} were inserted after the chain's head (${head.seq})` });
    else if (head.chainHash !== prev) problems.push({ kind: 'edited', seq: prevSeq, message: `the chain's head hash differs from the recomputed chain at row ${prevSeq}` });
  }
  // Checkpoints: a rewrite of the chain from some row on (every hash recomputed) shows only against a signature.
  const notes: Array<{ note: string; where: string }> = [
    ...(await listCheckpoints(db, schema)).map((c) => ({ note: c.note, where: `stored checkpoint at ${c.seq}` })),
    ...(o.extra ?? []),
  ];
  const checkpoints: Checkpoint[] = [];
  if (notes.length && !o.publicKey) throw new UsageError(`${notes.length} checkpoint(s) to check and no key to check them with: give --public-key FILE (segsync audit public-key prints it where the trail is written)`);
  for (const n of notes) {
    try {
      checkpoints.push(openCheckpoint(n.note, o.publicKey!, n.where));
    } catch (err) {
      problems.push({ kind: 'checkpoint', seq: 0, message: (err as Error).message });
    }
  }
  checkpoints.sort((a, b) => a.size - b.size);
  let lastGood = 0;
  let firstBad: Checkpoint | undefined;
  for (const cp of checkpoints) {
    const c = computed.get(cp.size);
    if (c === cp.chainHash) {
      if (!firstBad) lastGood = Math.max(lastGood, cp.size);
    } else if (!firstBad && !(broken && c === undefined)) firstBad = cp;
  }
  if (firstBad) {
    const c = computed.get(firstBad.size);
    problems.push({ kind: c === undefined ? 'deleted' : 'edited', seq: lastGood + 1, message: c === undefined
      ? `the checkpoint signed at row ${firstBad.size} covers rows the trail no longer has (${prevSeq} rows verify)`
      : `rows ${lastGood + 1} to ${firstBad.size} were rewritten: the chain at row ${firstBad.size} differs from the checkpoint signed there${lastGood ? ` (row ${lastGood} matches its checkpoint)` : ''}` });
  }
  // Each finished run's receipts against the Merkle root sealed when it finished.
  let runsChecked = 0;
  if (o.receipts !== false) {
    for (let i = 0; i < rows.length; i++) {
      const e = entries[i];
      const sealedRoot = e?.details?.receipts as { count: number; root: string } | undefined;
      if (!e || !sealedRoot || !e.subject?.startsWith('run:')) continue;
      const runId = Number(e.subject.slice(4));
      const now = await receiptsRoot(db, schema, runId);
      runsChecked++;
      if (now.root !== sealedRoot.root) problems.push({ kind: 'receipts', seq: rows[i]!.seq, message: `run ${runId}'s receipts changed after row ${rows[i]!.seq} sealed them (${sealedRoot.count} then, ${now.count} now)` });
    }
  }
  const lastSigned = Math.max(0, ...checkpoints.filter((c) => computed.get(c.size) === c.chainHash).map((c) => c.size));
  return { rows: rows.length, headSeq: head.seq, checkpoints: checkpoints.length, runsChecked, problems, unsigned: Math.max(0, prevSeq - lastSigned) };
}
