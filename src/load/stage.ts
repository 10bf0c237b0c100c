import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** A column of a staging table: its name and SQL type. */
export interface StageColumn {
  name: string;
  type: string;
}

export type StageValue = string | number;

/** Rows per INSERT on the embedded database: big enough to amortise the round trip, small enough for its memory. */
const EMBEDDED_BATCH = 5_000;
/** Bytes of COPY text gathered before a write, so the stream is not driven one row at a time. */
const COPY_CHUNK = 256 * 1024;

/** Creates a temporary table (dropped at commit or rollback) with the given columns. */
export async function createStageTable(client: pg.PoolClient, table: string, columns: StageColumn[]): Promise<void> {
  await client.query(`create temp table ${table} (${columns.map((c) => `${c.name} ${c.type}`).join(', ')}) on commit drop`);
}

/**
 * Streams rows into a staging table inside the caller's transaction and returns how many were written. On a
 * real server this is COPY FROM STDIN; the embedded PGlite cannot take COPY over its socket, so there rows go
 * in batched `INSERT ... SELECT FROM unnest(...)`. Either way memory stays constant: rows are pulled from
 * `rows` only as fast as the database takes them. An error from `rows` (a file that breaks midway) aborts
 * the COPY and surfaces here; the caller's ROLLBACK then discards everything.
 */
export async function stageRows(client: pg.PoolClient, embedded: boolean, table: string, columns: StageColumn[], rows: AsyncIterable<StageValue[]>): Promise<number> {
  return embedded ? insertBatches(client, table, columns, rows) : copyRows(client, table, columns, rows);
}

async function copyRows(client: pg.PoolClient, table: string, columns: StageColumn[], rows: AsyncIterable<StageValue[]>): Promise<number> {
  let count = 0;
  async function* text(): AsyncGenerator<string> {
    let chunk = '';
    for await (const row of rows) {
      count++;
      chunk += row.map(copyText).join('\t') + '\n';
      if (chunk.length >= COPY_CHUNK) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  const copy = client.query(copyFrom(`copy ${table} (${columns.map((c) => c.name).join(', ')}) from stdin`));
  await pipeline(Readable.from(text()), copy);
  return count;
}

/** COPY text format: backslash, tab, newline and carriage return are escaped; nothing else needs to be. */
function copyText(v: StageValue): string {
  if (typeof v === 'number') return String(v);
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
}

async function insertBatches(client: pg.PoolClient, table: string, columns: StageColumn[], rows: AsyncIterable<StageValue[]>): Promise<number> {
  const sql = `insert into ${table} (${columns.map((c) => c.name).join(', ')}) select * from unnest(${columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')})`;
  let batch: StageValue[][] = columns.map(() => []);
  let inBatch = 0;
  let count = 0;
  const flush = async () => {
    if (inBatch === 0) return;
    await client.query(sql, batch);
    batch = columns.map(() => []);
    inBatch = 0;
  };
  for await (const row of rows) {
    for (let i = 0; i < columns.length; i++) batch[i]!.push(row[i]!);
    inBatch++;
    count++;
    if (inBatch >= EMBEDDED_BATCH) await flush();
  }
  await flush();
  return count;
}
