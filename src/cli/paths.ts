import { statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';

/**
 * The two folders a command works with. The user's working directory is where paths typed on the command
 * line are resolved (`load payments ./x.csv`, `--config ./other.yaml`); the project folder is where
 * config/segsync.yaml, mappings/, .segsync/ and out/ are. They are the same folder unless `--project DIR`
 * or SEGSYNC_PROJECT names another one; then the CLI changes into the project (so everything the project's
 * files name relatively, e.g. a file connection's `directory: out`, is the project's) and resolves the user's
 * paths against the directory the command was typed in.
 */
export const USER_CWD = process.cwd();

/** A path typed by the user, absolute, resolved against the directory the command was started in. */
export function userPath(p: string): string {
  return path.resolve(USER_CWD, p);
}

/** Changes into the project folder named by --project or SEGSYNC_PROJECT (the flag wins); checks it exists. */
export function enterProject(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const named = flag ?? (env.SEGSYNC_PROJECT || undefined);
  if (named === undefined) return process.cwd();
  const dir = userPath(named);
  let isDir = false;
  try { isDir = statSync(dir).isDirectory(); } catch { /* missing */ }
  const from = flag !== undefined ? '--project' : 'SEGSYNC_PROJECT';
  if (!isDir) throw new UsageError(`${from} ${named}: no such folder (${dir})`, 'the project folder holds config/segsync.yaml and mappings/');
  process.chdir(dir);
  return dir;
}
