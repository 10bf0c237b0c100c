import type { Command } from 'commander';
import { withApp } from '../../app.ts';
import { permissionMatrix } from '../../auth/matrix.ts';
import { createToken, parseExpiry, revoke } from '../../auth/tokens.ts';
import { cliActor } from '../../state/actor.ts';
import { listTokens } from '../../state/tokens.ts';
import { ensureState } from '../../sync/run.ts';
import { parseFormat, render, type Format } from '../format.ts';
import { appOptions } from '../options.ts';

/** `segsync tokens create|list|revoke|roles`: API tokens for the HTTP API (docs/security.md). */
export function registerTokens(program: Command): void {
  const group = program.command('tokens').description('API tokens: create (shown once), list, revoke; and the role matrix');

  group.command('create')
    .description('make an API token with one role; it is printed once and only its hash is kept')
    .requiredOption('--role <role>', 'viewer, operator, approver, editor, auditor or admin')
    .requiredOption('--name <name>', 'who or what uses it')
    .option('--expires <duration>', 'lifetime such as 12h, 30d, 8w (default: none)')
    .action(async (o: { role: string; name: string; expires?: string }, cmd: Command) => {
      const expiresAt = o.expires ? parseExpiry(o.expires) : null;
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const { token, row } = await createToken(app.warehouse.pool, app.config.settings.state.schema, { role: o.role, name: o.name, expiresAt, actor: cliActor() });
        process.stdout.write(`${token}\n`);
        process.stderr.write(`token ${row.id} (${row.role}, ${row.name}${row.expiresAt ? `, expires ${row.expiresAt.toISOString()}` : ''}): copy it now, it is not shown again\n`);
      });
    });

  group.command('list')
    .description('the tokens: id, name, role, created, expiry, last use, revoked (never the token)')
    .option('--format <format>', 'table, json or csv', parseFormat, 'table')
    .action(async (o: { format: Format }, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const rows = await listTokens(app.warehouse.pool, app.config.settings.state.schema);
        const iso = (d: Date | null) => d?.toISOString() ?? '';
        process.stdout.write(render(rows.map((r) => ({ id: r.id, name: r.name, role: r.role, created: iso(r.createdAt), created_by: r.createdBy, expires: iso(r.expiresAt), last_used: iso(r.lastUsedAt), revoked: iso(r.revokedAt) })), o.format) + '\n');
      });
    });

  group.command('revoke <id>')
    .description('revoke a token by its id (ssk_ and 8 characters, as tokens list shows it)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await withApp(appOptions(cmd), async (app) => {
        await ensureState(app);
        const row = await revoke(app.warehouse.pool, app.config.settings.state.schema, id, cliActor());
        process.stdout.write(`revoked ${row.id} (${row.name})\n`);
      });
    });

  group.command('roles')
    .description('the permission matrix (markdown), generated from src/auth/permissions.ts')
    .action(() => { process.stdout.write(permissionMatrix()); });
}
