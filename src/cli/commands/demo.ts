import type { Command } from 'commander';
import { withApp, type App } from '../../app.ts';
import { addUtcMonths, startOfUtcMonth } from '../../demo/generate.ts';
import { DEMO_PREFIX, loadDemoPayments } from '../../demo/load.ts';
import { UsageError } from '../../errors.ts';
import { ensurePaymentsTable, paymentsRelation, type Relation } from '../../load/payments-table.ts';
import { buildModels } from '../../models/index.ts';
import { AsOfMovesBackError } from '../../models/build.ts';
import { getMapping } from '../../sync/connect.ts';
import { runMapping } from '../../sync/run.ts';
import { segmentField, segmentTransitions } from '../../state/plan-detail.ts';
import { table } from '../format.ts';
import { appOptions, integer } from '../options.ts';

const DEMO_MAPPING = 'rfm-to-file';
/** Months between the end of the first run's demo data and the start of this month (room for --next-month). */
const DEMO_SPARE_MONTHS = 3;
/** Segment moves listed after a sync; the rest are counted ("and N more"). */
const MOVES_SHOWN = 8;

/** The window of demo data already loaded: [start, end) in whole months, or null when there is none. */
async function demoWindow(app: App, relation: Relation): Promise<{ start: Date; end: Date; months: number } | null> {
  const { rows } = await app.warehouse.pool.query<{ min: Date | null; max: Date | null }>(
    `SELECT min(payment_date) AS min, max(payment_date) AS max FROM ${relation.sql} WHERE payment_id LIKE $1`, [`${DEMO_PREFIX}%`]);
  const r = rows[0];
  if (!r?.min || !r.max) return null;
  const start = startOfUtcMonth(r.min);
  const end = addUtcMonths(startOfUtcMonth(r.max), 1);
  const months = (end.getUTCFullYear() - start.getUTCFullYear()) * 12 + end.getUTCMonth() - start.getUTCMonth();
  return { start, end, months };
}

/**
 * The main job on whatever warehouse is configured (the embedded one by default): demo payments, the RFM
 * models, and the rfm-to-file sync. Idempotent: run it again and nothing is delivered; --next-month adds one
 * month of data and delivers only the customers whose mapped fields changed.
 */
export function registerDemo(program: Command): void {
  program.command('demo')
    .description('the whole flow, end to end: demo payments -> RFM models -> rfm-to-file sync (embedded database unless one is configured)')
    .option('--users <n>', 'customers in the demo population (first run only)', integer(1), 2000)
    .option('--months <m>', 'months of history (first run only)', integer(1), 24)
    .option('--seed <s>', 'random seed of the demo data', integer(1), 7)
    .option('--next-month', 'add one more month of payments after the data already there, then rebuild and sync')
    .addHelpText('after', `
First run: generates --months of payments for --users customers ending three months before the start of
this month (so --next-month never writes a payment after today; a fourth --next-month is refused),
builds rfm_segments_hist and rfm_current_segments as of that instant, and delivers every customer's segment
to out/rfm-to-file/ as NDJSON batch files with manifests.
Run it again: the data and the models are unchanged, so the sync delivers nothing.
With --next-month: one more month of payments arrives, the models refresh incrementally, and only the
customers whose mapped fields changed are delivered. Then try: segsync receipts --mapping rfm-to-file,
segsync reconcile rfm-to-file --all, segsync plan rfm-to-file.`)
    .action(async (o: { users: number; months: number; seed: number; nextMonth?: boolean }, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        // The demo prints its own account of each step; logs are for warnings unless asked for.
        if (!process.env.SEGSYNC_LOG_LEVEL) app.log.level = 'warn';
        if (!app.config.mappings.some((m) => m.value.name === DEMO_MAPPING)) {
          throw new UsageError(`the demo delivers through mappings/${DEMO_MAPPING}.yaml, which is not there`, 'restore it from the repository');
        }
        const out = (s: string) => process.stdout.write(s);
        out(`warehouse: ${app.warehouse.description}\n`);
        const relation = await ensurePaymentsTable(app.warehouse.pool, paymentsRelation(app.config.settings));
        let window = await demoWindow(app, relation);
        if (!window) {
          // The demo's payments end DEMO_SPARE_MONTHS before this month, so --next-month can add months without
          // ever writing a payment after today (and the models are never built as of the future).
          const end = addUtcMonths(startOfUtcMonth(new Date()), -DEMO_SPARE_MONTHS);
          const loaded = await loadDemoPayments(app.warehouse, { relation, users: o.users, months: o.months, seed: o.seed, end });
          out(`1. demo data: ${loaded.payments.toLocaleString('en-US')} payments from ${loaded.users.toLocaleString('en-US')} customers, ${o.months} months to ${end.toISOString().slice(0, 10)}\n`);
          window = { start: addUtcMonths(end, -o.months), end, months: o.months };
        } else if (o.nextMonth) {
          const end = addUtcMonths(window.end, 1);
          if (end.getTime() > Date.now()) {
            throw new UsageError(`the demo data already reaches ${window.end.toISOString().slice(0, 10)}: one more month would put payments after today`, 'start over with rm -rf .segsync out (this deletes the demo\'s ledger, see README), or wait for the month to end');
          }
          const loaded = await loadDemoPayments(app.warehouse, { relation, users: o.users, months: window.months + 1, seed: o.seed, end, append: true });
          out(`1. demo data: one more month to ${end.toISOString().slice(0, 10)} (${loaded.payments.toLocaleString('en-US')} payments added)\n`);
          window = { start: window.start, end, months: window.months + 1 };
        } else {
          out(`1. demo data: already loaded, ${window.months} months to ${window.end.toISOString().slice(0, 10)} (--next-month adds one)\n`);
        }

        const buildAt = (asOf: Date) => buildModels(app.warehouse.pool, { schema: app.config.settings.models.schema, payments: app.config.settings.models.payments, asOf, log: app.log });
        // Never back: after a `models build` as of now, the demo builds as of that build's instant.
        const build = await buildAt(window.end).catch((err: unknown) => {
          if (err instanceof AsOfMovesBackError) return buildAt(err.previous);
          throw err;
        });
        out(`2. models (${build.mode}, as of ${build.asOf.toISOString()}): ${build.users.toLocaleString('en-US')} customers, ${build.snapshots} snapshots, ${build.snapshotsRecomputed} recomputed in ${(build.durationMs / 1000).toFixed(1)}s\n`);
        for (const w of build.warnings) out(`   warning: ${w}\n`);
        out(table(Object.entries(build.segments).sort((a, b) => b[1] - a[1]).map(([segment, customers]) => ({ segment, customers }))).trimEnd().replace(/^/gm, '   ') + '\n');

        const run = await runMapping(app, DEMO_MAPPING);
        const c = run.counts;
        out(`3. sync ${DEMO_MAPPING} (run ${run.runId}): ${run.status}: ${c.create} created, ${c.update} updated, ${c.remove} removed, ${c.unchanged} unchanged -> ${c.delivered} delivered, ${c.failed} failed\n`);
        if (run.status === 'held') out(`   held for approval, nothing was sent: ${run.error}\n   decide: segsync runs --held; segsync approve ${run.runId} --reason "..." or segsync reject ${run.runId} --reason "..."\n`);
        else if (c.delivered === 0 && c.failed === 0) out('   nothing changed since the last confirmed delivery, so nothing was sent\n');
        const field = segmentField(getMapping(app.config, DEMO_MAPPING).value);
        const moves = field === null ? [] : await segmentTransitions(app.warehouse.pool, app.config.settings.state.schema, run.runId, field, 1000);
        const shown = moves.filter((m) => m.from !== '(new)' && m.to !== '(removed)');
        if (shown.length) out(`   segment moves: ${shown.slice(0, MOVES_SHOWN).map((m) => `${m.from} -> ${m.to}: ${m.count}`).join('; ')}${shown.length > MOVES_SHOWN ? `; and ${shown.length - MOVES_SHOWN} more (segsync receipts --mapping ${DEMO_MAPPING} --op update)` : ''}\n`);
        out(`   files: out/${DEMO_MAPPING}/ (NDJSON batches, each with a .manifest.json)\n`);
        out(`next: run it again (nothing to deliver), or: segsync demo --next-month; segsync receipts --mapping ${DEMO_MAPPING} --limit 5; segsync reconcile ${DEMO_MAPPING} --all\n`);
        if (run.status !== 'succeeded') process.exitCode = 1;
      });
    });
}
