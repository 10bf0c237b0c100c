import { Option, type Command } from 'commander';
import { audit } from '../../audit/trail.ts';
import { cliActor } from '../../state/actor.ts';
import { loadConfig, withApp } from '../../app.ts';
import { ConfigError, describeError, UsageError } from '../../errors.ts';
import { log, maskDeep, maskEmails } from '../../log.ts';
import { listRuns } from '../../state/list-runs.ts';
import { RUN_STATES, stateDiagram } from '../../state/machine.ts';
import { ensureState, openChecked } from '../../sync/run.ts';
import { withRetries } from '../../sync/retry.ts';
import { getMapping, openDestination } from '../../sync/connect.ts';
import { jsonSchemas, markdownReference } from '../reference.ts';
import { parseFormat, render, table } from '../format.ts';
import { counts, cut, knownMapping, someOf } from '../filters.ts';
import { checkSource } from '../../sync/source.ts';
import { appOptions, integer } from '../options.ts';
import { localOrDaemon, query } from '../remote.ts';

/**
 * `segsync validate`: every problem at once. Files first (YAML, schema, cross-references, each with
 * file:line:column); then, when reachable, each mapping's source (columns exist) and destination (fields
 * exist and are writable).
 */
export function registerValidate(program: Command): void {
  program.command('validate [mapping]')
    .description('check config and mappings (file:line:column for each problem), then sources and destinations when reachable; says per mapping what is fine')
    .option('--offline', 'check only the files: no warehouse, no destinations')
    .action(async (only: string | undefined, o: { offline?: boolean }, cmd: Command) => {
      const opts = appOptions(cmd);
      // A problem in the settings file throws (every problem listed); a broken mapping file is listed with
      // its problems and the other mappings are still checked, so the answer says what is fine too.
      const config = await loadConfig({ ...opts, skipBrokenMappings: true });
      const mappings = config.mappings.filter((m) => !only || m.value.name === only);
      const broken = config.broken.filter((b) => !only || b.name === only);
      if (only && !mappings.length && !broken.length) throw new ConfigError([{ file: opts.mappingsDir ?? 'mappings', line: 1, column: 1, path: '', message: `no mapping named '${only}'` }]);
      const fileProblems = broken.flatMap((b) => b.problems);
      if (fileProblems.length) process.stderr.write(`segsync: ${new ConfigError(fileProblems).message}\n`);
      const problems: string[] = [];
      const failedMappings = new Map<string, number>();
      if (!o.offline && mappings.length) {
        await withApp({ ...opts, config }, async (app) => {
          await ensureState(app);
          for (const m of mappings) {
            const before = problems.length;
            try {
              await checkSource(app.warehouse.pool, m, config.settings.models.schema);
            } catch (err) {
              problems.push(describeError(err));
            }
            try {
              const dest = await openDestination(config, m, { log: log(), shared: new Map() });
              try {
                await dest.session.check();
                for (const p of await dest.session.validateMapping()) problems.push(`${m.file}: ${p}`);
              } finally {
                await dest.session.close().catch(() => {});
              }
            } catch (err) {
              problems.push(`${m.file}: destination: ${describeError(err)}`);
            }
            if (problems.length > before) failedMappings.set(m.value.name, problems.length - before);
          }
        });
      }
      if (problems.length) process.stderr.write(`${problems.length} problem(s):\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
      // Per mapping: what is fine, what is not.
      const checked = o.offline ? 'files only' : 'file, source and destination';
      const lines = [
        ...mappings.map((m) => {
          const n = failedMappings.get(m.value.name);
          return n ? `fail    ${m.value.name} (${m.file}): ${n} problem(s) in the source or destination` : `ok      ${m.value.name} (${m.file}): ${checked}`;
        }),
        ...broken.map((b) => `broken  ${b.name} (${b.file}): ${b.problems.length} problem(s) in the file; left out of plan, run and the daemon until fixed`),
      ];
      process.stdout.write(lines.join('\n') + (lines.length ? '\n' : ''));
      if (problems.length || broken.length) {
        process.exitCode = 2;
        return;
      }
      process.stdout.write(`ok: ${mappings.length} mapping(s)${o.offline ? ' (files only)' : ', sources and destinations checked'}\n`);
    });

  program.command('setup <mapping>')
    .description('show (or with --apply create) what the mapping needs on the destination side: properties, fields, formula fields')
    .option('--apply', 'create what is missing where the destination allows it')
    .action(async (name: string, o: { apply?: boolean }, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        // Transient errors (a 503, a reset, a 429) are retried under the engine's policy; setup is idempotent.
        const signal = new AbortController().signal;
        const dest = await openChecked(app, name, { shared: new Map(), signal, check: false });
        try {
          const setup = dest.session.setup?.bind(dest.session);
          if (!setup) {
            process.stdout.write(`destination type '${dest.type}' needs no setup\n`);
            return;
          }
          const report = await withRetries(() => setup(o.apply ?? false), { signal, log: app.log, what: 'destination setup' });
          if (o.apply) {
            await ensureState(app);
            await audit(app.warehouse.pool, app.config.settings.state.schema, { actor: cliActor(), action: 'setup.applied', subject: `mapping:${name}`, details: { destination: dest.type, report: report.lines } });
          }
          process.stdout.write(report.lines.join('\n') + '\n');
        } finally {
          await dest.session.close().catch(() => {});
        }
      });
    });

  program.command('runs')
    .description('recent runs: status, counts, destination, where they ran (host, pid) and with which config (hash)')
    .option('--mapping <name>', 'only this mapping (one the config names, or one with runs in the state)')
    .option('--status <states>', `only runs in these states, comma-separated: ${RUN_STATES.join(', ')}`)
    .option('--limit <n>', 'at most this many', integer(1), 20)
    .option('--held', 'only runs held for approval, with the reason')
    .addOption(new Option('--format <format>', 'table, json or csv').default('table'))
    .action(async (o: { mapping?: string; status?: string; limit: number; held?: boolean; format: string }, cmd: Command) => {
      const format = parseFormat(o.format);
      const status = o.held ? ['held' as const] : o.status === undefined ? undefined : someOf('--status', o.status, RUN_STATES);
      const rows = await localOrDaemon(appOptions(cmd), () => withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        if (o.mapping !== undefined) await knownMapping(app, o.mapping);
        return listRuns(app.warehouse.pool, app.config.settings.state.schema, { ...(o.mapping ? { mapping: o.mapping } : {}), ...(status ? { status } : {}), limit: o.limit });
      }), async (api) => (await api.get<{ runs: Array<Record<string, any>> }>(`/api/v1/runs${query({ mapping: o.mapping, status: status?.join(','), limit: Math.min(o.limit, 500) })}`)).runs
        .map((r) => ({ id: r.id, mapping: r.mapping, actor: r.actor, status: r.status, planned: r.planned, outcome: r.outcome, started_at: new Date(r.startedAt), finished_at: r.finishedAt ? new Date(r.finishedAt) : null, error: r.error, reason: r.reason,
          destination: r.destination ?? '', host: r.host ?? null, pid: r.pid ?? null, config_hash: r.configHash ?? '' })));
      if (format !== 'table') return void process.stdout.write(render(rows.map((r) => maskDeep(r) as Record<string, unknown>), format));
      if (o.held) {
        process.stdout.write(rows.length ? table(rows.map((r) => ({ ...r, reason: cut(r.reason, 100) })), ['id', 'mapping', 'actor', 'started_at', 'reason']) + 'approve: segsync approve <id> --reason "..."; reject: segsync reject <id> --reason "..."\n' : 'no run is held\n');
        return;
      }
      process.stdout.write(table(rows.map((r) => ({
        id: r.id, mapping: r.mapping, destination: r.destination, status: r.status,
        planned: counts(r.planned, ['create', 'update', 'remove', 'unchanged', 'dead']),
        outcome: counts(r.outcome, ['delivered', 'failed', 'deferred', 'in_doubt']),
        started_at: r.started_at, finished_at: r.finished_at, actor: r.actor, host: r.host && r.pid ? `${r.host}:${r.pid}` : r.host ?? '',
        config: r.config_hash.slice(0, 12), error: cut(maskEmails(r.error ?? ''), 80),
      }))));
    });
}

export function registerConfigSchema(program: Command): void {
  program.command('state-diagram')
    .description('print the run and item state machine as Mermaid (generated from src/state/machine.ts; docs/sync.md embeds it)')
    .action(() => {
      process.stdout.write(stateDiagram());
    });

  program.command('config-schema')
    .description('print the configuration reference generated from the schemas: JSON Schema (for editors) or Markdown')
    .option('--format <format>', 'json or markdown', 'json')
    .action(async (o: { format: string }) => {
      if (o.format === 'markdown') process.stdout.write(markdownReference());
      else if (o.format === 'json') process.stdout.write(JSON.stringify(jsonSchemas(), null, 2) + '\n');
      else throw new UsageError(`--format must be json or markdown (got '${o.format}')`);
    });
}
