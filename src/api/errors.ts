import { openRef, sealRef } from '../pii/refs.ts';
/**
 * Errors the API answers with: `{ error: { code, message, ...details } }` and an HTTP status. Every refusal
 * names what was wrong (the parameter, the value, what is allowed), never an empty 200.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const notFound = (what: string, id: string | number, hint?: string) =>
  new ApiError(404, 'NOT_FOUND', `no ${what} ${JSON.stringify(String(id))}`, { [what.replace(/\s+/g, '_')]: String(id), ...(hint ? { hint } : {}) });

export const badRequest = (code: string, message: string, details: Record<string, unknown> = {}) => new ApiError(400, code, message, details);

export const conflict = (code: string, message: string, details: Record<string, unknown> = {}) => new ApiError(409, code, message, details);

/** `value` (comma-separated) as a list of allowed values, or a 400 that names the parameter and the allowed values. */
export function allowedList<T extends string>(parameter: string, value: string | undefined, allowed: readonly T[]): T[] | undefined {
  if (value === undefined || value === '') return undefined;
  const parts = value.split(',').map((v) => v.trim());
  const bad = parts.filter((p) => !(allowed as readonly string[]).includes(p));
  if (bad.length) {
    throw badRequest('BAD_FILTER', `${parameter} '${bad.join(',')}' is not allowed; one of: ${allowed.join(', ')}`, { parameter, value: bad.join(','), allowed });
  }
  return parts as T[];
}

/** Opaque keyset cursors: base64url JSON. A cursor that does not decode to what its route expects is a 400. */
/** Cursors are sealed (src/pii/refs.ts): a page of records by key never puts a key into a URL. */
export function encodeCursor(v: string | number): string {
  return sealRef(JSON.stringify({ v }), 'c_');
}

export function decodeCursor(cursor: string | undefined, kind: 'id' | 'key'): number | string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    const opened = openRef(cursor, 'c_');
    v = opened === null ? undefined : (JSON.parse(opened) as { v?: unknown }).v;
  } catch {
    v = undefined;
  }
  const ok = kind === 'id' ? typeof v === 'number' && Number.isSafeInteger(v) && v > 0 : typeof v === 'string';
  if (!ok) throw badRequest('BAD_CURSOR', `cursor '${cursor.slice(0, 80)}' is not a cursor of this list: pass the nextCursor of the previous page, or none for the first page`, { parameter: 'cursor' });
  return v as number | string;
}
