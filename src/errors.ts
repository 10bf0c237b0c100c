import { maskText } from './pii/mask.ts';

/**
 * The error family. Every error segsync raises on purpose has a stable `code` (for receipts, metrics and
 * alerts), says whether trying again can help (`retryable`, with `retryAfterMs` when the other side said how
 * long), and keeps the original as `cause`. Classify with instanceof, never by matching message text.
 */
export class SegsyncError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** The request may have reached the other side and been applied (a timeout or reset after sending). */
  readonly inDoubt: boolean;
  readonly hint: string | undefined;

  constructor(code: string, message: string, opts: { cause?: unknown; retryable?: boolean; retryAfterMs?: number; inDoubt?: boolean; hint?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.inDoubt = opts.inDoubt ?? false;
    this.hint = opts.hint;
  }
}

/** One problem in a configuration or mapping file, with where it is. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
  hint?: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  const at = p.path ? ` (${p.path})` : '';
  return `${where}${at}: ${p.message}${p.hint ? `\n    hint: ${p.hint}` : ''}`;
}

/** Configuration or mapping files are wrong. Carries every problem found, not only the first. */
export class ConfigError extends SegsyncError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('CONFIG_INVALID', `${problems.length} configuration problem(s):\n${problems.map(formatProblem).join('\n')}`);
    this.problems = problems;
  }
}

/** The warehouse data cannot be used as it is (missing column, duplicate or NULL keys, bad input rows). */
export class DataError extends SegsyncError {}

/** A usage mistake on the command line (unknown mapping, bad flag value). */
export class UsageError extends SegsyncError {
  constructor(message: string, hint?: string) {
    super('USAGE', message, hint === undefined ? {} : { hint });
  }
}

/** Another process holds the mapping's run lock. */
export class LockedError extends SegsyncError {}

/**
 * A destination call failed. `status` is the HTTP status when there was one. The message never contains
 * credentials or request headers, and bodies are capped (see `capBody`).
 */
export class DestinationError extends SegsyncError {
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  constructor(code: string, message: string, opts: { cause?: unknown; retryable?: boolean; retryAfterMs?: number; inDoubt?: boolean; status?: number; requestId?: string } = {}) {
    super(code, message, opts);
    this.status = opts.status;
    this.requestId = opts.requestId;
  }
}

/**
 * The destination's budget for today is spent (HubSpot DAILY 429, Salesforce REQUEST_LIMIT_EXCEEDED or the
 * configured share of the daily limit). The run ends cleanly; what was not sent is deferred, not failed.
 */
export class BudgetExhaustedError extends DestinationError {
  /** Never retryable within the run, whatever the call site says: retrying cannot refill today's budget. */
  constructor(code: string, message: string, opts: ConstructorParameters<typeof DestinationError>[2] = {}) {
    super(code, message, { ...opts, retryable: false });
  }
}

const BODY_CAP = 500;

/** Caps a response body for an error message so a huge HTML error page cannot flood logs and receipts. */
export function capBody(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body) ?? '';
  return text.length > BODY_CAP ? `${text.slice(0, BODY_CAP)}… (${text.length} chars)` : text;
}

/** A message fit for a terminal: the message, the hint if any, and nothing else. */
export function describeError(err: unknown): string {
  // Shown to people: values a database or destination quoted (e-mail addresses, names) are masked.
  // Config and usage errors quote the user's own files and flags, never data: shown as they are.
  if (err instanceof ConfigError || err instanceof UsageError) return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  if (err instanceof SegsyncError) return maskText(err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message);
  if (err instanceof Error) return maskText(err.message);
  return maskText(String(err));
}
