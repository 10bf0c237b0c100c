import { Option, type Command } from 'commander';
import { withApp } from '../../app.ts';
import { UsageError } from '../../errors.ts';
import { maskDeep, maskEmails } from '../../log.ts';
import { eventKinds, listEvents } from '../../state/cli-lookups.ts';
import type { Severity } from '../../state/events.ts';
import { ensureState } from '../../sync/run.ts';
import { cut, knownMapping, knownRun, someOf, window } from '../filters.ts';
import { parseFormat, render, table } from '../format.ts';
import { appOptions, integer } from '../options.ts';
import { nearestKey } from '../../config/suggest.ts';

const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error', 'critical'];

/** `segsync events`: what the daemon and the runs recorded for an operator (SLA breaches, blocked runs, rejected reloads, broken mappings). */
export function registerEvents(program: Command): void {
  program.command('events')
    .description('recorded events, newest first: SLA breaches, blocked or skipped runs, rejected reloads, broken mapping files (docs/daemon.md)')
    .option('--mapping <name>', 'only this mapping')
    .option('--kind <kind>', 'only this kind of event (e.g. sla_breach, config_rejected, mapping_broken)')
    .option('--severity <levels>', `only these severities, comma-separated: ${SEVERITIES.join(', ')}`)
    .option('--run <id>', 'only events of this run', integer(1))
    .option('--since <when>', 'at or after (ISO date or date-time)')
    .option('--until <when>', 'before (ISO date or date-time)')
    .option('--limit <n>', 'at most this many', integer(1), 50)
    .addOption(new Option('--format <format>', 'table, json or csv').default('table'))
    .action(async (o: { mapping?: string; kind?: string; severity?: string; run?: number; since?: string; until?: string; limit: number; format: string }, cmd: Command) => {
      const format = parseFormat(o.format);
      const severity = o.severity === undefined ? undefined : someOf('--severity', o.severity, SEVERITIES);
      const when = window(o.since, o.until);
      const rows = await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const schema = app.config.settings.state.schema;
        if (o.mapping !== undefined) await knownMapping(app, o.mapping);
        if (o.run !== undefined) await knownRun(app, o.run);
        if (o.kind !== undefined) {
          const kinds = await eventKinds(app.warehouse.pool, schema);
          if (!kinds.includes(o.kind)) {
            const near = nearestKey(o.kind, kinds);
            throw new UsageError(`no event of kind '${o.kind}' was recorded`, `${near ? `did you mean '${near}'? ` : ''}kinds recorded: ${kinds.join(', ') || '(none yet)'}`);
          }
        }
        return listEvents(app.warehouse.pool, schema, { mapping: o.mapping, kind: o.kind, severity, run: o.run, ...when, limit: o.limit });
      });
      if (format !== 'table') return void process.stdout.write(render(rows.map((r) => maskDeep(r) as Record<string, unknown>), format));
      process.stdout.write(table(rows.map((r) => ({ id: r.id, at: r.at, severity: r.severity, kind: r.kind, mapping: r.mapping, run: r.run_id, message: cut(maskEmails(r.message), 120) }))));
    });
}
