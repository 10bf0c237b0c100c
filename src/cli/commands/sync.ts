import { Command, Option } from 'commander';
import { audit } from '../../audit/trail.ts';
import { auditPiiView } from '../../audit/access.ts';
import { maskClassified, maskDeep } from '../../pii/mask.ts';
import { withApp, type App } from '../../app.ts';
import { describeError, UsageError } from '../../errors.ts';
import { GUARDRAIL_RULES, type GuardrailRule } from '../../config/mapping.ts';
import { cliActor, formatActor } from '../../state/actor.ts';
import { ackMonitor } from '../../state/monitor-results.ts';
import { runMonitors } from '../../sync/monitors.ts';
import { findReceipts } from '../../state/find-receipts.ts';
import { approveRun, rejectRun } from '../../sync/decide.ts';
import { ensureState, planMapping, reviveDead, runMapping, type RunSummary } from '../../sync/run.ts';
import { reconcileMapping } from '../../sync/reconcile.ts';
import { parseFormat, render, table } from '../format.ts';
import { localOrDaemon, query } from '../remote.ts';
import type { RuleVerdict } from '../../sync/guardrails.ts';
import type { PlanCounts } from '../../state/plan-items.ts';
import { appOptions, integer } from '../options.ts';
import { progressBar } from '../progress.ts';
import { cut, knownMapping, knownRun, oneOf, sentValues, window } from '../filters.ts';

function summaryLines(s: RunSummary): string {
  const c = s.counts;
  const secs = ((s.finishedAt.getTime() - s.startedAt.getTime()) / 1000).toFixed(1);
  return `run ${s.runId} of ${s.mapping}: ${s.status} in ${secs}s\n` +
    `  planned: ${c.create} create, ${c.update} update, ${c.remove} remove, ${c.unchanged} unchanged${c.dead ? `, ${c.dead} dead (not sent)` : ''}${c.resent ? `, ${c.resent} resent (in doubt before)` : ''}\n` +
    `  outcome: ${c.delivered} delivered, ${c.failed} failed, ${c.deferred} deferred${c.in_doubt ? `, ${c.in_doubt} in doubt (resent next run)` : ''}` +
    `${c.followups.done + c.followups.failed + c.followups.deferred ? `\n  follow-ups: ${c.followups.done} done, ${c.followups.failed} failed, ${c.followups.deferred} pending (limit)` : ''}${s.error ? `\n  note: ${s.error}` : ''}\n`;
}

/**
 * SIGINT/SIGTERM stop the command cleanly: the current batch is recorded and, with --all, no further mapping
 * starts (a supervisor's SIGKILL would follow otherwise, mid-delivery).
 */
function stopOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { signal: controller.signal, dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); } };
}

/** One run with a progress bar. */
async function runOne(app: App, name: string, opts: { wait?: boolean; failedOnly?: boolean; allow?: GuardrailRule[]; reason?: string; signal?: AbortSignal }): Promise<RunSummary> {
  const bar = progressBar(name);
  const own = opts.signal ? null : stopOnSignals();
  try {
    return await runMapping(app, name, {
      wait: opts.wait ?? false, actor: cliActor(), signal: opts.signal ?? own!.signal, failedOnly: opts.failedOnly ?? false,
      ...(opts.allow ? { allow: opts.allow, allowReason: opts.reason } : {}),
      onPlanned: (p) => bar.start(p.create + p.update + p.remove),
      onProgress: (p) => bar.update(p.done),
    });
  } finally {
    bar.stop();
    own?.dispose();
  }
}

const RECEIPT_STATUSES = ['delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'] as const;
const RECEIPT_OPS = ['create', 'update', 'remove'] as const;

function exitFor(s: RunSummary): number {
  return s.status === 'succeeded' ? 0 : s.status === 'deferred' ? 3 : s.status === 'held' ? 4 : 1;
}

/** `--allow rule` (repeatable): a guardrail name, checked. */
function allowRule(value: string, previous: GuardrailRule[] = []): GuardrailRule[] {
  if (!(GUARDRAIL_RULES as readonly string[]).includes(value)) throw new UsageError(`--allow '${value}' is not a guardrail`, `one of: ${GUARDRAIL_RULES.join(', ')}`);
  return [...previous, value as GuardrailRule];
}

function heldLines(s: RunSummary): string {
  return `run ${s.runId} of ${s.mapping}: held for approval (nothing was sent)\n  ${s.error ?? ''}\n` +
    `  see: segsync runs --held; then segsync approve ${s.runId} --reason "..." or segsync reject ${s.runId} --reason "..."\n`;
}

export function registerSync(program: Command): void {
  program.command('plan <mapping>')
    .description('dry run: what a run would send (counts per op, samples before -> after, segment transitions) and how each guardrail judges it; writes and sends nothing')
    .addOption(new Option('--format <format>', 'table or json').default('table'))
    .option('--samples <n>', 'sample rows per op', integer(0), 3)
    .option('--check-destination', 'also check the mapping against the destination schema (needs credentials)')
    .action(async (name: string, o: { format: string; samples: number; checkDestination?: boolean }, cmd: Command) => {
      const format = parseFormat(o.format);
      const plan = await localOrDaemon(appOptions(cmd), () => withApp(appOptions(cmd), (app) => planMapping(app, name, { samples: o.samples, checkDestination: o.checkDestination ?? false })), async (api) => {
        if (o.checkDestination) throw new UsageError('--check-destination cannot be asked of a running daemon\'s API', 'run it while no daemon holds the embedded database');
        const p = await api.post<{ mapping: string; counts: PlanCounts & { source: number }; samples: Array<{ key: string; op: string; before: unknown; after: unknown }>; transitions: Array<{ from: string; to: string; count: number }>; transitionField: string | null; guardrails: RuleVerdict[] }>(`/api/v1/mappings/${encodeURIComponent(name)}/runs`, { dryRun: true });
        return { mapping: p.mapping, counts: p.counts, detail: { samples: p.samples, transitions: p.transitions, transitionField: p.transitionField }, guardrails: p.guardrails, destinationProblems: [] as string[] };
      });
      if (format === 'json') return void process.stdout.write(JSON.stringify(plan, null, 2) + '\n');
      const c = plan.counts;
      let out = `plan for ${plan.mapping} (${c.source} source records)\n` +
        table([{ create: c.create, update: c.update, remove: c.remove, unchanged: c.unchanged, dead: c.dead }]);
      if (plan.detail.transitions.length) out += `\n${plan.detail.transitionField} transitions:\n` + plan.detail.transitions.map((t) => `  ${t.from} -> ${t.to}: ${t.count}`).join('\n') + '\n';
      if (plan.detail.samples.length) out += `\nsamples:\n` + table(plan.detail.samples.map((s) => ({ op: s.op, key: s.key, before: s.before, after: s.after })));
      if (plan.guardrails.length) out += `\nguardrails:\n` + plan.guardrails.map((v) => `  ${v.verdict.padEnd(4)} ${v.rule}: ${v.detail}`).join('\n') + '\n';
      if (plan.destinationProblems.length) out += `\ndestination problems:\n${plan.destinationProblems.map((p) => `  - ${p}`).join('\n')}\n`;
      process.stdout.write(out);
    });

  program.command('run [mapping]')
    .description('deliver what changed since the last confirmed delivery; exit 1 when records failed, 3 when the destination budget deferred the rest, 4 when a guardrail held the run for approval')
    .option('--all', 'run every mapping, one after the other; each is reported, a failing one does not stop the others, exit non-zero if any failed')
    .option('--wait', 'wait for a run of the same mapping in another process to finish instead of exiting')
    .option('--allow <rule>', `let this one run through a guardrail (repeatable; with --reason): ${GUARDRAIL_RULES.join(', ')}`, allowRule)
    .option('--reason <text>', 'why a guardrail is allowed for this run (recorded with your user name)')
    .action(async (name: string | undefined, o: { all?: boolean; wait?: boolean; allow?: GuardrailRule[]; reason?: string }, cmd: Command) => {
      if (!name && !o.all) throw new UsageError('name a mapping or pass --all');
      if (name && o.all) throw new UsageError('name a mapping or pass --all, not both');
      if (o.allow && o.all) throw new UsageError('--allow is for one run of one mapping, not --all');
      if (o.allow && !o.reason?.trim()) throw new UsageError('--allow needs --reason "why this change is right"');
      // One app (config, warehouse) for every run: the mappings run are the ones the config listed.
      process.exitCode = await withApp(appOptions(cmd), async (app) => {
        if (!o.all) {
          const s = await runOne(app, name!, { wait: o.wait ?? false, ...(o.allow ? { allow: o.allow, reason: o.reason! } : {}) });
          process.stdout.write(s.status === 'held' ? heldLines(s) : summaryLines(s));
          return exitFor(s);
        }
        // Every mapping runs and is reported; one that cannot run (credentials, a missing column) is a failed
        // run row and a line here, never a reason to skip the mappings after it.
        let exit = 0;
        const failed: string[] = [];
        // A mapping left out because its file is broken is reported (warned at load) and counted, exit 2.
        for (const b of app.config.broken) {
          process.stdout.write(`${b.name}: not run: ${b.file} has ${b.problems.length} problem(s) (segsync validate)\n`);
          failed.push(`${b.name} (broken file)`);
          exit = Math.max(exit, 2);
        }
        const stop = stopOnSignals();
        try {
        for (const n of app.config.mappings.map((m) => m.value.name)) {
          if (stop.signal.aborted) {
            process.stdout.write(`${n}: not started (stopped by a signal)\n`);
            failed.push(`${n} (not started)`);
            exit = Math.max(exit, 1);
            continue;
          }
          try {
            const s = await runOne(app, n, { wait: o.wait ?? false, signal: stop.signal });
            process.stdout.write(s.status === 'held' ? heldLines(s) : summaryLines(s));
            exit = Math.max(exit, exitFor(s));
            if (s.status !== 'succeeded') failed.push(`${n} (${s.status})`);
          } catch (err) {
            process.stdout.write(`${n}: could not run: ${describeError(err)}\n`);
            exit = Math.max(exit, 1);
            failed.push(`${n} (failed)`);
          }
        }
        } finally {
          stop.dispose();
        }
        const total = app.config.mappings.length + app.config.broken.length;
        process.stdout.write(failed.length ? `${failed.length} of ${total} mapping(s) did not succeed: ${failed.join(', ')}\n` : `all ${total} mapping(s) succeeded\n`);
        return exit;
      });
    });

  program.command('retry <mapping>')
    .description('run now for the records whose last delivery failed; --dead also revives records marked dead')
    .option('--dead', 'clear the dead mark (records that failed dead_after runs in a row) first')
    .action(async (name: string, o: { dead?: boolean }, cmd: Command) => {
      process.exitCode = await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        await audit(app.warehouse.pool, app.config.settings.state.schema, { actor: cliActor(), action: 'run.retry', subject: `mapping:${name}`, details: { dead: o.dead ?? false } });
        if (o.dead) process.stdout.write(`${await reviveDead(app, name)} dead record(s) re-queued\n`);
        const s = await runOne(app, name, { failedOnly: !o.dead });
        process.stdout.write(summaryLines(s));
        return exitFor(s);
      });
    });

  program.command('reconcile <mapping>')
    .description('read delivered records back from the destination: verified, drifted, missing or unverifiable')
    .option('--sample <n>', 'check a random sample of this many delivered records', integer(1), 100)
    .option('--all', 'check every delivered record')
    .option('--repair', 'queue drifted and missing records for the next run')
    .addOption(new Option('--format <format>', 'table or json').default('table'))
    .action(async (name: string, o: { sample: number; all?: boolean; repair?: boolean; format: string }, cmd: Command) => {
      const s = await withApp(appOptions(cmd), async (app) => {
        const r = await reconcileMapping(app, name, { sample: o.sample, all: o.all ?? false, repair: o.repair ?? false });
        if (o.repair) await audit(app.warehouse.pool, app.config.settings.state.schema, { actor: cliActor(), action: 'reconcile.repair', subject: `mapping:${r.mapping}`, details: { checked: r.checked, counts: r.counts, repaired: r.repaired } });
        return r;
      });
      process.exitCode = s.counts.drifted + s.counts.missing > 0 ? 1 : 0;
      if (parseFormat(o.format) === 'json') return void process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      process.stdout.write(`reconciled ${s.checked} record(s) of ${s.mapping}\n` + table([s.counts]) +
        (s.examples.length ? `\nexamples:\n${table(s.examples.map((e) => ({ key: e.key, status: e.status, fields: e.driftedFields?.join(',') ?? '' })))}` : '') +
        (o.repair ? `\n${s.repaired} record(s) queued for the next run\n` : ''));
    });

  program.command('approve <run>')
    .description('approve a held run: its plan, exactly as held, is delivered now (planned and judged again if the model changed since)')
    .requiredOption('--reason <text>', 'why the change is right (recorded with your user name)')
    .option('--mapping <name>', 'refuse unless the run is of this mapping')
    .option('--no-deliver', 'only approve; the next run of the mapping (or the daemon) delivers it')
    .action(async (run: string, o: { reason: string; deliver: boolean; mapping?: string }, cmd: Command) => {
      const id = integer(1)(run);
      process.exitCode = await withApp(appOptions(cmd), async (app) => {
        const r = await approveRun(app, id, o.reason, cliActor(), {
          ...(o.mapping === undefined ? {} : { mapping: o.mapping }),
          ...(o.deliver ? { deliver: (mapping: string) => {
            process.stdout.write(`run ${id} of ${mapping} approved by ${formatActor(cliActor())}\n`);
            return runOne(app, mapping, {});
          } } : {}),
        });
        if (!r.summary) {
          process.stdout.write(`run ${id} of ${r.mapping} approved by ${r.by}\n`);
          return 0;
        }
        const s = r.summary;
        process.stdout.write(s.status === 'held' ? heldLines(s) : summaryLines(s));
        return exitFor(s);
      });
    });

  program.command('reject <run>')
    .description('reject a held run: nothing of it is sent, the run is closed; the mapping plans afresh next time')
    .requiredOption('--reason <text>', 'why (recorded with your user name)')
    .option('--mapping <name>', 'refuse unless the run is of this mapping')
    .action(async (run: string, o: { reason: string; mapping?: string }, cmd: Command) => {
      const id = integer(1)(run);
      await withApp(appOptions(cmd), async (app) => {
        const r = await rejectRun(app, id, o.reason, cliActor(), o.mapping);
        process.stdout.write(`run ${id} of ${r.mapping} rejected by ${r.by}; nothing was sent\n`);
      });
    });

  program.command('receipts')
    .description('per-record delivery receipts, newest run first: the values sent (before -> after), the destination, the answer and the latest reconciliation verdict')
    .option('--mapping <name>', 'only this mapping (one the config names, or one with runs in the state)')
    .option('--key <key>', 'only this record key')
    .option('--run <id>', 'only this run', integer(1))
    .option('--status <status>', `one of: ${RECEIPT_STATUSES.join(', ')}`)
    .option('--op <op>', `one of: ${RECEIPT_OPS.join(', ')}`)
    .option('--since <when>', 'recorded at or after (ISO date or date-time, UTC unless an offset is given)')
    .option('--until <when>', 'recorded before (ISO date or date-time)')
    .option('--limit <n>', 'at most this many rows', integer(1), 100)
    .addOption(new Option('--format <format>', 'table, json or csv').default('table'))
    .option('--show-pii', 'show keys unmasked (needs --reason; the view is recorded in the audit trail)')
    .option('--reason <text>', 'why you need to see personal data unmasked')
    .action(async (o: { mapping?: string; key?: string; run?: number; status?: string; op?: string; since?: string; until?: string; limit: number; format: string; showPii?: boolean; reason?: string }, cmd: Command) => {
      // Every filter value is checked before anything is read: a typo is an error naming the allowed values.
      const format = parseFormat(o.format);
      const status = o.status === undefined ? undefined : oneOf('--status', o.status, RECEIPT_STATUSES);
      const op = o.op === undefined ? undefined : oneOf('--op', o.op, RECEIPT_OPS);
      const when = window(o.since, o.until);
      if (o.showPii && !o.reason?.trim()) throw new UsageError('--show-pii needs --reason "..." (the view is recorded in the audit trail)');
      const rows: Record<string, unknown>[] = await localOrDaemon(appOptions(cmd), () => withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        if (o.mapping !== undefined) await knownMapping(app, o.mapping);
        if (o.run !== undefined) {
          const of = await knownRun(app, o.run);
          if (o.mapping !== undefined && of !== o.mapping) throw new UsageError(`run ${o.run} is a run of ${of}, not of ${o.mapping}`);
        }
        const found = await findReceipts(app.warehouse.pool, app.config.settings.state.schema, { mapping: o.mapping, key: o.key, run: o.run, status, op, ...when, limit: o.limit });
        const objectOf = new Map(app.config.mappings.map((m) => [m.value.name, m.value.destination.object]));
        const withObject = found.map((r): Record<string, unknown> => ({ ...r, object: objectOf.get(String(r.mapping)) ?? null }));
        if (o.showPii) {
          await auditPiiView(app.warehouse.pool, app.config.settings.state.schema, { actor: cliActor(), subject: `receipts:${o.mapping ?? '*'}`, reason: o.reason, keys: found.map((r) => String(r.key)), fields: ['key'] });
          return withObject;
        }
        // Keys are personal data when the mapping says so (source.key_pii) or look like it: masked (docs/security.md).
        const keyClass = new Map(app.config.mappings.map((m) => [m.value.name, m.value.source.key_pii]));
        return withObject.map((r) => maskDeep({ ...r, key: maskClassified(r.key as string, keyClass.get(String(r.mapping))) }) as Record<string, unknown>);
      }), async (api) => {
        // The daemon's API shows what the API shows: masked (unmasked views are not offered through it).
        if (o.showPii) throw new UsageError('--show-pii reads the database itself: stop the daemon holding the embedded database, or point segsync at a PostgreSQL server');
        return (await api.get<{ receipts: Record<string, unknown>[] }>(`/api/v1/receipts${query({ mapping: o.mapping, key: o.key, run: o.run, status, limit: Math.min(o.limit, 500) })}`)).receipts;
      });
      if (format === 'table') {
        process.stdout.write(table(rows.map((r) => ({
          run_id: r.run_id, mapping: r.mapping, destination: `${String(r.connection ?? '')}${r.object ? `/${String(r.object)}` : ''}`, key: r.key, op: r.op, status: r.status,
          sent: cut(sentValues(String(r.op), (r.before ?? null) as Record<string, unknown> | null, (r.after ?? null) as Record<string, unknown> | null), 70),
          attempt: r.attempt, destination_id: r.destination_id, error: cut([r.error_code, r.error_message].filter(Boolean).join(': '), 60), reconcile: r.reconcile_status, recorded_at: r.recorded_at,
        }))));
        return;
      }
      process.stdout.write(render(rows.map((r) => maskDeep(r) as Record<string, unknown>), format));
    });
}

/** `segsync monitors`: the data-quality monitors, evaluated now; `monitors ack <name>`: acknowledge a critical one. */
export function registerMonitors(program: Command): void {
  const monitors = program.command('monitors')
    .description('evaluate the data-quality monitors now (latency, completeness, model anomalies; docs/monitors.md) and store the results; exit 1 when one is critical and not acknowledged')
    .addOption(new Option('--format <format>', 'table or json').default('table'))
    .option('--monitor <name>', 'only this monitor')
    .action(async (o: { format: string; monitor?: string }, cmd: Command) => {
      const format = parseFormat(o.format);
      await withApp(appOptions(cmd), async (app) => {
        if (!app.config.settings.monitors.length) {
          process.stdout.write('no monitors configured (monitors: in config/segsync.yaml, see docs/monitors.md)\n');
          return;
        }
        if (o.monitor && !app.config.settings.monitors.some((m) => m.name === o.monitor)) {
          throw new UsageError(`no monitor named '${o.monitor}'`, `monitors: ${app.config.settings.monitors.map((m) => m.name).join(', ')}`);
        }
        const results = await runMonitors(app, o.monitor ? { only: o.monitor } : {});
        process.exitCode = results.some((r) => r.severity === 'critical' && !r.ackedAt) ? 1 : 0;
        if (format === 'json') return void process.stdout.write(JSON.stringify(results, null, 2) + '\n');
        process.stdout.write(table(results.map((r) => ({ monitor: r.monitor, type: r.type, severity: r.severity + (r.ackedAt ? ' (acknowledged)' : ''), detail: r.detail })), ['monitor', 'type', 'severity', 'detail']));
      });
    });
  monitors.command('ack <name>')
    .description('acknowledge a monitor\'s critical result: the mappings it blocks run again; it stays acknowledged while it stays critical')
    .requiredOption('--reason <text>', 'why the data is fine to sync anyway (recorded with your user name)')
    .action(async (name: string, o: { reason: string }, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        if (!app.config.settings.monitors.some((m) => m.name === name)) throw new UsageError(`no monitor named '${name}'`, `monitors: ${app.config.settings.monitors.map((m) => m.name).join(', ') || '(none)'}`);
        await ensureState(app);
        if (!(await ackMonitor(app.warehouse.pool, app.config.settings.state.schema, name, cliActor(), o.reason))) throw new UsageError(`monitor '${name}' has no result yet`, 'segsync monitors evaluates it');
        process.stdout.write(`monitor ${name} acknowledged by ${formatActor(cliActor())}\n`);
      });
    });
}
