import type pg from 'pg';
import Cursor from 'pg-cursor';
import { LoadFileError, readCsv, type CsvRecord } from './csv-source.ts';
import type { Relation } from './payments-table.ts';
import type { RejectWriter } from './rejects.ts';
import type { StageColumn } from './stage.ts';

/** The staged form of a payment: the contract's columns plus the line of the input it came from. */
export const PAYMENT_STAGE: StageColumn[] = [
  { name: 'line', type: 'int' },
  { name: 'user_id', type: 'text' },
  { name: 'payment_id', type: 'text' },
  { name: 'payment_date', type: 'timestamptz' },
  { name: 'payment_amount', type: 'numeric' },
];

export const CONFLICTS = '_segsync_conflicts';

export interface MergeCounts {
  /** New payments inserted into the relation. */
  loaded: number;
  /** Staged payments identical to one already in the relation or repeated identically in the input. */
  unchanged: number;
  /** Staged payments refused because the same payment_id carries different values. */
  conflicts: number;
}

/**
 * Moves staged payments into the relation, inside the caller's transaction. payment_id is the identity:
 * - the same payment_id with different values inside the input: every such row is refused (nobody can say
 *   which is right, and picking one silently would be a guess);
 * - a payment_id already in the relation with different values: the staged row is refused (loads never
 *   rewrite history; to correct a payment, delete it and load it again);
 * - identical repeats and identical re-loads: counted as unchanged, nothing written.
 * Refused rows land in the CONFLICTS temp table (line, reason) for the reject file.
 */
export async function mergePayments(client: pg.PoolClient, stage: string, target: Relation): Promise<MergeCounts> {
  // Two loads of the same payment_id with different values must not both pass the check below and leave
  // the second one's rows silently skipped by ON CONFLICT: merges into one relation take turns. Readers
  // (model builds) are not blocked.
  await client.query(`lock table ${target.sql} in share row exclusive mode`);
  await client.query(`create temp table ${CONFLICTS} (line int primary key, reason text not null) on commit drop`);
  await client.query(`analyze ${stage}`);
  // Repeated ids are found by a cheap hash aggregate first; only those are compared value by value.
  await client.query(`
    insert into ${CONFLICTS} (line, reason)
    select s.line, format('payment_id %s appears on lines %s with different values', s.payment_id, d.lines)
      from ${stage} s
      join (select payment_id,
                   array_to_string((array_agg(line order by line))[1:10], ', ') || case when count(*) > 10 then ', ...' else '' end as lines
              from ${stage}
             where payment_id in (select payment_id from ${stage} group by payment_id having count(*) > 1)
             group by payment_id
            having count(distinct (user_id, payment_date, payment_amount)) > 1) d using (payment_id)`);
  await client.query(`
    insert into ${CONFLICTS} (line, reason)
    select s.line, format('payment_id %s is already in %s with different values (user_id %s, payment_date %s, payment_amount %s)',
                          s.payment_id, $1::text, t.user_id, t.payment_date, t.payment_amount)
      from ${stage} s
      join ${target.sql} t using (payment_id)
     where (s.user_id, s.payment_date, s.payment_amount) is distinct from (t.user_id, t.payment_date::timestamptz, t.payment_amount::numeric)
    on conflict (line) do nothing`, [target.display]);
  const conflicts = await client.query(`delete from ${stage} s using ${CONFLICTS} c where s.line = c.line`);
  const staged = await client.query<{ n: string }>(`select count(*) as n from ${stage}`);
  const inserted = await client.query(`
    insert into ${target.sql} (user_id, payment_id, payment_date, payment_amount)
    select distinct on (payment_id) user_id, payment_id, payment_date, payment_amount
      from ${stage}
     order by payment_id, line
    on conflict (payment_id) do nothing`);
  const loaded = inserted.rowCount ?? 0;
  return { loaded, unchanged: Number(staged.rows[0]!.n) - loaded, conflicts: conflicts.rowCount ?? 0 };
}

/**
 * Writes the refused rows to the reject file with their original fields. Those are not kept in the database,
 * so the file is read a second time and merged, by line, with `select line, reason ... order by line`:
 * constant memory however many rows were refused.
 */
export async function writeConflictRejects(client: pg.PoolClient, file: string, delimiter: string, rejects: RejectWriter, conflictSql: string): Promise<void> {
  const cursor = client.query(new Cursor<{ line: number; reason: string }>(conflictSql));
  try {
    let pending = await cursor.read(1000);
    let i = 0;
    const records: AsyncIterator<CsvRecord> = readCsv(file, delimiter);
    while (i < pending.length) {
      const want = pending[i]!;
      let rec = await records.next();
      while (!rec.done && rec.value.line < want.line) rec = await records.next();
      if (rec.done || rec.value.line !== want.line) {
        throw new LoadFileError('LOAD_FILE_CHANGED', `${file} changed during the load: line ${want.line} is no longer where it was; load it again`);
      }
      // One input line can be refused once only (CONFLICTS is keyed by line), so the cursor moves on with it.
      await rejects.write(want.line, want.reason, rec.value.fields);
      if (++i === pending.length) {
        pending = await cursor.read(1000);
        i = 0;
      }
    }
    await records.return?.(undefined);
  } finally {
    await cursor.close();
  }
}
