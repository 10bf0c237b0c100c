import type pg from 'pg';
import { z } from 'zod';
import { destinations } from '../../destinations/registry.ts';
import type { DestinationDefinition, DestinationSession } from '../../destinations/types.ts';
import { findMapping, resolveConnection, type LoadedMapping, type ProjectConfig } from '../config/load.ts';
import { ConfigError, UsageError, type ConfigProblem } from '../errors.ts';
import type { Logger } from '../log.ts';
import { readLedgerIdentity } from '../state/ledger-identity.ts';

export function getMapping(config: ProjectConfig, name: string): LoadedMapping {
  const m = findMapping(config, name);
  if (!m) {
    // A mapping whose file was left out as broken: its own problems, with positions (a config error, exit 2).
    const broken = config.broken?.find((b) => b.name === name);
    if (broken) throw new ConfigError(broken.problems);
    const known = config.mappings.map((x) => x.value.name);
    throw new UsageError(`no mapping named '${name}'`, known.length ? `mappings: ${known.join(', ')}` : 'add one under mappings/ (see mappings/rfm-to-file.yaml)');
  }
  return m;
}

function issuesToProblems(file: string, where: (p: (string | number)[]) => { line: number; column: number }, prefix: (string | number)[], error: z.ZodError): ConfigProblem[] {
  return error.issues.map((i) => {
    const p = [...prefix, ...i.path.filter((x): x is string | number => typeof x !== 'symbol')];
    return { file, ...where(p), path: p.join('.'), message: i.message };
  });
}

export interface OpenedDestination {
  definition: DestinationDefinition<unknown, unknown>;
  type: string;
  session: DestinationSession;
}

export interface OpenContext {
  log: Logger;
  shared: Map<string, unknown>;
  runId?: number;
  /** The state the session delivers or reads back for: its ledger identity goes to the destination (ConnectContext.ledgerId). */
  state?: { db: Pick<pg.Pool, 'query'>; schema: string };
}

/**
 * Resolves the mapping's connection (secrets from the environment), checks its settings and the mapping's
 * destination options against the destination's own schemas, and opens a session.
 */
export async function openDestination(config: ProjectConfig, file: LoadedMapping, ctx: OpenContext): Promise<OpenedDestination> {
  const mapping = file.value;
  const connection = resolveConnection(config, mapping.destination.connection);
  const definition = (destinations as Record<string, DestinationDefinition<unknown, unknown>>)[connection.type];
  const settingsFile = config.settingsFile;
  if (!definition) {
    const at = settingsFile?.where(['connections', mapping.destination.connection, 'type']) ?? { line: 1, column: 1 };
    throw new ConfigError([{ file: settingsFile?.file ?? 'config/segsync.yaml', ...at, path: `connections.${mapping.destination.connection}.type`, message: `unknown destination type '${connection.type}'`, hint: `known types: ${Object.keys(destinations).join(', ')}` }]);
  }
  const problems: ConfigProblem[] = [];
  const conn = definition.connectionSchema.safeParse(connection);
  if (!conn.success) problems.push(...issuesToProblems(settingsFile?.file ?? 'config/segsync.yaml', settingsFile?.where ?? (() => ({ line: 1, column: 1 })), ['connections', mapping.destination.connection], conn.error));
  const opts = definition.optionsSchema.safeParse(mapping.destination.options);
  if (!opts.success) problems.push(...issuesToProblems(file.file, file.where, ['destination', 'options'], opts.error));
  const blocks: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(file.blocks)) {
    // The loader checked each block against its owner's schema; here it becomes the typed value.
    const schema = definition.mappingBlocks?.[name];
    const parsed = schema?.safeParse(value);
    if (!parsed) problems.push({ file: file.file, ...file.where([name]), path: name, message: `destination type '${connection.type}' has no '${name}:' block` });
    else if (!parsed.success) problems.push(...issuesToProblems(file.file, file.where, [name], parsed.error));
    else blocks[name] = parsed.data;
  }
  if (mapping.on_removed !== 'keep' && !definition.supportsRemoval.includes(mapping.on_removed)) {
    problems.push({ file: file.file, ...file.where(['on_removed']), path: 'on_removed', message: `destination type '${connection.type}' does not support on_removed: ${mapping.on_removed}`, hint: `supported: keep${definition.supportsRemoval.map((r) => `, ${r}`).join('')}` });
  }
  if (problems.length) throw new ConfigError(problems);
  const log = ctx.log.child({ mapping: mapping.name, destination: connection.type, ...(ctx.runId === undefined ? {} : { run: ctx.runId }) });
  const ledgerId = ctx.state ? await readLedgerIdentity(ctx.state.db, ctx.state.schema) : undefined;
  const session = await definition.connect({
    connection: conn.data, connectionName: mapping.destination.connection, mapping, options: opts.data, blocks, log, shared: ctx.shared,
    ...(ctx.runId === undefined ? {} : { runId: ctx.runId }),
    ...(ledgerId === undefined ? {} : { ledgerId }),
  });
  return { definition, type: connection.type, session };
}
