import { Command, Option } from 'commander';
import { withApp } from '../../app.ts';
import { senderFor } from '../../alerts/channels/index.ts';
import { buildNotification, dashboardLink } from '../../alerts/notification.ts';
import { durationMs } from '../../daemon/duration.ts';
import { quoteIdent } from '../../db/sql.ts';
import { describeError, UsageError } from '../../errors.ts';
import { maskDeep } from '../../log.ts';
import { cliActor, formatActor } from '../../state/actor.ts';
import { listDeliveries, listGroups, listSilences } from '../../state/alerts.ts';
import { createSilence, endSilence, silenceProblem } from '../../alerts/silences.ts';
import { ensureState } from '../../sync/run.ts';
import { parseFormat, table } from '../format.ts';
import { appOptions } from '../options.ts';

function jsonOrTable(value: string): 'json' | 'table' {
  const f = parseFormat(value);
  if (f === 'csv') throw new UsageError('--format must be table or json');
  return f;
}

function deliveriesText(ds: Array<{ channel: string; action: string; status: string; attempts: number }>): string {
  return ds.map((d) => `${d.channel}:${d.action}:${d.status}${d.status === 'sent' ? '' : `(${d.attempts})`}`).join(' ');
}

/** `segsync alerts` (incidents and their deliveries, `alerts test <channel>`) and `segsync silence add|list|expire`. */
export function registerAlerts(program: Command): void {
  const alerts = program.command('alerts')
    .description('open alert incidents and the state of their deliveries (docs/alerts.md); the daemon sends them')
    .addOption(new Option('--format <format>', 'table or json').default('table'))
    .option('--recent <duration>', 'also incidents closed within this long, e.g. 24h')
    .addHelpText('after', `
Each incident is a group of events of one kind about one mapping (or monitor, destination, model). Its
deliveries read channel:action:status, with the attempts so far when not sent. A delivery that failed for good
is listed under "failed deliveries". Exit status: 0, 2 usage.

Examples:
  segsync alerts
  segsync alerts --format json --recent 24h
  segsync alerts test ops-slack`)
    .action(async (o: { format: string; recent?: string }, cmd: Command) => {
      const format = jsonOrTable(o.format);
      if (o.recent !== undefined && !/^\d+(ms|s|m|h|d)$/.test(o.recent)) throw new UsageError(`--recent must be a duration such as 24h (got '${o.recent}')`);
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const s = quoteIdent(app.config.settings.state.schema);
        // Messages quote what the events said: masked like everything shown to people.
        const groups = maskDeep(await listGroups(app.warehouse.pool, s, { closedWithinMs: o.recent ? durationMs(o.recent) : 0 })) as Awaited<ReturnType<typeof listGroups>>;
        const failed = maskDeep(await listDeliveries(app.warehouse.pool, s, { status: 'failed' })) as Awaited<ReturnType<typeof listDeliveries>>;
        if (format === 'json') {
          process.stdout.write(JSON.stringify({ incidents: groups, failed: failed.map(({ payload: _p, ...d }) => d) }, null, 2) + '\n');
          return;
        }
        process.stdout.write(groups.length ? table(groups.map((g) => ({
          id: g.id, kind: g.kind, subject: g.mapping ?? g.labels.monitor ?? g.labels.destination ?? g.labels.model ?? '', severity: g.severity,
          state: g.state, since: g.firstAt, events: g.events, next: g.nextAt, held: g.heldBy ?? '', deliveries: deliveriesText(g.deliveries), message: g.lastMessage.slice(0, 80),
        })), ['id', 'kind', 'subject', 'severity', 'state', 'since', 'events', 'next', 'held', 'deliveries', 'message']) : 'no open alert incidents\n');
        const silences = await listSilences(app.warehouse.pool, s);
        if (silences.length) process.stdout.write(`\n${silences.length} silence(s) in force: segsync silence list\n`);
        if (failed.length) {
          process.stdout.write(`\nfailed deliveries:\n${table(failed.map((d) => ({ id: d.id, incident: d.groupId, channel: d.channel, action: d.action, attempts: d.attempts, error: d.lastError })))}`);
        }
      });
    });

  alerts.command('test <channel>')
    .description('send a test message to a configured channel now, and say whether it arrived')
    .action(async (channel: string, _o: unknown, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        const { channels } = app.config.settings.alerts;
        const c = channels[channel];
        if (!c) throw new UsageError(`no alert channel named '${channel}'`, `channels: ${Object.keys(channels).join(', ') || '(none: alerts.channels in config/segsync.yaml)'}`);
        const actor = formatActor(cliActor());
        const n = buildNotification({
          action: 'test', incident: `segsync-test-${Date.now()}`, groupId: null, kind: 'test', severity: 'info', mapping: null,
          message: `Test message from segsync to channel ${channel} (${c.type}), sent by ${actor}. If you read this, alerts reach you here.`,
          since: new Date().toISOString(), lastAt: new Date().toISOString(), events: 0, runId: null,
          link: dashboardLink(app.config.settings.public_url, null, null), labels: { kind: 'test', severity: 'info' },
        });
        const sender = senderFor(c);
        try {
          await sender.send(n, { deliveryId: Date.now() });
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`segsync: test message to ${channel} failed: ${describeError(err)}\n`);
          return;
        } finally {
          await sender.close?.();
        }
        process.stdout.write(`test message sent to ${channel} (${c.type})\n`);
      });
    });

  const silence = program.command('silence').description('silences: hold back the alerts whose labels match, for a while, with who and why');
  silence.command('add')
    .description('add a silence (labels: kind, severity, mapping, destination, model, monitor, cause)')
    .option('--match <matcher>', 'label=value, label!=value, label=~regex or label!~regex (repeat for more; all must hold)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--for <duration>', 'how long, e.g. 2h, 30m, 1d')
    .option('--comment <text>', 'why (recorded with your user name)')
    .addHelpText('after', `
Example:
  segsync silence add --match mapping=crm-contacts --match kind=~run_.* --for 2h --comment "CRM maintenance window"`)
    .action(async (o: { match: string[]; for?: string; comment?: string }, cmd: Command) => {
      if (!o.match.length) throw new UsageError('silence add needs at least one --match', 'e.g. --match mapping=crm-contacts');
      const problem = silenceProblem({ matchers: o.match, for: o.for, comment: o.comment });
      if (problem?.field === 'match') throw new UsageError(`--match: ${problem.message}`);
      if (problem?.field === 'for') throw new UsageError(`--for must be a duration such as 2h (got '${o.for ?? ''}')`);
      if (problem) throw new UsageError('silence add needs --comment "why"');
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const s = await createSilence(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), cliActor(), { matchers: o.match, forMs: durationMs(o.for!), comment: o.comment!.trim() });
        process.stdout.write(`silence ${s.id} added until ${s.endsAt.toISOString()} by ${s.author}: ${s.matchers.join(', ')}\n`);
      });
    });
  silence.command('list')
    .description('silences in force (with --all: expired ones too)')
    .option('--all', 'include expired silences')
    .addOption(new Option('--format <format>', 'table or json').default('table'))
    .action(async (o: { all?: boolean; format: string }, cmd: Command) => {
      const format = jsonOrTable(o.format);
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const list = await listSilences(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), { all: o.all === true });
        if (format === 'json') return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        process.stdout.write(list.length ? table(list.map((s) => ({ id: s.id, matchers: s.matchers.join(', '), until: s.expiredAt ?? s.endsAt, author: s.author, comment: s.comment, expired: s.expiredAt ? `by ${s.expiredBy}` : '' })), ['id', 'matchers', 'until', 'author', 'comment', 'expired']) : 'no silences in force\n');
      });
    });
  silence.command('expire <id>')
    .description('end a silence now')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      if (!/^\d+$/.test(id)) throw new UsageError(`a silence id is a number (got '${id}')`);
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        if (!(await endSilence(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), cliActor(), Number(id)))) {
          throw new UsageError(`no silence ${id} in force`, 'segsync silence list --all shows them all');
        }
        process.stdout.write(`silence ${id} expired by ${formatActor(cliActor())}\n`);
      });
    });
}
