import { InvalidArgumentError, type Command } from 'commander';
import { withApp, type App } from '../../app.ts';
import { loadOnlineRetail, FILTER_REASONS, type OnlineRetailResult } from '../../load/online-retail.ts';
import { loadPaymentsFile, type ExistingPayments, type LoadResult } from '../../load/load-payments.ts';
import { UsageError } from '../../errors.ts';
import { oneOf } from '../filters.ts';
import { paymentsRelation } from '../../load/payments-table.ts';
import { appOptions } from '../options.ts';
import { userPath } from '../paths.ts';

/** Exit status when the load ran to the end but rows were rejected (1 is a load that failed, 2 a usage error). */
export const EXIT_REJECTS = 3;

const REJECTION_RULE = `
Rows that cannot be loaded (a missing id, a timestamp or amount that does not parse, a wrong number of
fields, a payment_id repeated with different values in the file or already loaded with different values)
are written to the reject file with their line number and reason, and the command exits with status 3.
By default the valid rows ARE loaded; with --strict nothing is loaded when any row is rejected.
A file that cannot be read to the end (missing, corrupt gzip, broken CSV quoting) loads nothing: the
relation stays exactly as it was, and the exit status is 1.

Identity is payment_id: loading the same file again changes nothing (rows are counted as unchanged).
A file that adds new payments to a relation that already holds some is refused (nothing loaded) unless
--append (add them) or --replace (delete what is there first) says which is meant.
Loads never rewrite a payment: to correct one, delete it from the relation and load it again.`;

export function registerLoad(program: Command): void {
  const load = program.command('load').description('load payments into the payments relation (see docs/loading.md)');

  load.command('payments')
    .description('load a payments CSV (optionally gzip-compressed) into the payments relation')
    .argument('<file>', 'CSV file with a header line; .csv or .csv.gz (gzip is recognised by content)')
    .option('--columns <map>', 'header columns for the contract columns, e.g. user_id=CustomerID,payment_id=Id,payment_date=PaidAt,payment_amount=Amount (unmapped ones are looked up by their own name)')
    .option('--delimiter <char>', 'field separator of the file, e.g. ";" or "\\t" for tab (the reject file always uses ",")', delimiterArg, ',')
    .option('--rejects <file>', 'reject file (default: <file>.rejects.csv)')
    .option('--relation <name>', 'payments table, name or schema.name (default: models.payments in models.schema from config/segsync.yaml)')
    .option('--strict', 'load nothing when any row is rejected')
    .option('--decimal-comma', 'amounts use a decimal comma (1.234,56 or 12,5), as European exports do')
    .option('--refunds <keep|skip>', 'negative amounts: keep them as payments (default: they count toward frequency and recency) or skip them (counted, not loaded, so a refund is no purchase)', 'keep')
    .option('--append', 'the relation already holds payments: add this file\'s to them')
    .option('--replace', 'the relation already holds payments: delete them and load this file instead')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
The file needs the columns user_id, payment_id, payment_date, payment_amount (or --columns to name them).
payment_date: ISO 8601 date or date-time (2024-03-01, 2024-03-01 08:26:00, 2024-03-01T08:26:00+02:00);
without an offset it is UTC. payment_amount: a decimal number with a dot (--decimal-comma: with a comma);
negative amounts (refunds) are loaded as they are unless --refunds skip. The relation is created if it does not exist:
  (user_id text not null, payment_id text primary key, payment_date timestamptz not null, payment_amount numeric not null)
${REJECTION_RULE}

Example:
  segsync load payments payments.csv.gz --columns user_id=customer,payment_id=id,payment_date=paid_at,payment_amount=amount`)
    .action(async (file: string, o: { columns?: string; delimiter: string; rejects?: string; relation?: string; strict?: boolean; json?: boolean; decimalComma?: boolean; refunds: string; append?: boolean; replace?: boolean }, cmd: Command) => {
      const refunds = oneOf('--refunds', o.refunds, ['keep', 'skip'] as const);
      const existing = existingChoice(o);
      const result = await withApp(appOptions(cmd), async (app) => {
        const r = await loadPaymentsFile(app.warehouse, { file: userPath(file), relation: paymentsRelation(app.config.settings, o.relation), columns: o.columns, delimiter: o.delimiter, rejectsPath: o.rejects === undefined ? undefined : userPath(o.rejects), strict: o.strict, decimalComma: o.decimalComma, refunds, existing });
        app.log.info({ ...r }, 'payments load finished');
        await checkpointEmbedded(app);
        return r;
      });
      report(result, o.json);
    });

  load.command('online-retail')
    .description('stage the UCI Online Retail invoice lines (online_retail.csv.gz) as payments: one payment per invoice')
    .argument('<file>', 'the UCI Online Retail CSV (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country), plain or gzip')
    .option('--rejects <file>', 'reject file (default: <file>.rejects.csv)')
    .option('--relation <name>', 'payments table, name or schema.name (default: models.payments in models.schema from config/segsync.yaml)')
    .option('--strict', 'load nothing when any line is rejected')
    .option('--append', 'the relation already holds payments: add these to them')
    .option('--replace', 'the relation already holds payments: delete them and load these instead')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
Staging rule: keep lines with a CustomerID, an InvoiceNo not starting with C (cancellations), Quantity > 0
and UnitPrice > 0; then one payment per invoice: payment_id = InvoiceNo, user_id = CustomerID without ".0",
payment_date = the invoice's earliest InvoiceDate (UTC), payment_amount = sum(Quantity x UnitPrice).
Lines left out by that rule are counted by reason; they are not rejects. Lines that cannot be read are.
On the published file this gives 18,532 payments from 4,338 customers, total 8,911,407.904.
${REJECTION_RULE}`)
    .action(async (file: string, o: { rejects?: string; relation?: string; strict?: boolean; json?: boolean; append?: boolean; replace?: boolean }, cmd: Command) => {
      const existing = existingChoice(o);
      const result = await withApp(appOptions(cmd), async (app) => {
        const r = await loadOnlineRetail(app.warehouse, { file: userPath(file), relation: paymentsRelation(app.config.settings, o.relation), rejectsPath: o.rejects === undefined ? undefined : userPath(o.rejects), strict: o.strict, existing });
        app.log.info({ ...r }, 'online retail staging finished');
        await checkpointEmbedded(app);
        return r;
      });
      report(result, o.json);
    });
}

/**
 * After a load into the embedded database: a CHECKPOINT, so the WAL the load wrote is recycled now instead
 * of piling up in .segsync/ (a 400 MB folder, 240 MB of it WAL, after the UCI loads).
 */
async function checkpointEmbedded(app: App): Promise<void> {
  if (app.warehouse.embedded) await app.warehouse.pool.query('CHECKPOINT');
}

/** --append / --replace, or ask: a load that would add new payments to a non-empty relation is refused. */
function existingChoice(o: { append?: boolean; replace?: boolean }): ExistingPayments {
  if (o.append && o.replace) throw new UsageError('--append and --replace contradict each other: pass one');
  return o.append ? 'append' : o.replace ? 'replace' : 'ask';
}

function delimiterArg(v: string): string {
  const d = v === '\\t' || v === 'tab' ? '\t' : v;
  if (d.length !== 1 || d === '"' || d === '\n' || d === '\r') throw new InvalidArgumentError('expected one character other than a quote or line break (\\t or tab for a tab)');
  return d;
}

const fmt = (n: number) => n.toLocaleString('en-US');

function report(r: LoadResult | OnlineRetailResult, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  } else {
    const lines = [`${r.file} -> ${r.relation}`, `  rows read             ${fmt(r.read)}`];
    if ('filtered' in r) {
      for (const reason of FILTER_REASONS) lines.push(`  left out: ${reason.padEnd(40)} ${fmt(r.filtered[reason])}`);
      lines.push(`  staged                ${fmt(r.staged.payments)} payments from ${fmt(r.staged.users)} customers, total ${r.staged.total}`);
    }
    lines.push(
      `  loaded (new)          ${fmt(r.loaded)}`,
      `  unchanged duplicates  ${fmt(r.unchanged)}`,
      `  rejected              ${fmt(r.rejected)}${r.rejectsPath ? `  -> ${r.rejectsPath}` : ''}`,
    );
    if ('refundsSkipped' in r && r.refundsSkipped !== undefined) lines.push(`  refunds skipped       ${fmt(r.refundsSkipped)}  (--refunds skip)`);
    if (!r.committed) lines.push('  nothing loaded: --strict and rows were rejected');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (r.rejected > 0) {
    process.stderr.write(`segsync: ${fmt(r.rejected)} row(s) rejected, see ${r.rejectsPath}${r.committed ? '' : ' (nothing loaded: --strict)'}\n`);
    process.exitCode = EXIT_REJECTS;
  }
}
