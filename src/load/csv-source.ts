import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CsvError, parse } from 'csv-parse';
import { SegsyncError, UsageError } from '../errors.ts';

/** One CSV record and the (1-based) line of the file where it starts; the header is normally line 1. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** The file cannot be read to the end (missing, unreadable, a corrupt gzip stream, broken CSV quoting). */
export class LoadFileError extends SegsyncError {}

async function isGzip(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'r');
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new LoadFileError('LOAD_FILE_UNREADABLE', `cannot open ${file}: ${why}`, { cause: err });
  } finally {
    await fh?.close();
  }
}

/**
 * Streams the records of a CSV file, gzip-compressed or not (told by its first bytes, not its name), in
 * constant memory. Empty lines are skipped; a record with a different number of fields than the header is
 * still yielded (the caller rejects it as a row), while broken quoting ends the read with a LoadFileError
 * because nothing after it can be trusted.
 */
export async function* readCsv(file: string, delimiter = ','): AsyncGenerator<CsvRecord> {
  const gz = await isGzip(file);
  const raw = createReadStream(file);
  const input: Readable = gz ? raw.pipe(createGunzip()) : raw;
  const parser = parse({ bom: true, delimiter, info: true, relax_column_count: true, skip_empty_lines: true });
  // Errors of the file or gzip stages reach the parser so the loop below sees them once, as one failure.
  raw.on('error', (err) => parser.destroy(err));
  if (gz) input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  let prevEnd = 0;
  let prevEmpty = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number; empty_lines: number } }>) {
      // info.lines is where the record ends; it starts after the previous record and any skipped empty lines.
      const line = prevEnd + 1 + (info.empty_lines - prevEmpty);
      prevEnd = info.lines;
      prevEmpty = info.empty_lines;
      yield { line, fields: record };
    }
  } catch (err) {
    throw fileError(file, gz, err);
  } finally {
    raw.destroy();
  }
}

function fileError(file: string, gz: boolean, err: unknown): SegsyncError {
  if (err instanceof SegsyncError) return err;
  if (err instanceof CsvError) {
    const line = (err as CsvError & { lines?: number }).lines;
    return new LoadFileError('LOAD_CSV_BROKEN', `${file}${line ? `:${line}` : ''}: broken CSV (${err.message.replace(/^Invalid /, 'invalid ')})`, {
      cause: err,
      hint: 'a quoting error makes every later row unreliable, so the load stops; fix the file and load it again',
    });
  }
  const e = err as NodeJS.ErrnoException;
  const what = e.code?.startsWith('Z_') || e.code === 'ERR_ZLIB' ? `corrupt gzip data (${e.message})` : e.message;
  return new LoadFileError('LOAD_FILE_UNREADABLE', `cannot read ${file}${gz ? ' (gzip)' : ''} to the end: ${what}`, { cause: err });
}

/** Reads the header record; an empty file has none. */
export async function readHeader(file: string, records: AsyncIterator<CsvRecord>): Promise<CsvRecord> {
  const first = await records.next();
  if (first.done) throw new LoadFileError('LOAD_FILE_EMPTY', `${file} is empty: expected a header line naming the columns`);
  return { line: first.value.line, fields: first.value.fields.map((f) => f.trim()) };
}

/**
 * Parses `--columns user_id=CustomerID,payment_id=InvoiceNo`: target (a contract column) = header column.
 * Targets left out map to the header column of the same name.
 */
export function parseColumnSpec(spec: string | undefined, targets: readonly string[]): Map<string, string> {
  const map = new Map(targets.map((t) => [t, t]));
  if (!spec) return map;
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const target = part.slice(0, eq).trim();
    const source = part.slice(eq + 1).trim();
    if (eq < 0 || !target || !source) throw new UsageError(`--columns: "${part}" is not target=HeaderColumn`, `e.g. --columns user_id=CustomerID,payment_id=InvoiceNo`);
    if (!targets.includes(target)) throw new UsageError(`--columns: unknown target column "${target}"`, `the targets are ${targets.join(', ')}`);
    map.set(target, source);
  }
  return map;
}

/** Finds each mapped column in the header; a missing or ambiguous one is an error that lists the header. */
export function resolveColumns(file: string, header: string[], mapping: Map<string, string>): Map<string, number> {
  const listed = header.map((h) => (h === '' ? '(empty)' : h)).join(', ');
  const out = new Map<string, number>();
  for (const [target, source] of mapping) {
    const at = header.flatMap((h, i) => (h === source ? [i] : []));
    if (at.length === 0) {
      const mapped = source === target ? '' : ` (mapped to ${target})`;
      // One column whose name holds another separator: the file is not comma-separated.
      const other = header.length === 1 ? [';', '\t', '|'].find((d) => header[0]!.includes(d)) : undefined;
      const hint = other ? `the header is one column holding "${other === '\t' ? '\\t' : other}": pass --delimiter "${other === '\t' ? '\\t' : other}"` : `map columns with --columns ${target}=<header column>`;
      throw new UsageError(`${file}: the header has no column "${source}"${mapped}; its columns are: ${listed}`, hint);
    }
    if (at.length > 1) throw new UsageError(`${file}: the header names column "${source}" ${at.length} times; its columns are: ${listed}`);
    out.set(target, at[0]!);
  }
  return out;
}
