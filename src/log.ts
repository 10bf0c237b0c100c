import pino, { type Logger } from 'pino';
import { maskDeep, maskText } from './pii/mask.ts';

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
  const base: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // Redaction paths reach one level; PII can sit at any depth (an error body quoting a value, a record
    // nested in details) and in the message itself: masked here, everywhere, before anything is written.
    formatters: { log: (obj) => maskDeep(obj) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? maskText(a) : a)) as Parameters<typeof method>);
      },
    },
  };
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

// The one masking module (src/pii/mask.ts) serves logs, events, alerts, the API and the dashboard; these
// names stay exported here for the modules that import them from the logger.
export { maskDeep, maskEmails, maskPii, maskText } from './pii/mask.ts';
