import type { Warehouse } from '../db/warehouse.ts';
import { parseColumnSpec, readCsv, readHeader, resolveColumns, type CsvRecord } from './csv-source.ts';
import { CONFLICTS, mergePayments, PAYMENT_STAGE, writeConflictRejects } from './merge.ts';
import { ensurePaymentsTable, PAYMENT_COLUMNS, type Relation } from './payments-table.ts';
import { RejectWriter } from './rejects.ts';
import { createStageTable, stageRows, type StageValue } from './stage.ts';
import { checkId, parseDecimal, parseDecimalComma, parseTimestamp } from './values.ts';
import { UsageError } from '../errors.ts';
import { inLoadTransaction } from './transaction.ts';

export interface LoadPaymentsOptions {
  file: string;
  relation: Relation;
  /** `user_id=CustomerID,...`; unmapped contract columns are looked up under their own name. */
  columns?: string | undefined;
  /** Reject file (default `<file>.rejects.csv`). */
  rejectsPath?: string | undefined;
  /** Field separator of the input (default `,`); the reject file always uses `,`. */
  delimiter?: string | undefined;
  /** Load nothing when any row is rejected (default: load the valid rows, list the rejects). */
  strict?: boolean | undefined;
  /** Amounts use a decimal comma (1.234,56) instead of a dot. */
  decimalComma?: boolean | undefined;
  /** Refunds (negative amounts): keep them as payments (default) or leave them out, counted, so they are no purchase. */
  refunds?: 'keep' | 'skip' | undefined;
  /** A relation that already holds payments: add to it (default), empty it first, or ask (refuse new payments). */
  existing?: ExistingPayments | undefined;
}

/** What a load does with payments already in the relation (see checkExisting). */
export type ExistingPayments = 'append' | 'replace' | 'ask';

/**
 * Before the merge: empties the relation for `replace`; says whether it held payments. After the merge,
 * `refuseSecondSet` refuses (rolling the load back) when it held payments and the file adds new ones while
 * the caller asked to be asked: a second data set mixed into the first by accident. Loading the same file
 * again adds nothing and passes.
 */
export async function existingBefore(client: { query: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }> }, relation: Relation, existing: ExistingPayments | undefined): Promise<boolean> {
  if (existing === 'replace') {
    await client.query(`delete from ${relation.sql}`);
    return false;
  }
  const r = await client.query(`select exists(select 1 from ${relation.sql}) as e`);
  return r.rows[0]?.e === true;
}

export function refuseSecondSet(relation: Relation, had: boolean, added: number, existing: ExistingPayments | undefined): void {
  if (existing !== 'ask' || !had || added === 0) return;
  throw new UsageError(`${relation.display} already holds payments and this file adds ${added.toLocaleString('en-US')} new one(s): nothing was loaded`,
    'a second data set? --append adds them to what is there, --replace loads this file instead (the payments there are deleted)');
}

export interface LoadResult {
  file: string;
  relation: string;
  /** Data records read (the header and empty lines not counted). */
  read: number;
  /** New payments in the relation. */
  loaded: number;
  /** Payments already in the relation with identical values, or repeated identically in the file. */
  unchanged: number;
  /** Rows written to the reject file. */
  rejected: number;
  /** Refunds (negative amounts) left out with refunds: 'skip'. */
  refundsSkipped?: number;
  rejectsPath: string | null;
  /** false when --strict refused the whole file because of rejects. */
  committed: boolean;
}

export const STAGE = '_segsync_stage';

/**
 * Loads a payments CSV (plain or gzip) into the payments relation in one transaction: stream, validate, stage,
 * merge on payment_id. Rejected rows go to the reject file; the valid rows are loaded unless `strict`. Any
 * failure to read the file to the end rolls everything back, so the relation is exactly as it was.
 */
export async function loadPaymentsFile(warehouse: Warehouse, opts: LoadPaymentsOptions): Promise<LoadResult> {
  const records = readCsv(opts.file, opts.delimiter ?? ',');
  const header = await readHeader(opts.file, records);
  let index: Map<string, number>;
  let rejects: RejectWriter;
  try {
    index = resolveColumns(opts.file, header.fields, parseColumnSpec(opts.columns, PAYMENT_COLUMNS));
    rejects = new RejectWriter(opts.rejectsPath ?? `${opts.file}.rejects.csv`, header.fields, opts.file);
  } catch (err) {
    await records.return(undefined);
    throw err;
  }
  const at = (name: string) => index.get(name)!;
  let read = 0;
  let refundsSkipped = 0;

  async function* valid(): AsyncGenerator<StageValue[]> {
    for await (const rec of records) {
      read++;
      const row = checkPayment(rec, header.fields.length, at, opts.decimalComma === true);
      if (typeof row === 'string') await rejects.write(rec.line, row, rec.fields);
      else if (opts.refunds === 'skip' && String(row[4]).startsWith('-') && Number(row[4]) < 0) refundsSkipped++;
      else yield row;
    }
  }

  return inLoadTransaction(warehouse, rejects, async (client) => {
    await ensurePaymentsTable(client, opts.relation);
    const had = await existingBefore(client, opts.relation, opts.existing);
    await createStageTable(client, STAGE, PAYMENT_STAGE);
    await stageRows(client, warehouse.embedded, STAGE, PAYMENT_STAGE, valid());
    const merged = await mergePayments(client, STAGE, opts.relation);
    refuseSecondSet(opts.relation, had, merged.loaded, opts.existing);
    if (merged.conflicts > 0) await writeConflictRejects(client, opts.file, opts.delimiter ?? ',', rejects, `select line, reason from ${CONFLICTS} order by line`);
    const committed = !(opts.strict && rejects.count > 0);
    return {
      commit: committed,
      result: {
        file: opts.file, relation: opts.relation.display, read, loaded: committed ? merged.loaded : 0, unchanged: merged.unchanged,
        rejected: rejects.count, rejectsPath: rejects.count > 0 ? rejects.path : null, committed,
        ...(opts.refunds === 'skip' ? { refundsSkipped } : {}),
      },
    };
  });
}

/** A staged row [line, user_id, payment_id, payment_date, payment_amount], or why the record is refused. */
function checkPayment(rec: CsvRecord, width: number, at: (name: string) => number, decimalComma: boolean): StageValue[] | string {
  if (rec.fields.length !== width) return `has ${rec.fields.length} field(s), the header has ${width}`;
  const problems: string[] = [];
  const userId = rec.fields[at('user_id')]!.trim();
  const paymentId = rec.fields[at('payment_id')]!.trim();
  const u = checkId(userId);
  if (u) problems.push(`user_id ${u}`);
  const p = checkId(paymentId);
  if (p) problems.push(`payment_id ${p}`);
  const date = parseTimestamp(rec.fields[at('payment_date')]!.trim());
  if (!date.ok) problems.push(`payment_date ${date.reason}`);
  const amount = (decimalComma ? parseDecimalComma : parseDecimal)(rec.fields[at('payment_amount')]!.trim());
  if (!amount.ok) problems.push(`payment_amount ${amount.reason}`);
  if (problems.length || !date.ok || !amount.ok) return problems.join('; ');
  return [rec.line, userId, paymentId, date.value, amount.value];
}
