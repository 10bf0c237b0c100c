import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI (`node src/cli/main.ts ...`) from the repository root. With `url` it uses that
 * PostgreSQL database; without, the embedded one in `dataDir`.
 */
export function runCli(args: string[], opts: { url?: string | undefined; dataDir?: string | undefined; cwd?: string }): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_LOG_JSON: '1' };
  delete env.SEGSYNC_DATABASE_URL;
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete env[k];
  if (opts.url) env.SEGSYNC_DATABASE_URL = opts.url;
  const global = opts.dataDir ? ['--data-dir', opts.dataDir] : [];
  return runToExit(process.execPath, [path.join(repoRoot, 'src/cli/main.ts'), ...global, ...args], { cwd: opts.cwd ?? repoRoot, env });
}

/** Runs a command to its exit and collects what it printed (every CLI test helper spawns through this). */
export function runToExit(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
