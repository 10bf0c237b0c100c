import { Command, Option } from 'commander';
import { withApp } from '../../app.ts';
import { UsageError } from '../../errors.ts';
import { buildModels, type BuildSummary } from '../../models/index.ts';
import { parseFormat, table } from '../format.ts';
import { appOptions } from '../options.ts';
import { progressBar } from '../progress.ts';

const AS_OF = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * An ISO-8601 instant for --as-of: a date (midnight) or a date and time, with `Z` or an offset; without one
 * it is UTC, like every segsync session. Impossible dates (2023-02-30) are refused, not rolled over.
 */
export function parseAsOf(text: string): Date {
  const m = AS_OF.exec(text.trim());
  const bad = () => new UsageError(`--as-of must be an ISO timestamp such as 2011-12-11 or 2011-12-11T00:00:00Z (got '${text}')`);
  if (!m) throw bad();
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}.${(frac + '000').slice(0, 3)}${zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`;
  const date = new Date(iso);
  const utcDay = new Date(`${y}-${mo}-${d}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || utcDay.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) throw bad();
  return date;
}

function summaryText(s: BuildSummary, schema: string): string {
  const secs = (s.durationMs / 1000).toFixed(1);
  // "customers" everywhere a person reads (the demo, the summaries); `users` stays the JSON field name.
  const rows = Object.entries(s.segments).map(([segment, customers]) => ({
    segment, customers, share: s.users ? `${((100 * customers) / s.users).toFixed(1)}%` : '',
  }));
  return `models built in ${schema} as of ${s.asOf.toISOString()}: ${s.mode} build in ${secs}s (${s.reason})\n` +
    `  customers: ${s.users}, snapshots: ${s.snapshots} (${s.snapshotsRecomputed} recomputed)\n\n` +
    (rows.length ? table(rows, ['segment', 'customers', 'share']) : '(no customers: the current model is empty)\n');
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('the RFM models (rfm_segments_hist, rfm_current_segments) in models.schema');
  models.command('build')
    .description('build the RFM models from the payments relation (models.payments); incremental: only the snapshots that can have changed are recomputed')
    .option('--as-of <timestamp>', 'the "current" instant, ISO 8601 (UTC unless it has an offset); default now')
    .option('--full-refresh', 'recompute every snapshot instead of only those that can have changed')
    .option('--allow-future-as-of', 'build as of an instant after now (refused otherwise: those snapshots have no payments yet)')
    .option('--allow-earlier-as-of', 'build as of an instant before the last build\'s (refused otherwise: it undoes the months after it)')
    .addOption(new Option('--format <format>', 'summary as table or json').default('table'))
    .addHelpText('after', `
Snapshots: every month start at or before --as-of, plus --as-of itself. A month-start row is the state at
that instant (2023-04-01 = the end of March). The build is one transaction: if it fails, the previous models
stay. An --as-of after now, or before the last build's as-of, is refused (exit 2) unless --allow-future-as-of
or --allow-earlier-as-of says it is meant. Exit status: 0 built, 1 failed (for example a payments relation
without a needed column), 2 usage.

Examples:
  segsync models build
  segsync models build --as-of 2011-12-11
  segsync models build --full-refresh --format json`)
    .action(async (o: { asOf?: string; fullRefresh?: boolean; allowFutureAsOf?: boolean; allowEarlierAsOf?: boolean; format: string }, cmd: Command) => {
      const asOf = o.asOf === undefined ? new Date() : parseAsOf(o.asOf);
      const format = parseFormat(o.format);
      if (format === 'csv') throw new UsageError('--format must be table or json for models build');
      const { summary, schema } = await withApp(appOptions(cmd), async (app) => {
        const { schema, payments } = app.config.settings.models;
        const bar = progressBar('models');
        const interactive = process.stderr.isTTY === true;
        try {
          const built = await buildModels(app.warehouse.pool, {
            schema, payments, asOf, fullRefresh: o.fullRefresh === true, allowFutureAsOf: o.allowFutureAsOf === true, allowEarlierAsOf: o.allowEarlierAsOf === true, log: app.log,
            onProgress: (p) => {
              if (!interactive) return void app.log.info({ step: p.step, steps: p.steps }, `models: ${p.label}`);
              if (p.step === 1) bar.start(p.steps);
              bar.update(p.step);
            },
          });
          return { summary: built, schema };
        } finally {
          bar.stop();
        }
      });
      if (format === 'json') return void process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      process.stdout.write(summaryText(summary, schema) + summary.warnings.map((w) => `warning: ${w}\n`).join(''));
    });
}
