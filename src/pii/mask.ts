/**
 * The one masking module: everything shown to people (logs, events, alerts, the API, the dashboard, /status)
 * goes through these functions. Personal data is masked, secrets are blanked, at any depth. See docs/pii.md.
 */
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
