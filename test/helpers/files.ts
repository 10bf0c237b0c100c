import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Every record the file destination committed (files with a manifest), in delivery order. */
export async function committedRecords(dir: string): Promise<Array<Record<string, unknown>>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.manifest.json')).sort();
  const out: Array<Record<string, unknown>> = [];
  for (const n of names) {
    const manifest = JSON.parse(await readFile(path.join(dir, n), 'utf8')) as { file: string };
    const text = await readFile(path.join(dir, manifest.file), 'utf8');
    for (const line of text.split('\n').filter(Boolean)) out.push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

/** key -> the last committed record for it. */
export async function latestByKey(dir: string, key = 'customer_id'): Promise<Map<string, Record<string, unknown>>> {
  const m = new Map<string, Record<string, unknown>>();
  for (const r of await committedRecords(dir)) m.set(String(r[key]), r);
  return m;
}
