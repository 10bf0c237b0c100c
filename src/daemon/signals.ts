import type { Logger } from '../log.ts';

/**
 * Two-stage shutdown and reload on signals. First SIGTERM/SIGINT: a graceful stop (`stop()` resolves true
 * when every run drained) then exit 0, or 1 if the drain bound was hit. A second one: exit at once with
 * 128+signal (runs left `running` are marked interrupted at the next start). SIGHUP: reload.
 */
export function installSignals(opts: {
  log: Logger;
  stop(reason: string): Promise<boolean>;
  reload(): Promise<boolean>;
  /** Runs after a graceful stop, before exit (close the warehouse). */
  cleanup(): Promise<void>;
  exit?: (code: number) => void;
}): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const numbers: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };
  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      opts.log.error({ signal }, 'second signal: exiting now without draining');
      exit(128 + (numbers[signal] ?? 1));
      return;
    }
    stopping = true;
    opts.log.info({ signal }, 'signal received: shutting down gracefully (send it again to force)');
    void opts.stop(signal)
      .then(async (drained) => {
        // Runs still in flight hold pool clients, and closing the pool would wait for them: bound it.
        const cleanup = opts.cleanup().catch((err: unknown) => opts.log.warn({ err: (err as Error).message }, 'closing the database failed'));
        await (drained ? cleanup : Promise.race([cleanup, new Promise((r) => setTimeout(r, 500).unref())]));
        exit(drained ? 0 : 1);
      })
      .catch((err: unknown) => {
        opts.log.error({ err: (err as Error).message }, 'shutdown failed');
        exit(1);
      });
  };
  const onHup = () => {
    if (stopping) return;
    opts.log.info('SIGHUP: reloading configuration');
    void opts.reload().then((ok) => opts.log.info({ applied: ok }, ok ? 'reload applied' : 'reload rejected; previous configuration still running'));
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
  };
}
