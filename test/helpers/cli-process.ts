import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './project.ts';

export interface CliExit {
  code: number | null;
  /** 'SIGKILL' when the test killed it before it ended by itself. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  exited: Promise<CliExit>;
  /** Whether it has not ended yet (a kill sent now can still land). */
  running(): boolean;
}

/**
 * Starts the real CLI in a project folder and hands back the process, for tests that signal it mid-run
 * (runCli and project.cli only resolve once it ended). The warehouse comes from the project's config, never
 * from the caller's environment.
 */
export function startCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): CliProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_LOG_JSON: '1', ...opts.env };
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'all_proxy']) delete env[k];
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<CliExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, running: () => child.exitCode === null && child.signalCode === null };
}
