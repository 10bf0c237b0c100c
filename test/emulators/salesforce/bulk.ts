import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { CollectionsFaults, Reply } from './collections.ts';
import { apiError } from './collections.ts';
import type { Org, PlannedWrite, SfError, SfRecord } from './org.ts';

/**
 * Bulk API 2.0 ingest jobs: create (Open), PUT CSV, PATCH UploadComplete, processing in chunks of 10,000
 * rows (InProgress -> JobComplete), and the successful / failed / unprocessed result CSVs. Result rows are
 * shuffled because the real service does not keep row order either.
 */

interface Job {
  id: string;
  object: string;
  operation: string;
  externalIdFieldName: string;
  state: 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';
  csv: string[];
  columns: string[] | null;
  success: string[][];
  failed: string[][];
  unprocessed: string[][];
  processed: number;
  errorMessage: string | null;
  createdDate: string;
  apiVersion: string;
}

export interface BulkOptions {
  /** Delay before an uploaded job is processed (the real service queues it). */
  processingDelayMs: number;
  /** Fail the next job after this many rows: the rest are unprocessed (a seeded fault). */
  failNextJobAfterRows: number | null;
}

const CHUNK = 10_000;

export class BulkIngest {
  readonly jobs = new Map<string, Job>();
  private seq = 0;
  private readonly org: Org;
  private readonly faults: CollectionsFaults;
  readonly options: BulkOptions;

  constructor(org: Org, faults: CollectionsFaults, options: BulkOptions) {
    this.org = org;
    this.faults = faults;
    this.options = options;
  }

  private info(j: Job): Record<string, unknown> {
    return {
      id: j.id, operation: j.operation, object: j.object, createdById: '005000000000001AAA', createdDate: j.createdDate,
      systemModstamp: j.createdDate, state: j.state, externalIdFieldName: j.externalIdFieldName, concurrencyMode: 'Parallel',
      contentType: 'CSV', apiVersion: Number(j.apiVersion), jobType: 'V2Ingest', lineEnding: 'LF', columnDelimiter: 'COMMA',
      numberRecordsProcessed: j.processed, numberRecordsFailed: j.failed.length, retries: 0, totalProcessingTime: 0,
      ...(j.errorMessage ? { errorMessage: j.errorMessage } : {}),
    };
  }

  create(raw: string, apiVersion: string): Reply {
    let b: Record<string, unknown>;
    try { b = JSON.parse(raw) as Record<string, unknown>; } catch { return apiError(400, 'JSON_PARSER_ERROR', 'Unexpected character in request body'); }
    const object = typeof b.object === 'string' ? b.object : '';
    if (!this.org.object(object)) return apiError(400, 'INVALIDENTITY', `Entity '${object}' is not supported by the Bulk API.`);
    const operation = String(b.operation ?? '');
    if (!['insert', 'update', 'upsert', 'delete'].includes(operation)) return apiError(400, 'INVALIDJOB', `Unsupported operation: ${operation}`);
    const ext = String(b.externalIdFieldName ?? '');
    if (operation === 'upsert') {
      const f = this.org.fieldOf(object, ext);
      if (!f || !(f.externalId || f.name === 'Id')) return apiError(400, 'INVALIDJOB', `External ID field '${ext}' is not an external ID field on ${object}`);
    }
    if ((b.contentType ?? 'CSV') !== 'CSV') return apiError(400, 'INVALIDJOB', 'contentType must be CSV');
    this.seq += 1;
    const id = `750${String(this.seq).padStart(12, '0')}AAA`;
    const job: Job = {
      id, object, operation, externalIdFieldName: ext, state: 'Open', csv: [], columns: null, success: [], failed: [], unprocessed: [],
      processed: 0, errorMessage: null, createdDate: new Date().toISOString(), apiVersion,
    };
    this.jobs.set(id, job);
    return { status: 200, body: this.info(job) };
  }

  upload(id: string, contentType: string, raw: string): Reply {
    const j = this.jobs.get(id);
    if (!j) return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    if (j.state !== 'Open') return apiError(409, 'INVALIDJOBSTATE', `Job ${id} is not Open: ${j.state}`);
    if (!contentType.startsWith('text/csv')) return apiError(400, 'INVALIDCONTENTTYPE', 'Content-Type must be text/csv');
    if (Buffer.byteLength(raw) > 150 * 1024 * 1024) return apiError(400, 'INVALIDBATCH', 'upload exceeds 150 MB');
    j.csv.push(raw);
    return { status: 201, body: '' };
  }

  patch(id: string, raw: string): Reply {
    const j = this.jobs.get(id);
    if (!j) return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    let state = '';
    try { state = String((JSON.parse(raw) as { state?: unknown }).state ?? ''); } catch { /* invalid below */ }
    if (state === 'Aborted') {
      if (j.state === 'JobComplete' || j.state === 'Failed') return apiError(409, 'INVALIDJOBSTATE', `Job is ${j.state}`);
      j.state = 'Aborted';
    } else if (state === 'UploadComplete') {
      if (j.state !== 'Open') return apiError(409, 'INVALIDJOBSTATE', `Job ${id} is not Open: ${j.state}`);
      j.state = 'UploadComplete';
      // An abort in the meantime wins: an aborted job is never picked up or processed.
      setTimeout(() => {
        if (j.state !== 'UploadComplete') return;
        j.state = 'InProgress';
        setTimeout(() => { if (j.state === 'InProgress') this.process(j); }, this.options.processingDelayMs);
      }, this.options.processingDelayMs);
    } else {
      return apiError(400, 'INVALIDJOBSTATE', `Invalid state: ${state}`);
    }
    return { status: 200, body: this.info(j) };
  }

  status(id: string): Reply {
    const j = this.jobs.get(id);
    return j ? { status: 200, body: this.info(j) } : apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  results(id: string, kind: 'successfulResults' | 'failedResults' | 'unprocessedrecords'): Reply & { csv?: true } {
    const j = this.jobs.get(id);
    if (!j) return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    if (j.state !== 'JobComplete' && j.state !== 'Failed' && j.state !== 'Aborted') return apiError(400, 'INVALIDJOBSTATE', `Job ${id} is ${j.state}`);
    const cols = j.columns ?? [];
    const [head, rows] = kind === 'successfulResults' ? [['sf__Id', 'sf__Created', ...cols], j.success]
      : kind === 'failedResults' ? [['sf__Id', 'sf__Error', ...cols], j.failed] : [cols, j.unprocessed];
    return { status: 200, body: stringify([head, ...shuffle(rows)], { record_delimiter: '\n' }), csv: true };
  }

  private process(j: Job): void {
    if (j.state !== 'InProgress') return;
    const rows: string[][] = [];
    let columns: string[] | null = null;
    for (const part of j.csv) {
      const parsed = parse(part, { relax_column_count: false, skip_empty_lines: true }) as string[][];
      const [head, ...body] = parsed;
      if (!head) continue;
      if (columns && columns.join(',') !== head.join(',')) { this.fail(j, 'InvalidBatch : all uploads of a job must have the same header row', rows); return; }
      columns = head;
      rows.push(...body);
    }
    j.columns = columns ?? [];
    for (const c of j.columns) {
      if (!this.org.fieldOf(j.object, c)) { this.fail(j, `InvalidBatch : Field name not found : ${c}`, rows); return; }
    }
    const failAfter = this.options.failNextJobAfterRows;
    this.options.failNextJobAfterRows = null;
    for (let start = 0; start < rows.length; start += CHUNK) {
      const chunk = rows.slice(start, start + CHUNK);
      if (failAfter !== null && start + chunk.length > failAfter) {
        const keep = Math.max(0, failAfter - start);
        this.processChunk(j, chunk.slice(0, keep));
        j.unprocessed.push(...rows.slice(start + keep));
        j.state = 'Failed';
        j.errorMessage = 'InternalServerError : the job failed while processing';
        return;
      }
      this.processChunk(j, chunk);
    }
    j.state = 'JobComplete';
  }

  private fail(j: Job, message: string, rows: string[][]): void {
    j.state = 'Failed';
    j.errorMessage = message;
    j.unprocessed.push(...rows);
  }

  private processChunk(j: Job, chunk: string[][]): void {
    const cols = j.columns!;
    const extIdx = cols.findIndex((c) => c.toLowerCase() === j.externalIdFieldName.toLowerCase());
    const counts = new Map<string, number>();
    for (const r of chunk) {
      const k = (r[extIdx] ?? '').toLowerCase();
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const row of chunk) {
      j.processed += 1;
      const res = this.processRow(j, row, extIdx, counts);
      if ('errors' in res) {
        const e = res.errors[0]!;
        j.failed.push(['', `${e.statusCode}:${e.message}:${e.fields.join(',')} --`, ...row]);
      } else {
        this.org.apply(res.plan);
        j.success.push([res.plan.id, String(res.plan.created), ...row]);
      }
    }
  }

  private processRow(j: Job, row: string[], extIdx: number, counts: Map<string, number>): { plan: PlannedWrite } | { errors: SfError[] } {
    if (j.operation !== 'upsert' || extIdx < 0) return { errors: [{ statusCode: 'INVALIDJOB', message: 'this emulator processes upsert jobs with the external id column', fields: [] }] };
    const extValue = row[extIdx] ?? '';
    if ((counts.get(extValue.toLowerCase()) ?? 0) > 1) return { errors: [{ statusCode: 'DUPLICATE_VALUE', message: `Duplicate external id specified: ${extValue}`, fields: [j.externalIdFieldName] }] };
    const left = this.faults.locked.get(extValue);
    if (left) {
      if (left <= 1) this.faults.locked.delete(extValue); else this.faults.locked.set(extValue, left - 1);
      return { errors: [{ statusCode: 'UNABLE_TO_LOCK_ROW', message: 'unable to obtain exclusive access to this record or 1 records', fields: [] }] };
    }
    const values: SfRecord = {};
    for (const [idx, c] of j.columns!.entries()) {
      if (idx === extIdx) continue;
      const f = this.org.fieldOf(j.object, c)!;
      const v = this.org.coerceCsv(f, row[idx] ?? '');
      if (v !== null && typeof v === 'object') return { errors: [v] };
      if (v !== undefined) values[f.name] = v;
    }
    const ext = this.org.fieldOf(j.object, j.externalIdFieldName)!;
    return this.org.planUpsert(j.object, ext.name, extValue, values);
  }
}

function shuffle<T>(a: T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const k = Math.floor(Math.random() * (i + 1));
    [out[i], out[k]] = [out[k]!, out[i]!];
  }
  return out;
}
