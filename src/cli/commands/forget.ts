import type { Command } from 'commander';
import { withApp } from '../../app.ts';
import { forget, retryPending } from '../../erasure/forget.ts';
import { UsageError } from '../../errors.ts';
import { cliActor } from '../../state/actor.ts';
import { table } from '../format.ts';
import { appOptions } from '../options.ts';

/** `segsync forget <key> --reason ...` and `segsync forget --pending` (docs/security.md). */
export function registerForget(program: Command): void {
  program.command('forget [key]')
    .description('erase a person: suppressed so they are never sent again, payloads in the ledger nulled, erased in every destination of the mappings (exit 1 while a destination is not done)')
    .option('--reason <text>', 'why (the request\'s reference; kept in the audit trail)')
    .option('--pending', 'retry the open erasures instead; raises erasure_overdue for those past privacy.erasure_sla')
    .option('--json', 'the report as JSON')
    .action(async (key: string | undefined, o: { reason?: string; pending?: boolean; json?: boolean }, cmd: Command) => {
      if (o.pending) {
        if (key) throw new UsageError('forget --pending takes no key');
        await withApp(appOptions(cmd), async (app) => {
          const r = await retryPending(app, cliActor());
          process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : r.length ? table(r.map((x) => ({ erasure: x.erasureId, done: x.done, overdue: x.overdue }))) + '\n' : 'no open erasures\n');
          if (r.some((x) => !x.done)) process.exitCode = 1;
        });
        return;
      }
      if (!key) throw new UsageError('forget: give the record key of the person to erase (or --pending)');
      if (!o.reason?.trim()) throw new UsageError('forget: --reason "..." is required (the request\'s reference; it is kept in the audit trail)');
      await withApp(appOptions(cmd), async (app) => {
        const r = await forget(app, key, { reason: o.reason!, actor: cliActor() });
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else {
          process.stdout.write(`erasure ${r.erasureId} (${r.pseudonym}): ${r.done ? 'done everywhere' : `open, due by ${r.dueAt.toISOString()}`}; ${r.nulled} ledger row(s) nulled; suppressed from every future run\n`);
          process.stdout.write(table(r.steps.map((s) => ({ mapping: s.mapping, destination: `${s.connection} (${s.type})`, status: s.status, request_id: s.requestId ?? '', detail: s.detail ?? '' }))) + '\n');
        }
        if (!r.done) process.exitCode = 1;
      });
    });
}
