import cliProgress from 'cli-progress';

/** A progress bar on a terminal; nothing otherwise (logs carry the progress for machines). */
export function progressBar(label: string): { start(total: number): void; update(done: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { start() {}, update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    start(total) { bar.start(total, 0); started = true; },
    update(done) { if (started) bar.update(done); },
    stop() { if (started) bar.stop(); started = false; },
  };
}
