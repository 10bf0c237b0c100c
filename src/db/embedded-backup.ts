import { access, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { SegsyncError, UsageError } from '../errors.ts';

/**
 * Backup and restore of the embedded database (PGlite under .segsync/pgdata). It holds the ledger: every
 * receipt and the delivered state a sync compares against, so losing it means the next run re-creates every
 * record and never clears those who left. A backup is PGlite's own data-folder dump (a gzip tarball, after a
 * CHECKPOINT), restored with PGlite's loadDataDir into a fresh folder; the folder it replaces is kept aside,
 * never deleted. Both hold the folder's lock, so they never run beside a segsync process using it.
 */

async function withFolderLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(dataDir), { recursive: true });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path.dirname(dataDir), { stale: 30_000, update: 5_000, lockfilePath: `${dataDir}.lock`, realpath: false });
  } catch (err) {
    throw new SegsyncError('EMBEDDED_IN_USE', `the embedded database at ${dataDir} is in use by another segsync process`, { cause: err, hint: 'stop it (the daemon too) and try again' });
  }
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

export interface ExportResult { file: string; bytes: number }

/** Writes the embedded database at `dataDir` to `file` (gzip tarball), atomically (a .tmp renamed). */
export async function exportEmbedded(dataDir: string, file: string): Promise<ExportResult> {
  const dir = path.resolve(dataDir);
  if (await isEmptyOrMissing(dir)) throw new UsageError(`there is no embedded database at ${dir} to export`, 'segsync uses it when no warehouse URL is configured; --data-dir names another folder');
  return withFolderLock(dir, async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create({ dataDir: dir });
    try {
      await db.query('CHECKPOINT');
      const dump = await db.dumpDataDir('gzip');
      const bytes = Buffer.from(await dump.arrayBuffer());
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
      return { file, bytes: bytes.length };
    } finally {
      await db.close();
    }
  });
}

export interface ImportResult { dataDir: string; keptAside: string | null; runs: number; receipts: number }

/**
 * Restores `file` as the embedded database at `dataDir`. An existing database is refused unless `replace`;
 * then it is moved to `<dataDir>.before-import-<time>` (kept, not deleted) and the backup loaded in its place.
 * The restored database is opened and read before it counts as restored; on any failure the old one is put back.
 */
export async function importEmbedded(dataDir: string, file: string, opts: { replace: boolean; stateSchema: string }): Promise<ImportResult> {
  const dir = path.resolve(dataDir);
  await access(file).catch(() => { throw new UsageError(`no backup file ${file}`); });
  const existing = !(await isEmptyOrMissing(dir));
  if (existing && !opts.replace) throw new UsageError(`an embedded database is already at ${dir}: importing would replace its ledger`, 'pass --replace (the current one is kept aside as <folder>.before-import-<time>, not deleted)');
  return withFolderLock(dir, async () => {
    const keptAside = existing ? `${dir}.before-import-${new Date().toISOString().replace(/[:.]/g, '-')}` : null;
    if (keptAside) await rename(dir, keptAside);
    try {
      await rm(dir, { recursive: true, force: true });
      const { PGlite } = await import('@electric-sql/pglite');
      const data = await readFile(file);
      const db = await PGlite.create({ dataDir: dir, loadDataDir: new Blob([data]) });
      try {
        const q = async (sql: string) => Number((await db.query<{ n: number }>(sql)).rows[0]?.n ?? 0);
        const has = (await db.query<{ t: string | null }>(`SELECT to_regclass('${opts.stateSchema}.runs')::text AS t`)).rows[0]?.t;
        const runs = has ? await q(`SELECT count(*)::int AS n FROM ${opts.stateSchema}.runs`) : 0;
        const receipts = has ? await q(`SELECT count(*)::int AS n FROM ${opts.stateSchema}.receipts`) : 0;
        return { dataDir: dir, keptAside, runs, receipts };
      } finally {
        await db.close();
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      if (keptAside) await rename(keptAside, dir).catch(() => {});
      throw new SegsyncError('STATE_IMPORT_FAILED', `could not restore ${file}: ${(err as Error).message}; the embedded database is as it was`, { cause: err });
    }
  });
}
