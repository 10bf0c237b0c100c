import type { Warehouse } from '../db/warehouse.ts';
import { readCsv, readHeader, resolveColumns, type CsvRecord } from './csv-source.ts';
import { CONFLICTS, mergePayments, writeConflictRejects } from './merge.ts';
import { ensurePaymentsTable, type Relation } from './payments-table.ts';
import { RejectWriter } from './rejects.ts';
import { existingBefore, refuseSecondSet, STAGE, type ExistingPayments, type LoadResult } from './load-payments.ts';
import { createStageTable, stageRows, type StageColumn, type StageValue } from './stage.ts';
import { inLoadTransaction } from './transaction.ts';
import { checkId, parseDecimal, parseTimestamp } from './values.ts';

/**
 * Staging of the UCI "Online Retail" data set (one row per invoice line) into the payments contract, as
 * docs/loading.md describes: keep lines with a CustomerID, an InvoiceNo not starting with C, Quantity > 0 and
 * UnitPrice > 0; one payment per invoice with payment_id = InvoiceNo, user_id = CustomerID without its `.0`,
 * payment_date = the invoice's earliest InvoiceDate, payment_amount = sum(Quantity x UnitPrice), in exact
 * decimal arithmetic. Lines that fail the rule are counted by reason; lines that cannot be read (a missing
 * InvoiceNo, a Quantity that is not a number) are rejects, as in any load.
 */

const COLUMNS = ['InvoiceNo', 'InvoiceDate', 'Quantity', 'UnitPrice', 'CustomerID'] as const;

/** Why a line is left out by the staging rule, in the order they are tested (a line counts under the first). */
export const FILTER_REASONS = ['no CustomerID', 'cancellation (InvoiceNo starts with C)', 'Quantity <= 0', 'UnitPrice <= 0'] as const;
export type FilterReason = (typeof FILTER_REASONS)[number];

export interface OnlineRetailResult extends LoadResult {
  /** Invoice lines left out by the staging rule, by reason. */
  filtered: Record<FilterReason, number>;
  /** What the kept lines add up to (before merging with what the relation holds). */
  staged: { payments: number; users: number; total: string };
}

const LINES = '_segsync_lines';
const LINE_STAGE: StageColumn[] = [
  { name: 'line', type: 'int' },
  { name: 'invoice', type: 'text' },
  { name: 'user_id', type: 'text' },
  { name: 'invoice_date', type: 'timestamptz' },
  { name: 'quantity', type: 'numeric' },
  { name: 'unit_price', type: 'numeric' },
];
const SPLIT_INVOICES = '_segsync_split_invoices';

export async function loadOnlineRetail(warehouse: Warehouse, opts: { file: string; relation: Relation; rejectsPath?: string | undefined; strict?: boolean | undefined; existing?: ExistingPayments | undefined }): Promise<OnlineRetailResult> {
  const records = readCsv(opts.file);
  const header = await readHeader(opts.file, records);
  let index: Map<string, number>;
  let rejects: RejectWriter;
  try {
    index = resolveColumns(opts.file, header.fields, new Map(COLUMNS.map((c) => [c, c])));
    rejects = new RejectWriter(opts.rejectsPath ?? `${opts.file}.rejects.csv`, header.fields, opts.file);
  } catch (err) {
    await records.return(undefined);
    throw err;
  }
  const at = (name: (typeof COLUMNS)[number]) => index.get(name)!;
  const filtered = Object.fromEntries(FILTER_REASONS.map((r) => [r, 0])) as Record<FilterReason, number>;
  let read = 0;

  async function* kept(): AsyncGenerator<StageValue[]> {
    for await (const rec of records) {
      read++;
      const line = checkLine(rec, header.fields.length, at);
      if (typeof line === 'string') await rejects.write(rec.line, line, rec.fields);
      else if ('filter' in line) filtered[line.filter]++;
      else yield line.row;
    }
  }

  return inLoadTransaction(warehouse, rejects, async (client) => {
    await ensurePaymentsTable(client, opts.relation);
    const had = await existingBefore(client, opts.relation, opts.existing);
    await createStageTable(client, LINES, LINE_STAGE);
    await stageRows(client, warehouse.embedded, LINES, LINE_STAGE, kept());
    // An invoice whose lines name different customers cannot become one payment: all its lines are refused.
    await client.query(`
      create temp table ${SPLIT_INVOICES} on commit drop as
      select l.line, format('invoice %s has lines for several CustomerIDs (%s)', l.invoice, d.users) as reason
        from ${LINES} l
        join (select invoice, string_agg(distinct user_id, ', ') as users from ${LINES} group by invoice having count(distinct user_id) > 1) d using (invoice)`);
    await client.query(`
      create temp table ${STAGE} on commit drop as
      select min(line) as line, min(user_id) as user_id, invoice as payment_id,
             min(invoice_date) as payment_date, sum(quantity * unit_price) as payment_amount
        from ${LINES}
       where invoice not in (select l.invoice from ${LINES} l join ${SPLIT_INVOICES} s using (line))
       group by invoice`);
    const totals = await client.query<{ payments: number; users: number; total: string | null }>(
      `select count(*)::int as payments, count(distinct user_id)::int as users, sum(payment_amount)::text as total from ${STAGE}`);
    const merged = await mergePayments(client, STAGE, opts.relation);
    refuseSecondSet(opts.relation, had, merged.loaded, opts.existing);
    const split = await client.query<{ n: number }>(`select count(*)::int as n from ${SPLIT_INVOICES}`);
    if (merged.conflicts > 0 || split.rows[0]!.n > 0) {
      // A refused payment stands for every line of its invoice; the reject file lists them all.
      await writeConflictRejects(client, opts.file, ',', rejects, `
        select line, reason from ${SPLIT_INVOICES}
        union all
        select l.line, c.reason from ${CONFLICTS} c join ${LINES} first using (line) join ${LINES} l on l.invoice = first.invoice
        order by line`);
    }
    const committed = !(opts.strict && rejects.count > 0);
    const t = totals.rows[0]!;
    return {
      commit: committed,
      result: {
        file: opts.file, relation: opts.relation.display, read, loaded: committed ? merged.loaded : 0, unchanged: merged.unchanged,
        rejected: rejects.count, rejectsPath: rejects.count > 0 ? rejects.path : null, committed,
        filtered, staged: { payments: t.payments, users: t.users, total: t.total ?? '0' },
      },
    };
  });
}

type LineOutcome = { row: StageValue[] } | { filter: FilterReason };

/** The staged line, the staging rule's reason to leave it out, or (a string) why the line cannot be read. */
function checkLine(rec: CsvRecord, width: number, at: (name: (typeof COLUMNS)[number]) => number): LineOutcome | string {
  if (rec.fields.length !== width) return `has ${rec.fields.length} field(s), the header has ${width}`;
  const invoice = rec.fields[at('InvoiceNo')]!.trim();
  const customer = rec.fields[at('CustomerID')]!.trim().replace(/\.0+$/, '');
  const problems: string[] = [];
  const inv = checkId(invoice);
  if (inv) problems.push(`InvoiceNo ${inv}`);
  if (customer !== '') {
    const c = checkId(customer);
    if (c) problems.push(`CustomerID ${c}`);
  }
  const date = parseTimestamp(rec.fields[at('InvoiceDate')]!.trim());
  if (!date.ok) problems.push(`InvoiceDate ${date.reason}`);
  const quantity = parseDecimal(rec.fields[at('Quantity')]!.trim());
  if (!quantity.ok) problems.push(`Quantity ${quantity.reason}`);
  const price = parseDecimal(rec.fields[at('UnitPrice')]!.trim());
  if (!price.ok) problems.push(`UnitPrice ${price.reason}`);
  if (problems.length || !date.ok || !quantity.ok || !price.ok) return problems.join('; ');
  if (customer === '') return { filter: 'no CustomerID' };
  if (invoice.startsWith('C')) return { filter: 'cancellation (InvoiceNo starts with C)' };
  if (!(Number(quantity.value) > 0)) return { filter: 'Quantity <= 0' };
  if (!(Number(price.value) > 0)) return { filter: 'UnitPrice <= 0' };
  return { row: [rec.line, invoice, customer, date.value, quantity.value, price.value] };
}
