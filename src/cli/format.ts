import { stringify } from 'csv-stringify/sync';
import { UsageError } from '../errors.ts';

export type Format = 'table' | 'json' | 'csv';

export function parseFormat(value: string): Format {
  if (value === 'table' || value === 'json' || value === 'csv') return value;
  throw new UsageError(`--format must be table, json or csv (got '${value}')`);
}

/** Plain aligned columns for a terminal; numbers right-aligned. */
export function table(rows: Array<Record<string, unknown>>, columns?: string[]): string {
  if (!rows.length) return '(none)\n';
  const cols = columns ?? Object.keys(rows[0]!);
  // One line per row whatever a value holds: a multi-line error is joined with ' / ', never breaks the table.
  const cell = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v)).replace(/\s*[\r\n]+\s*/g, ' / ');
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === 'number' || r[c] == null));
  const line = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + '\n';
}

export function render(rows: Array<Record<string, unknown>>, format: Format, columns?: string[]): string {
  if (format === 'json') return JSON.stringify(rows, null, 2) + '\n';
  if (format === 'csv') return stringify(rows, { header: true, ...(columns ? { columns } : {}), cast: { date: (d) => d.toISOString(), object: (o) => JSON.stringify(o) } });
  return table(rows, columns);
}
