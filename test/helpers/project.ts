import { runToExit } from './cli.ts';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { withApp, type App } from '../../src/app.ts';
import { setRootLogger } from '../../src/log.ts';
import { createTestDatabase, testLog, type TestDatabase } from './pg.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO_ROOT, 'src/cli/main.ts');

setRootLogger(testLog);

export interface TestProject {
  dir: string;
  outDir: string;
  write(rel: string, text: string): Promise<void>;
  app<T>(fn: (app: App) => Promise<T>): Promise<T>;
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  cleanup(): Promise<void>;
}

/**
 * A throw-away project folder: config/segsync.yaml pointing at `url` (or the embedded database under the
 * folder), a `files` connection writing to out/, and whatever mappings the test writes.
 */
export async function createProject(opts: { url?: string; settings?: string } = {}): Promise<TestProject> {
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-project-'));
  const outDir = path.join(dir, 'out');
  await mkdir(path.join(dir, 'config'), { recursive: true });
  await mkdir(path.join(dir, 'mappings'), { recursive: true });
  const settings = opts.settings ?? `warehouse:\n  url: ${opts.url ?? ''}\nconnections:\n  files:\n    type: file\n    directory: ${outDir}\n`;
  await writeFile(path.join(dir, 'config/segsync.yaml'), settings);
  const dataDir = path.join(dir, '.segsync/pgdata');
  const env = { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_LOG_JSON: '1' };
  return {
    dir,
    outDir,
    write: (rel, text) => writeFile(path.join(dir, rel), text),
    app: (fn) => withApp({ root: dir, dataDir }, fn),
    cli(args, o = {}) {
      return runToExit(process.execPath, [CLI, '--data-dir', dataDir, ...args], { cwd: dir, env: { ...env, ...o.env } });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export const SEGMENTS_DDL = `CREATE TABLE segments (user_id text, rfm_segment text, recency_score int, frequency_score int, monetary numeric, note text, snapshot_at timestamptz DEFAULT '2024-01-01T00:00:00Z')`;

/** Replaces the contents of the test model `segments` with n users u0001.. and a segment per user. */
export async function seedSegments(pool: pg.Pool, n: number, segmentOf: (i: number) => string = (i) => (i % 2 ? 'Champions' : 'At Risk')): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS ${SEGMENTS_DDL.slice('CREATE TABLE '.length)}`);
  await pool.query('TRUNCATE segments');
  const ids = Array.from({ length: n }, (_, i) => `u${String(i + 1).padStart(4, '0')}`);
  await pool.query(
    `INSERT INTO segments (user_id, rfm_segment, recency_score, frequency_score, monetary, note)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::numeric[], $6::text[])`,
    [ids, ids.map((_, i) => segmentOf(i)), ids.map((_, i) => (i % 5) + 1), ids.map((_, i) => ((i * 3) % 5) + 1), ids.map((_, i) => (i * 10.5).toFixed(2)), ids.map(() => 'x')],
  );
}

export const FILE_MAPPING = (over: Record<string, string> = {}) => `name: ${over.name ?? 'seg-to-file'}
source:
  model: ${over.model ?? 'segments'}
  key: user_id
destination:
  connection: files
  object: customers
  match_key: customer_id
  options:
    format: ${over.format ?? 'ndjson'}
    throttle_ms: ${over.throttle ?? '0'}
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: recency_score, from: recency_score }
  - { to: monetary, from: monetary, transform: number }
on_removed: ${over.on_removed ?? 'keep'}
${over.extra ?? ''}
`;

/** A new database on the test server and a project on it with `mapping` as mappings/m.yaml; both are removed after `fn`. */
export async function withMappingProject<T>(mapping: string, fn: (project: TestProject, db: TestDatabase) => Promise<T>): Promise<T> {
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url });
  try {
    await project.write('mappings/m.yaml', mapping);
    return await fn(project, db);
  } finally {
    await project.cleanup();
    await db.drop();
  }
}
