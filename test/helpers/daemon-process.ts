import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CLI } from './project.ts';

/** A `segsync daemon` child process with its JSON log lines collected, and helpers to wait on them. */
export interface DaemonProcess {
  child: ChildProcess;
  port: number;
  logs: Array<Record<string, unknown>>;
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnDaemon(cwd: string, args: string[] = []): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [CLI, 'daemon', '--port', '0', ...args], {
    cwd,
    env: { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'info', SEGSYNC_LOG_JSON: '1', HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
      for (const w of waiters) w();
    }
  });
  child.stdout!.resume();
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const check = () => {
      const hit = logs.find(pred);
      if (hit) {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`log line not seen in ${timeoutMs} ms; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`));
    }, timeoutMs);
    waiters.add(check);
    void exit.then(() => setTimeout(check, 50));
    check();
  });
  const listening = await waitForLog((l) => l.msg === 'http listening (/healthz /readyz /metrics /status)' || l.unparsed === true);
  if (listening.unparsed) throw new Error(`daemon failed to start: ${logs.map((l) => l.msg).join('\n')}`);
  return { child, port: Number(listening.port), logs, waitForLog, exited: () => exit };
}
