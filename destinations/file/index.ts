import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { z } from 'zod';
import { DestinationError } from '../../src/errors.ts';
import type { Change, DestinationDefinition, DestinationSession, Payload, ReadBackRequest, ReadBackResult } from '../types.ts';
import { compareToExpected } from '../compare.ts';

/**
 * Batch export to files: the seed's "batch unloads" for systems that take files (SFTP drops, data shares).
 * Every batch is one file, written to a temp name, fsynced and renamed; then a manifest (ledger, run, counts,
 * sha256) is written the same way. The manifest is the commit point: a data file without one was never
 * confirmed and is ignored by read-back, and its records are sent again by the next run.
 *
 * Batch names carry the ledger's identity as well as the run id (`run-<ledger>-<run>-<seq>`): run ids start at
 * 1 again in a new state database, and two ledgers' batches would otherwise overwrite each other. A folder
 * holding another ledger's batches is refused unless the mapping sets allow_other_ledger; read-back reads only
 * this ledger's batches (and those written before batches carried a ledger, which cannot be told apart).
 */
export const FileConnection = z.strictObject({
  type: z.literal('file'),
  directory: z.string().min(1).describe('folder the files go to (one sub-folder per mapping)'),
  format: z.enum(['ndjson', 'csv']).default('ndjson'),
});
export type FileConnection = z.infer<typeof FileConnection>;

export const FileOptions = z.strictObject({
  format: z.enum(['ndjson', 'csv']).optional().describe('overrides the connection\'s format'),
  throttle_ms: z.number().int().min(0).max(60_000).default(0).describe('pause before each batch file (to watch a run or spread disk load)'),
  allow_other_ledger: z.boolean().default(false).describe('write into a folder that holds batches of another segsync ledger (another state database); each reads back only its own'),
});
export type FileOptions = z.infer<typeof FileOptions>;

interface Manifest {
  /** The ledger that wrote the batch; absent in batches written before batches carried one. */
  ledger_id?: string | null;
  mapping: string;
  run_id: number | null;
  file: string;
  format: 'ndjson' | 'csv';
  records: number;
  counts: Record<Change['op'], number>;
  sha256: string;
  written_at: string;
}

/**
 * Writes `chunks` to a temp file, fsyncs it and renames it to `file`; the file appears whole or not at all. The
 * temp name ends in `.tmp`, so a process killed mid-write leaves nothing that reads as a batch or a manifest.
 */
async function writeAtomically(file: string, chunks: Iterable<string | Buffer>): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    // writeFile on a handle writes all of the chunk, from where the previous one ended.
    for (const chunk of chunks) await handle.writeFile(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}

/**
 * Records per chunk of a batch file. A batch is formatted and written a chunk at a time: each chunk's text
 * is short-lived and small (tens of KB), where one string for the whole file would be a megabyte-sized object
 * that only a full garbage collection frees.
 */
const CHUNK_RECORDS = 500;

/** The short form of a ledger id in batch names: 12 hex digits (the manifest holds the whole id). */
function ledgerTag(ledgerId: string): string {
  return ledgerId.replaceAll('-', '').slice(0, 12).toLowerCase();
}

/** `run-<12 hex>-<run>-<seq>.<format>.manifest.json` -> the ledger tag; null for a batch without one. */
const TAGGED_MANIFEST = /^run-([0-9a-f]{12})-\d+-\d+\.[a-z]+\.manifest\.json$/;
/** A batch's run and sequence, with or without a ledger tag. */
const BATCH_ORDER = /^run-(?:[0-9a-f]{12}-)?(\d+)-(\d+)\./;

export const fileDestination = {
  type: 'file',
  description: 'CSV or NDJSON batch files with manifests, written atomically',
  connectionSchema: FileConnection,
  optionsSchema: FileOptions,
  supportsRemoval: ['clear', 'delete'],
  async connect(ctx): Promise<DestinationSession> {
    const { mapping } = ctx;
    const format = ctx.options.format ?? ctx.connection.format;
    const dir = path.resolve(ctx.connection.directory, mapping.name);
    const matchKey = mapping.destination.match_key;
    const columns = ['_op', matchKey, ...mapping.fields.map((f) => f.to)];
    const runTag = String(ctx.runId ?? 0).padStart(8, '0');
    const own = ctx.ledgerId === undefined ? null : ledgerTag(ctx.ledgerId);
    const prefix = own === null ? `run-${runTag}` : `run-${own}-${runTag}`;
    let seq = 0;
    let index: Map<string, Payload | null> | null = null;

    /** Refuses a folder holding batches of another ledger (once per session), unless the mapping allows it. */
    let foreignChecked: Promise<void> | null = null;
    const refuseOtherLedger = () => foreignChecked ??= (async () => {
      if (own === null || ctx.options.allow_other_ledger) return;
      const names = await readdir(dir).catch(() => [] as string[]);
      const other = names.find((n) => { const tag = TAGGED_MANIFEST.exec(n)?.[1]; return tag !== undefined && tag !== own; });
      if (other === undefined) return;
      let otherId = TAGGED_MANIFEST.exec(other)![1]!;
      try {
        otherId = (JSON.parse(await readFile(path.join(dir, other), 'utf8')) as Manifest).ledger_id ?? otherId;
      } catch {
        // the tag in the name is enough to name it
      }
      throw new DestinationError('FILE_OTHER_LEDGER', `${dir} holds batches of another segsync ledger (${otherId}, e.g. ${other}); this ledger is ${ctx.ledgerId}. Not writing there, so that neither ledger's read-back mistakes the other's batches for its own`, {
        retryable: false,
      });
    })().catch((err: unknown) => { foreignChecked = null; throw err; });

    const recordOf = (c: Change): Payload => {
      if (c.op !== 'remove') return c.after ?? {};
      // A removal carries the last delivered fields emptied (clear) or nothing but the key (delete).
      return mapping.on_removed === 'clear' ? Object.fromEntries(Object.keys(c.before ?? {}).map((k) => [k, null])) : {};
    };

    const loadIndex = async (): Promise<Map<string, Payload | null>> => {
      const latest = new Map<string, Payload | null>();
      // This ledger's batches only (another ledger's are another state's deliveries) and those from before
      // batches carried a ledger, in the order they were written: by run, then sequence (run ids go on
      // growing in one state database, so a batch from before the upgrade comes before the later ones).
      const all = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.manifest.json'));
      const names = (own === null ? all : all.filter((n) => (TAGGED_MANIFEST.exec(n)?.[1] ?? own) === own))
        .map((n) => ({ n, order: BATCH_ORDER.exec(n) }))
        .sort((a, b) => (Number(a.order?.[1] ?? -1) - Number(b.order?.[1] ?? -1)) || (Number(a.order?.[2] ?? -1) - Number(b.order?.[2] ?? -1)) || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
        .map((x) => x.n);
      for (const name of names) {
        let rows: Array<Record<string, unknown>>;
        let file = name;
        try {
          const manifest = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Manifest;
          // A tagged name is checked by its whole id too (12 hex digits of two ids could agree).
          if (own !== null && manifest.ledger_id != null && manifest.ledger_id !== ctx.ledgerId) continue;
          file = manifest.file;
          const text = await readFile(path.join(dir, file), 'utf8');
          rows = manifest.format === 'csv'
            ? parseCsv(text, { columns: true, skip_empty_lines: true })
            : text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        } catch (err) {
          throw new DestinationError('FILE_READ_FAILED', `reading back ${path.join(dir, file)} failed: ${(err as Error).message}`, { cause: err });
        }
        for (const row of rows) {
          const { _op, [matchKey]: key, ...fields } = row;
          if (_op === 'remove' && mapping.on_removed !== 'clear') latest.set(String(key), null);
          else latest.set(String(key), fields as Payload);
        }
      }
      return latest;
    };

    return {
      // 5,000 records a file by default: at 1M records it delivers as fast as 10,000 (bench:sync) with half
      // the records in memory at once.
      limits: { maxBatchSize: 10_000, defaultBatchSize: 5_000, maxConcurrency: 4, defaultConcurrency: 2, readBackBatchSize: 10_000 },
      async check() {
        try {
          // The folder is created by the first delivery, not here: a run that fails before sending (a
          // missing column, a held plan) leaves no empty output folder behind. Until then, the nearest
          // existing parent must be writable.
          if (await exists(dir)) {
            await writeAtomically(path.join(dir, '.write-check'), ['ok']);
            await rm(path.join(dir, '.write-check'));
          } else {
            let parent = path.dirname(dir);
            while (!(await exists(parent)) && path.dirname(parent) !== parent) parent = path.dirname(parent);
            await access(parent, constants.W_OK);
          }
        } catch (err) {
          throw new DestinationError('FILE_NOT_WRITABLE', `cannot write to ${dir}: ${(err as Error).message}`, { cause: err });
        }
        await refuseOtherLedger();
      },
      async describeFields() {
        return columns.slice(1).map((name) => ({ name, type: 'any', writable: true }));
      },
      async validateMapping() {
        return [];
      },
      async deliver(changes, signal) {
        await refuseOtherLedger();
        if (ctx.options.throttle_ms) await sleep(ctx.options.throttle_ms, undefined, { signal });
        const name = `${prefix}-${String(++seq).padStart(6, '0')}.${format}`;
        const rowOf = (c: Change) => ({ _op: c.op, [matchKey]: c.key, ...recordOf(c) });
        const hash = createHash('sha256');
        // Each chunk is encoded once: the same bytes are hashed and written.
        function* body(): Generator<Buffer> {
          for (let i = 0; i === 0 || i < changes.length; i += CHUNK_RECORDS) {
            const part = changes.slice(i, i + CHUNK_RECORDS);
            let text = '';
            if (format === 'csv') text = stringifyCsv(part.map(rowOf), { header: i === 0, columns, cast: { boolean: (v) => String(v) } });
            else for (const c of part) text += JSON.stringify(rowOf(c)) + '\n';
            const bytes = Buffer.from(text);
            hash.update(bytes);
            yield bytes;
          }
        }
        const counts = { create: 0, update: 0, remove: 0 };
        for (const c of changes) counts[c.op]++;
        try {
          await mkdir(dir, { recursive: true });
          await writeAtomically(path.join(dir, name), body());
          const manifest: Manifest = {
            ledger_id: ctx.ledgerId ?? null, mapping: mapping.name, run_id: ctx.runId ?? null, file: name, format, records: changes.length, counts,
            sha256: hash.digest('hex'), written_at: new Date().toISOString(),
          };
          await writeAtomically(path.join(dir, `${name}.manifest.json`), [JSON.stringify(manifest, null, 2)]);
        } catch (err) {
          throw new DestinationError('FILE_WRITE_FAILED', `writing ${name} failed: ${(err as Error).message}`, { cause: err, retryable: true });
        }
        index = null;
        return { outcomes: changes.map((c) => ({ key: c.key, status: 'delivered' as const, destinationId: `${name}` , requestId: name })) };
      },
      async readBack(requests: ReadBackRequest[]): Promise<ReadBackResult[]> {
        index ??= await loadIndex();
        const current = index;
        return requests.map((r) => {
          const actual = current.get(r.key);
          if (actual == null) return { key: r.key, status: 'missing' as const };
          return { key: r.key, ...compareToExpected(r.expected, actual) };
        });
      },
      async close() {},
    };
  },
} satisfies DestinationDefinition<FileConnection, FileOptions>;

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}
