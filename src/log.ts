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
  const base: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // Redaction paths reach one level; PII can sit at any depth (an error body quoting a value, a record
    // nested in details) and in the message itself: masked here, everywhere, before anything is written.
    formatters: { log: (obj) => maskDeep(obj) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? maskEmails(a) : a)) as Parameters<typeof method>);
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

const PII_KEY = /^(e-?mail(_?address)?|phone(_?number)?|mobile|first_?name|last_?name|full_?name|name_full)$/i;
const SECRET_KEY = /^(password|token|access_?token|refresh_?token|client_?secret|write_?key|secret|authorization|private_?key|api_?key|connection_?string)$/i;
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

/** Every e-mail address in a text, masked (database and destination messages quote values). */
export function maskEmails(text: string): string {
  return text.includes('@') ? text.replace(EMAIL, (m) => maskPii(m)) : text;
}

/**
 * A copy of a log object with PII masked and secrets blanked at any depth: keys that name personal data
 * (email, phone, names) are masked, secret keys replaced, e-mail addresses inside any string masked; errors
 * keep their type, message and stack, masked. Cycles and depth beyond 8 are cut.
 */
export function maskDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskEmails(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1, seen));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  if (value instanceof Error) {
    out.type = value.name;
    out.message = maskEmails(value.message);
    if (value.stack) out.stack = maskEmails(value.stack);
  }
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEY.test(k)) out[k] = '[redacted]';
    else if (PII_KEY.test(k) && (typeof v === 'string' || typeof v === 'number')) out[k] = maskPii(String(v));
    else out[k] = maskDeep(v, depth + 1, seen);
  }
  return out;
}

/** Masks an e-mail or other identifier for a log line: keeps enough to correlate, not enough to identify. */
export function maskPii(value: string | null | undefined): string {
  if (value == null) return '';
  const at = value.indexOf('@');
  if (at > 0) return `${value[0]}***@${value.slice(at + 1).replace(/^[^.]*/, (d) => `${d[0] ?? ''}***`)}`;
  if (value.length <= 4) return '***';
  return `${value.slice(0, 2)}***${value.slice(-2)}`;
}
