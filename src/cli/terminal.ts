import { Writable } from 'node:stream';
import { prettyFactory } from 'pino-pretty';
import { UsageError } from '../errors.ts';
import { createRootLogger, setRootLogger } from '../log.ts';

/**
 * The one renderer of stderr for the CLI: log lines and the progress bar share the terminal, so a log line
 * is written above the bar (the bar's line is cleared, the log written, the bar drawn again) and nothing is
 * left to an asynchronous worker that could print after the command's summary, under the shell prompt.
 * Only the output side is here: masking PII and secrets stays in src/log.ts, applied before a line exists.
 */

export type LogFormat = 'json' | 'text';

let bar: { render(): void } | null = null;

/** The progress bar being drawn (progress.ts), or null: log lines then go straight to stderr. */
export function setActiveBar(active: { render(): void } | null): void {
  bar = active;
}

/** Writes `text` (whole lines) to stderr above the progress bar, if one is drawn. */
export function writeAbove(text: string): void {
  if (bar && process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[2K${text}`);
    bar.render();
  } else {
    process.stderr.write(text);
  }
}

/** A stream for pino: each JSON line as it is (json) or as one readable line (text, coloured on a terminal). */
export function logStream(format: LogFormat, colour = process.stderr.isTTY === true): Writable {
  const pretty = format === 'text' ? prettyFactory({ colorize: colour, ignore: 'pid,hostname,time', singleLine: true }) : null;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const line = chunk.toString();
      writeAbove(pretty ? pretty(line) : line);
      cb();
    },
  });
}

export interface OutputOptions {
  quiet?: boolean;
  verbose?: boolean;
  logFormat?: string;
}

/**
 * Sets the process's logger from --quiet/--verbose/--log-format: --quiet shows warnings and errors only
 * (warnings are always shown), --verbose adds debug lines. JSON lines with --log-format json or
 * SEGSYNC_LOG_JSON=1, and by default for the daemon without a terminal (log shippers); readable lines
 * otherwise. SEGSYNC_LOG_LEVEL is the level when neither flag is given.
 */
export function configureOutput(o: OutputOptions, command: string, env: NodeJS.ProcessEnv = process.env): void {
  if (o.quiet && o.verbose) throw new UsageError('--quiet and --verbose contradict each other: pass one');
  if (o.logFormat !== undefined && o.logFormat !== 'json' && o.logFormat !== 'text') throw new UsageError(`--log-format must be json or text (got '${o.logFormat}')`);
  const level = o.quiet ? 'warn' : o.verbose ? 'debug' : env.SEGSYNC_LOG_LEVEL || 'info';
  // Commands that quieten their own logs (demo) respect an explicit choice.
  if (o.quiet || o.verbose) env.SEGSYNC_LOG_LEVEL = level;
  const format: LogFormat = (o.logFormat as LogFormat | undefined) ?? (env.SEGSYNC_LOG_JSON ? 'json' : command === 'daemon' && !process.stderr.isTTY ? 'json' : 'text');
  setRootLogger(createRootLogger({ level, pretty: false, destination: logStream(format) }));
}
