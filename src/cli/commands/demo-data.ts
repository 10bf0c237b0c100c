import { InvalidArgumentError, type Command } from 'commander';
import { withApp } from '../../app.ts';
import { defaultEnd, windowStart } from '../../demo/generate.ts';
import { loadDemoPayments } from '../../demo/load.ts';
import { paymentsRelation } from '../../load/payments-table.ts';
import { parseTimestamp } from '../../load/values.ts';
import { appOptions, integer } from '../options.ts';

function instant(v: string): Date {
  const t = parseTimestamp(v);
  if (!t.ok) throw new InvalidArgumentError(`end ${t.reason}`);
  return new Date(t.value);
}

export function registerDemoData(program: Command): void {
  program.command('demo-data')
    .description('generate deterministic, realistic demo payments into the payments relation')
    .requiredOption('--users <n>', 'customer population (those who have not bought yet by the end do not appear)', integer(1, 100_000_000))
    .requiredOption('--months <m>', 'calendar months of history, the last one holding --end', integer(1, 600))
    .option('--seed <s>', 'random seed: the same seed, users, months and end give identical rows', integer(0, Number.MAX_SAFE_INTEGER), 1)
    .option('--end <iso>', 'payments are before this instant (default: today 00:00 UTC; pass it to reproduce rows on another day)', instant)
    .option('--append', 'keep the demo rows already there and add what a longer window brings (same seed and users; e.g. --months M+1 --end <end + 1 month>)')
    .option('--relation <name>', 'payments table, name or schema.name (default: models.payments in models.schema from config/segsync.yaml)')
    .addHelpText('after', `
The rows: a Pareto-skewed number of purchases per customer, lognormal amounts around a per-customer level,
customers who arrive during the window and customers who stop for good, November/December peaks.
Demo payment_ids start with "demo-". Without --append, every demo row of the relation is replaced; rows
that are not demo rows are never touched. Each month of each customer is drawn from its own seeded stream, so
with the same seed and window start a longer window (--months M+1 --end one month later) is a superset of
the shorter one, and --append adds just the new month.

Example:
  segsync demo-data --users 5000 --months 24 --seed 7 --end 2025-01-01
  segsync demo-data --users 5000 --months 25 --seed 7 --end 2025-02-01 --append`)
    .action(async (o: { users: number; months: number; seed: number; end?: Date; append?: boolean; relation?: string }, cmd: Command) => {
      const end = o.end ?? defaultEnd();
      const started = Date.now();
      const result = await withApp(appOptions(cmd), (app) => {
        const relation = paymentsRelation(app.config.settings, o.relation);
        return loadDemoPayments(app.warehouse, { relation, users: o.users, months: o.months, seed: o.seed, end, append: o.append })
          .then((r) => ({ ...r, relation: relation.display }));
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${o.append ? 'appended' : 'wrote'} ${result.payments.toLocaleString('en-US')} demo payments of ${result.users.toLocaleString('en-US')} customers to ${result.relation} `
        + `(${windowStart(end, o.months).toISOString().slice(0, 10)} to ${end.toISOString()}, seed ${o.seed}) in ${seconds}s\n`);
    });
}
