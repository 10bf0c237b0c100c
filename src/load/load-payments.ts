import type { Warehouse } from '../db/warehouse.ts';
import { parseColumnSpec, readCsv, readHeader, resolveColumns, type CsvRecord } from './csv-source.ts';
import { CONFLICTS, mergePayments, PAYMENT_STAGE, writeConflictRejects } from './merge.ts';
import { ensurePaymentsTable, PAYMENT_COLUMNS, type Relation } from './payments-table.ts';
import { RejectWriter } from './rejects.ts';
import { createStageTable, stageRows, type StageValue } from './stage.ts';
import { checkId, parseDecimal, parseTimestamp } from './values.ts';
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

  async function* valid(): AsyncGenerator<StageValue[]> {
    for await (const rec of records) {
      read++;
      const row = checkPayment(rec, header.fields.length, at);
      if (typeof row === 'string') await rejects.write(rec.line, row, rec.fields);
      else yield row;
    }
  }

  return inLoadTransaction(warehouse, rejects, async (client) => {
    await ensurePaymentsTable(client, opts.relation);
    await createStageTable(client, STAGE, PAYMENT_STAGE);
    await stageRows(client, warehouse.embedded, STAGE, PAYMENT_STAGE, valid());
    const merged = await mergePayments(client, STAGE, opts.relation);
    if (merged.conflicts > 0) await writeConflictRejects(client, opts.file, opts.delimiter ?? ',', rejects, `select line, reason from ${CONFLICTS} order by line`);
    const committed = !(opts.strict && rejects.count > 0);
    return {
      commit: committed,
      result: {
        file: opts.file, relation: opts.relation.display, read, loaded: committed ? merged.loaded : 0, unchanged: merged.unchanged,
        rejected: rejects.count, rejectsPath: rejects.count > 0 ? rejects.path : null, committed,
      },
    };
  });
}

/** A staged row [line, user_id, payment_id, payment_date, payment_amount], or why the record is refused. */
function checkPayment(rec: CsvRecord, width: number, at: (name: string) => number): StageValue[] | string {
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
  const amount = parseDecimal(rec.fields[at('payment_amount')]!.trim());
  if (!amount.ok) problems.push(`payment_amount ${amount.reason}`);
  if (problems.length || !date.ok || !amount.ok) return problems.join('; ');
  return [rec.line, userId, paymentId, date.value, amount.value];
}
