import cliProgress from 'cli-progress';
import { setActiveBar } from './terminal.ts';

/**
 * A progress bar on a terminal; nothing otherwise (logs carry the progress for machines). While it is drawn,
 * log lines are written above it (terminal.ts); stop() finishes its line before the command's summary.
 */
export function progressBar(label: string): { start(total: number): void; update(done: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { start() {}, update() {}, stop() {} };
  // forceRedraw: a log line written above clears the bar's line, so the bar must draw again even unchanged.
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}`, stream: process.stderr, hideCursor: true, forceRedraw: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    start(total) { bar.start(total, 0); started = true; setActiveBar(bar); },
    update(done) { if (started) bar.update(done); },
    stop() {
      if (started) bar.stop();
      started = false;
      setActiveBar(null);
    },
  };
}
