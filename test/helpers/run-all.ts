import path from 'node:path';
import { Command } from 'commander';
import { registerSync } from '../../src/cli/commands/sync.ts';

/**
 * `segsync run --all` in this process, for destinations that live in the test process (the scripted one):
 * the real command, its output captured, its exit code returned.
 */
export default async function runAll(dir: string): Promise<{ exit: number; out: string }> {
  const program = new Command('segsync')
    .option('--config <file>', '', path.join(dir, 'config/segsync.yaml'))
    .option('--mappings <dir>', '', path.join(dir, 'mappings'))
    .option('--data-dir <dir>', '', path.join(dir, '.segsync/pgdata'))
    .exitOverride();
  registerSync(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => { out += String(chunk); return true; }) as typeof process.stdout.write;
  const before = process.exitCode;
  try {
    await program.parseAsync(['node', 'segsync', 'run', '--all']);
  } finally {
    process.stdout.write = write;
  }
  const exit = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { exit, out };
}
