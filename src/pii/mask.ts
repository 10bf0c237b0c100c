/**
 * The one masking module: everything shown to people (logs, events, alerts, the API, the dashboard, /status)
 * goes through these functions. Personal data is masked, secrets are blanked, at any depth. See docs/security.md.
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
  if (typeof value === 'string') return maskContacts(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1, seen));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  if (value instanceof Error) {
    out.type = value.name;
    out.message = maskText(value.message);
    if (value.stack) out.stack = maskText(value.stack);
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

const PHONE = /\+\d[\d\s().-]{6,}\d/g;
/** Words after which a double-quoted name is an identifier (column "email"), not a value. */
const IDENTIFIER_BEFORE = /(transform|column|relation|table|schema|function|type|constraint|index|role|database|sequence|view|trigger|operator|extension|collation|parameter|field|property|object|sobject|mapping|connection|cursor|savepoint|key)\s*$/i;

/**
 * Text from the database or a destination, which can quote the values it refused (`invalid input syntax for type
 * integer: "alice@example.com"`, `Key (email)=(alice@example.com) already exists`): every quoted value, every
 * `=(...)` detail, every e-mail address and international phone number masked; identifiers (column "x") kept.
 */
export function maskText(text: string): string {
  // A quoted name is kept when an identifier word precedes it (column "email") or it is a JSON key ("email": ...).
  let out = text.replace(/"((?:[^"\\]|\\.)*)"/g, (m, inner: string, offset: number) =>
    (IDENTIFIER_BEFORE.test(text.slice(Math.max(0, offset - 20), offset)) || /^\s*:/.test(text.slice(offset + m.length, offset + m.length + 3)) ? m : `"${maskPii(inner)}"`));
  out = out.replace(/=\(([^()]*)\)/g, (_m, inner: string) => `=(${inner.split(/,\s*/).map((v) => maskPii(v)).join(', ')})`);
  out = maskEmails(out);
  return out.includes('+') ? out.replace(PHONE, (m) => maskPii(m)) : out;
}

/** E-mail addresses and international phone numbers masked (values in any text). */
export function maskContacts(text: string): string {
  const out = maskEmails(text);
  return out.includes('+') ? out.replace(PHONE, (m) => maskPii(m)) : out;
}

/** What a value of a classified field (mapping `pii:`) looks like when shown. */
export function maskClassified(value: unknown, cls: string | undefined): unknown {
  if (value == null || cls === undefined || cls === 'none') return typeof value === 'string' ? maskText(value) : value;
  if (cls === 'free_text') return typeof value === 'string' ? `[text, ${value.length} chars]` : '[text]';
  return maskPii(String(value));
}

/** A record with its classified fields masked (field name -> class, e.g. from a mapping's fields' pii:). */
export function maskRecord(record: Record<string, unknown>, classes: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = classes[k] !== undefined ? maskClassified(v, classes[k]) : maskDeep(v);
  return out;
}

/**
 * maskDeep, plus the fields the mappings classify (`pii:` on a field: destination field name -> class) masked by
 * their class wherever they appear (a payload's before and after, samples, examples), at any depth. A name field
 * called `customer_name` is no key maskDeep knows: its classification is what says it is personal data.
 */
export function maskShown(value: unknown, classes: ReadonlyMap<string, string>): unknown {
  return maskDeep(classes.size ? maskFields(value, classes, 0) : value);
}

function maskFields(value: unknown, classes: ReadonlyMap<string, string>, depth: number): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Date || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => maskFields(v, classes, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const cls = classes.get(k);
    out[k] = cls !== undefined && (typeof v === 'string' || typeof v === 'number') ? maskClassified(v, cls) : maskFields(v, classes, depth + 1);
  }
  return out;
}

/** Destination field name -> class for every classified field of these mappings (`none` left out). */
export function fieldClasses(mappings: ReadonlyArray<{ fields: ReadonlyArray<{ to: string; pii?: string | undefined }> }>): Map<string, string> {
  const classes = new Map<string, string>();
  for (const m of mappings) for (const f of m.fields) if (f.pii && f.pii !== 'none') classes.set(f.to, f.pii);
  return classes;
}
