import { createHash } from 'node:crypto';
import { access, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { Mapping, type Source } from './mapping.ts';
import { bindSourceSql } from './source-sql.ts';
import { Settings } from './settings.ts';
import { allowedKeys, nearestKey } from './suggest.ts';

/**
 * Reads config/segsync.yaml and mappings/*.yaml once, validates them with the zod schemas, and reports every
 * problem in every file together, each with file:line:column. Nothing is half-loaded: either all of it is
 * valid or a ConfigError lists what is not.
 */

export interface LoadedFile<T> {
  file: string;
  value: T;
  /** Position of a path inside the file, for errors found later (e.g. a column missing in the warehouse). */
  where(pathParts: ReadonlyArray<string | number>): { line: number; column: number };
}

/**
 * A top-level mapping block owned by one destination type (HubSpot's `tickets:`, Salesforce's `cases:`),
 * typed by that destination's own schema. The destinations declare them (DestinationDefinition.mappingBlocks)
 * and the layer that sees both hands them to the loader (src/project.ts), so config never imports
 * destinations and still checks the blocks, with positions, when the project is loaded.
 */
export interface MappingBlockDeclaration {
  name: string;
  /** The destination type that owns the block: a mapping whose connection is of another type may not use it. */
  owner: string;
  schema: z.ZodType;
}

/** A mapping file with the destination-owned blocks it uses, each already checked against its owner's schema. */
export interface LoadedMapping extends LoadedFile<Mapping> {
  /** Block name -> the value as written (${ENV} interpolated); the destination parses it with its own schema. */
  blocks: Readonly<Record<string, unknown>>;
}

export interface ProjectConfig {
  root: string;
  settingsFile: LoadedFile<Settings> | null;
  settings: Settings;
  mappings: LoadedMapping[];
  /** sha256 over the settings and mapping files as read: ties a run to the exact config it used. */
  hash: string;
  /**
   * Mapping files left out because they have problems (only with `skipBrokenMappings`; otherwise any
   * problem throws). The settings file is never left out: a problem there still throws.
   */
  broken: BrokenMapping[];
}

/** A mapping file with problems, left out of a tolerant load: its name (when readable) and every problem. */
export interface BrokenMapping {
  file: string;
  /** The `name:` in the file when it can be read, else the file name without .yaml. */
  name: string;
  problems: ConfigProblem[];
}

interface ParsedYaml {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

async function parseYamlFile(file: string, problems: ConfigProblem[]): Promise<ParsedYaml | null> {
  const text = await readFile(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const pos = lines.linePos(e.pos[0]);
    problems.push({ file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`, hint: 'fix the YAML syntax first; no other check runs on this file until it parses' });
  }
  return doc.errors.length ? null : { file, doc, lines };
}

function nodeAt(doc: Document.Parsed, parts: ReadonlyArray<string | number>): { node: YamlNode | null; missing: boolean } {
  let node: unknown = doc.contents;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
      if (!pair) return { node: node as YamlNode, missing: true };
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof part === 'number') {
      const next = node.items[part];
      if (next === undefined) return { node: node as YamlNode, missing: true };
      node = next;
    } else {
      return { node: (node as YamlNode) ?? null, missing: true };
    }
  }
  return { node: (node as YamlNode) ?? null, missing: false };
}

function keyNodeAt(doc: Document.Parsed, parts: ReadonlyArray<string | number>, key: string): YamlNode | null {
  const { node } = nodeAt(doc, parts);
  if (!isMap(node)) return null;
  const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
  return (pair?.key as YamlNode | undefined) ?? null;
}

function positionOf(parsed: ParsedYaml, node: YamlNode | null): { line: number; column: number } {
  const offset = node?.range?.[0] ?? 0;
  const pos = parsed.lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Keys whose values are credentials: they must name an environment variable, never hold the secret itself. */
const SECRET_KEY = /^(token|access_token|refresh_token|bot_token|password|secret|client_secret|api_key|apikey|write_key|routing_key|private_key|signing_key)$/i;
const ONLY_ENV_REF = /^\$\{[A-Z_][A-Z0-9_]*(:-)?\}$/;

/**
 * Secrets come only from the environment: a credential written into the settings file (a literal token, or a
 * ${VAR:-default} whose default is one) is a located problem, so it never sits in a repository or a config diff.
 */
function literalSecrets(parsed: ParsedYaml, value: unknown, at: (string | number)[], problems: ConfigProblem[]): void {
  if (Array.isArray(value)) return value.forEach((v, i) => literalSecrets(parsed, v, [...at, i], problems));
  if (!value || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEY.test(k) && typeof v === 'string' && v !== '' && !ONLY_ENV_REF.test(v.trim())) {
      const name = `SEGSYNC_${[...at, k].filter((p) => typeof p === 'string').slice(-2).join('_').toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
      problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, [...at, k]).node), path: [...at, k].join('.'), message: `'${k}' holds a secret written into the file`, hint: `write \${${name}} and export ${name}=... (secrets come only from environment variables)` });
    } else literalSecrets(parsed, v, [...at, k], problems);
  }
}

const ENV_REF = /\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces ${VAR} and ${VAR:-default} in every string. A missing variable without a default is a problem
 * at that position, unless `lenient` (connections are resolved only when a mapping uses them).
 */
function interpolate(parsed: ParsedYaml, value: unknown, at: (string | number)[], problems: ConfigProblem[], env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, at).node), path: at.join('.'), message: `environment variable ${name} is not set`, hint: `export ${name}=... (secrets come only from the environment)` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(parsed, v, [...at, i], problems, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(parsed, v, [...at, k], problems, env)]));
  }
  return value;
}

function zodProblems(parsed: ParsedYaml, error: z.ZodError, hints: (issuePath: string) => string | undefined, prefix: ReadonlyArray<string | number> = [], schema?: z.ZodType, topLevelKeys: readonly string[] = []): ConfigProblem[] {
  return error.issues.map((issue) => {
    const issuePath = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const parts = [...prefix, ...issuePath];
    let node: YamlNode | null;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      node = keyNodeAt(parsed.doc, parts, issue.keys[0] ?? '') ?? nodeAt(parsed.doc, parts).node;
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      // "did you mean": the nearest allowed key, else the allowed ones.
      const allowed = [...(schema ? allowedKeys(schema, issuePath) : []), ...(issuePath.length === 0 ? topLevelKeys : [])];
      const near = issue.keys.flatMap((k) => { const n = nearestKey(k, allowed); return n ? [`'${k}': did you mean '${n}'?`] : []; });
      const hint = near.length ? near.join('; ') : allowed.length ? `allowed here: ${allowed.join(', ')}` : hints(parts.join('.'));
      return { file: parsed.file, ...positionOf(parsed, node), path: parts.join('.'), message, ...(hint ? { hint } : {}) };
    } else {
      const found = nodeAt(parsed.doc, parts);
      node = found.node;
      if (found.missing && issue.code === 'invalid_type' && /received undefined/.test(issue.message)) message = `missing required key '${String(parts.at(-1))}'`;
    }
    const joined = parts.join('.');
    const hint = hints(joined);
    return { file: parsed.file, ...positionOf(parsed, node), path: joined, message, ...(hint ? { hint } : {}) };
  });
}

function mappingHint(p: string): string | undefined {
  if (p === 'mode') return 'one of upsert, update, mirror';
  if (p === 'on_removed') return 'one of keep, clear, delete';
  if (p.startsWith('fields')) return 'each field is {to: <destination field>, from: <source column>, transform?: ...}';
  if (p.startsWith('source')) return 'source: {model: rfm_current_segments, key: user_id} or {sql: "select ...", key: ...}';
  return undefined;
}

export interface LoadOptions {
  /** Project root holding config/ and mappings/ (default: working directory). */
  root?: string;
  /** Alternative settings file. */
  settingsFile?: string;
  /** Alternative mappings folder. */
  mappingsDir?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Destination-owned mapping blocks that may appear at the top level of a mapping (see
   * MappingBlockDeclaration). Without them any such block is an unknown key.
   */
  mappingBlocks?: ReadonlyArray<MappingBlockDeclaration>;
  /**
   * Leave a mapping file with problems out (listed in ProjectConfig.broken) instead of failing the whole
   * load, so one broken file does not stop plan, run, receipts or the daemon for the other mappings.
   * `validate` and a daemon reload load strictly.
   */
  skipBrokenMappings?: boolean;
}

function loaded<T>(parsed: ParsedYaml, value: T): LoadedFile<T> {
  return { file: parsed.file, value, where: (parts) => positionOf(parsed, nodeAt(parsed.doc, parts).node) };
}

/** Loads and validates everything; throws ConfigError with all problems at once. */
export async function loadProject(opts: LoadOptions = {}): Promise<ProjectConfig> {
  const root = path.resolve(opts.root ?? process.cwd());
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const hashInput: string[] = [];
  const rel = (f: string) => path.relative(process.cwd(), f) || f;

  const settingsPath = path.resolve(root, opts.settingsFile ?? 'config/segsync.yaml');
  let settingsFile: LoadedFile<Settings> | null = null;
  let settings = Settings.parse({});
  if (await exists(settingsPath)) {
    const parsed = await parseYamlFile(rel(settingsPath), problems);
    if (parsed) {
      hashInput.push(parsed.doc.toString());
      const raw = parsed.doc.toJS() ?? {};
      literalSecrets(parsed, raw, [], problems);
      // Connections are interpolated leniently here and strictly when a mapping uses them (resolveConnection).
      const { connections, ...rest } = raw as Record<string, unknown>;
      const value = { ...(interpolate(parsed, rest, [], problems, env) as object), ...(connections === undefined ? {} : { connections }) };
      const result = Settings.safeParse(value);
      if (result.success) {
        settings = result.data;
        settingsFile = loaded(parsed, result.data);
        settingsParsed.set(result.data, parsed);
      } else problems.push(...zodProblems(parsed, result.error, () => undefined, [], Settings));
    }
  } else if (opts.settingsFile) {
    problems.push({ file: rel(settingsPath), line: 1, column: 1, path: '', message: 'settings file not found' });
  }

  const mappingsDir = path.resolve(root, opts.mappingsDir ?? 'mappings');
  const mappings: LoadedMapping[] = [];
  const files = (await exists(mappingsDir)) ? (await readdir(mappingsDir)).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  const byName = new Map<string, string>();
  const declared = new Map<string, MappingBlockDeclaration[]>();
  for (const d of opts.mappingBlocks ?? []) declared.set(d.name, [...(declared.get(d.name) ?? []), d]);
  const broken: BrokenMapping[] = [];
  const settingsBroken = problems.length > 0; // then every problem is reported together, nothing left out
  for (const f of files) {
    const before = problems.length;
    let fileName: string | undefined;
    try {
    const parsed = await parseYamlFile(rel(path.join(mappingsDir, f)), problems);
    if (!parsed) continue;
    hashInput.push(parsed.doc.toString());
    // source.sql is not interpolated like other strings: its placeholders become bind parameters.
    const js = (parsed.doc.toJS() ?? {}) as { source?: { sql?: unknown }; name?: unknown };
    if (typeof js?.name === 'string') fileName = js.name;
    const sql = js?.source && typeof js.source === 'object' && typeof js.source.sql === 'string' ? bindSourceSql(js.source.sql, env) : null;
    if (sql) {
      const at = positionOf(parsed, nodeAt(parsed.doc, ['source', 'sql']).node);
      for (const p of sql.problems) {
        const before = (js.source!.sql as string).slice(0, p.offset).split('\n');
        problems.push({ file: parsed.file, ...at, path: 'source.sql', message: `source.sql line ${before.length}, column ${before.at(-1)!.length + 1}: ${p.message}`, ...(p.hint ? { hint: p.hint } : {}) });
      }
      js.source!.sql = '';
    }
    const raw = interpolate(parsed, js, [], problems, env) as { destination?: { connection?: unknown }; source?: { sql?: unknown } };
    if (sql) raw.source!.sql = sql.text;
    const connection = raw?.destination?.connection;
    if (typeof connection === 'string' && !(connection in settings.connections)) {
      const known = Object.keys(settings.connections);
      problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, ['destination', 'connection']).node), path: 'destination.connection', message: `unknown connection '${connection}'`, hint: known.length ? `connections in config/segsync.yaml: ${known.join(', ')}` : 'define it under connections: in config/segsync.yaml' });
    }
    const connectionType = typeof connection === 'string' ? settings.connections[connection]?.type : undefined;
    const { core, blocks, blockProblems } = mappingBlocks(parsed, raw, declared, typeof connection === 'string' ? connection : undefined, connectionType);
    problems.push(...blockProblems);
    const result = Mapping.safeParse(core);
    if (!result.success) {
      problems.push(...zodProblems(parsed, result.error, mappingHint, [], Mapping, [...declared.keys()]));
      continue;
    }
    const m = result.data;
    const seen = byName.get(m.name);
    if (seen) problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, ['name']).node), path: 'name', message: `mapping name '${m.name}' is already used by ${seen}`, hint: 'state and receipts are kept per mapping name, so names must be unique' });
    byName.set(m.name, parsed.file);
    const dupTo = m.fields.map((fm) => fm.to).filter((t, i, all) => all.indexOf(t) !== i);
    for (const d of new Set(dupTo)) {
      const idx = m.fields.findLastIndex((fm) => fm.to === d);
      problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, ['fields', idx, 'to']).node), path: `fields.${idx}.to`, message: `destination field '${d}' is mapped twice` });
    }
    if (m.mode === 'mirror' && m.on_removed === 'keep') {
      problems.push({ file: parsed.file, ...positionOf(parsed, nodeAt(parsed.doc, ['mode']).node), path: 'mode', message: 'mode mirror removes what left the model, but on_removed is keep', hint: 'set on_removed: clear or on_removed: delete, or use mode: upsert' });
    }
    if (sql && m.source.sql !== undefined) sqlParams.set(m.source, sql.params);
    mappings.push({ ...loaded(parsed, m), blocks });
    } finally {
      // Every problem found since `before` is this file's: with skipBrokenMappings the file is left out.
      if (opts.skipBrokenMappings && !settingsBroken && problems.length > before) {
        const file = rel(path.join(mappingsDir, f));
        if (mappings.at(-1)?.file === file) mappings.pop();
        broken.push({ file, name: fileName ?? f.replace(/\.ya?ml$/, ''), problems: problems.splice(before) });
      }
    }
  }

  if (problems.length) throw new ConfigError(problems);
  const hash = createHash('sha256').update(hashInput.join('\0')).digest('hex');
  return { root, settingsFile, settings, mappings, hash, broken };
}

/**
 * Splits the destination-owned blocks off a mapping and checks each against its owner's schema, with
 * positions. A block the mapping's destination type does not own is a problem at its key; an undeclared one
 * stays in `core`, where the strict mapping schema calls it an unknown key.
 */
function mappingBlocks(parsed: ParsedYaml, raw: unknown, declared: ReadonlyMap<string, MappingBlockDeclaration[]>, connection: string | undefined, connectionType: string | undefined):
  { core: unknown; blocks: Record<string, unknown>; blockProblems: ConfigProblem[] } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { core: raw, blocks: {}, blockProblems: [] };
  const core: Record<string, unknown> = {};
  const blocks: Record<string, unknown> = {};
  const blockProblems: ConfigProblem[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const owners = declared.get(key);
    if (!owners) {
      core[key] = value;
      continue;
    }
    if (connectionType === undefined) continue; // the connection itself is missing or unknown: reported already
    const decl = owners.find((d) => d.owner === connectionType);
    if (!decl) {
      const types = owners.map((d) => d.owner).join(', ');
      blockProblems.push({ file: parsed.file, ...positionOf(parsed, keyNodeAt(parsed.doc, [], key)), path: key,
        message: `'${key}' is a block of ${types} mappings; this mapping's connection '${connection}' is of type ${connectionType}`,
        hint: `remove '${key}:', or point destination.connection at a ${types} connection` });
      continue;
    }
    const result = decl.schema.safeParse(value);
    if (result.success) blocks[key] = value;
    else blockProblems.push(...zodProblems(parsed, result.error, () => `the ${decl.owner} destination's '${key}:' block (docs/configuration.md#${decl.owner})`, [key], decl.schema));
  }
  return { core, blocks, blockProblems };
}

const settingsParsed = new WeakMap<Settings, ParsedYaml>();
const sqlParams = new WeakMap<Source, readonly string[]>();

/**
 * The values of source.sql's `${VAR}` placeholders, in order: the text holds a marker per placeholder
 * (src/config/source-sql.ts) and the values are only ever sent as bind parameters. Empty for a source
 * that was not loaded from a mapping file.
 */
export function sourceSqlParams(source: Source): readonly string[] {
  return sqlParams.get(source) ?? [];
}

/**
 * A connection block with ${ENV} interpolated strictly: a missing secret is an error naming the variable
 * and where the settings file asks for it.
 */
export function resolveConnection(config: ProjectConfig, name: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> & { type: string } {
  const raw = config.settings.connections[name];
  if (!raw) throw new ConfigError([{ file: config.settingsFile?.file ?? 'config/segsync.yaml', line: 1, column: 1, path: `connections.${name}`, message: `unknown connection '${name}'` }]);
  const parsed = settingsParsed.get(config.settings);
  if (!parsed) return raw as Record<string, unknown> & { type: string };
  const problems: ConfigProblem[] = [];
  const value = interpolate(parsed, raw, ['connections', name], problems, env) as Record<string, unknown> & { type: string };
  if (problems.length) throw new ConfigError(problems);
  return value;
}

export function findMapping(config: ProjectConfig, name: string): LoadedMapping | undefined {
  return config.mappings.find((m) => m.value.name === name);
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}
