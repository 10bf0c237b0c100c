import pino, { type Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear. Secrets never reach a log line; customer PII (e-mail, names,
 * phone numbers) is replaced too, so logs can be shipped to a log store that support staff can read.
 */
const REDACT_PATHS = [
  '*.password', '*.token', '*.accessToken', '*.access_token', '*.clientSecret', '*.client_secret',
  '*.writeKey', '*.write_key', '*.secret', '*.authorization', '*.Authorization', '*.headers.authorization',
  '*.privateKey', '*.private_key', 'url', '*.url', '*.connectionString',
  '*.email', '*.Email', '*.phone', '*.Phone', '*.firstname', '*.lastname', '*.FirstName', '*.LastName', '*.name_full',
];

export type { Logger };

/**
 * The process's one root logger. JSON lines when stdout is not a terminal (containers, CI, log shippers);
 * pino-pretty when a person is watching. SEGSYNC_LOG_LEVEL sets the level (default info, tests warn).
 */
export function createRootLogger(opts: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.SEGSYNC_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !process.env.SEGSYNC_LOG_JSON);
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } } });
  }
  return pino(base, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2));
}

let root: Logger | undefined;

/** The shared root logger, created on first use. Modules take a child logger with their own bindings. */
export function log(): Logger {
  root ??= createRootLogger();
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}

/** Masks an e-mail or other identifier for a log line: keeps enough to correlate, not enough to identify. */
export function maskPii(value: string | null | undefined): string {
  if (value == null) return '';
  const at = value.indexOf('@');
  if (at > 0) return `${value[0]}***@${value.slice(at + 1).replace(/^[^.]*/, (d) => `${d[0] ?? ''}***`)}`;
  if (value.length <= 4) return '***';
  return `${value.slice(0, 2)}***${value.slice(-2)}`;
}
