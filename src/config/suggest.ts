import type { z } from 'zod';

/**
 * "Did you mean": the keys a zod schema allows at a path, and the nearest one to a mistyped key. Used for
 * unknown-key problems in config and mapping files, so `shedule:` says `did you mean 'schedule'?`.
 */

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; in?: z.ZodType; out?: z.ZodType; options?: z.ZodType[]; valueType?: z.ZodType; getter?: () => z.ZodType; left?: z.ZodType; right?: z.ZodType };

function def(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object schemas a value at this level may be (through optional, default, pipe, union, lazy...). */
function objects(schema: z.ZodType | undefined, depth = 0): Array<Record<string, z.ZodType>> {
  if (!schema || depth > 20) return [];
  const d = def(schema);
  switch (d.type) {
    case 'object': return d.shape ? [d.shape] : [];
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional':
      return objects(d.innerType, depth + 1);
    case 'pipe': return [...objects(d.in, depth + 1), ...objects(d.out, depth + 1)];
    case 'union': return (d.options ?? []).flatMap((o) => objects(o, depth + 1));
    case 'intersection': return [...objects(d.left, depth + 1), ...objects(d.right, depth + 1)];
    case 'lazy': return d.getter ? objects(d.getter(), depth + 1) : [];
    default: return [];
  }
}

/** What is inside a value at this level for one path step (an object key, an array index, a record key). */
function step(schema: z.ZodType | undefined, part: string | number, depth = 0): z.ZodType[] {
  if (!schema || depth > 20) return [];
  const d = def(schema);
  switch (d.type) {
    case 'object': return d.shape && typeof part === 'string' && d.shape[part] ? [d.shape[part]] : [];
    case 'array': return d.element ? [d.element] : [];
    case 'record': return d.valueType ? [d.valueType] : [];
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional':
      return step(d.innerType, part, depth + 1);
    case 'pipe': return [...step(d.in, part, depth + 1), ...step(d.out, part, depth + 1)];
    case 'union': return (d.options ?? []).flatMap((o) => step(o, part, depth + 1));
    case 'intersection': return [...step(d.left, part, depth + 1), ...step(d.right, part, depth + 1)];
    case 'lazy': return d.getter ? step(d.getter(), part, depth + 1) : [];
    default: return [];
  }
}

/** Every key the schema allows for the object at `parts`. */
export function allowedKeys(schema: z.ZodType, parts: ReadonlyArray<string | number>): string[] {
  let at: z.ZodType[] = [schema];
  for (const p of parts) at = at.flatMap((s) => step(s, p));
  return [...new Set(at.flatMap((s) => objects(s)).flatMap((shape) => Object.keys(shape)))];
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The allowed key nearest to `key` (same letters ignoring case, _ and -, or a small edit distance), if any. */
export function nearestKey(key: string, allowed: readonly string[]): string | undefined {
  const norm = (k: string) => k.toLowerCase().replace(/[-_]/g, '');
  let best: { key: string; d: number } | undefined;
  for (const k of allowed) {
    const d = norm(k) === norm(key) ? 0 : distance(key.toLowerCase(), k.toLowerCase());
    if (!best || d < best.d) best = { key: k, d };
  }
  if (!best) return undefined;
  return best.d <= Math.max(1, Math.min(3, Math.floor(key.length / 3))) ? best.key : undefined;
}
