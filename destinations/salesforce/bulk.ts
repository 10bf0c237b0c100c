import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'csv-stringify/sync';
import { BudgetExhaustedError, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { RecordOutcome } from '../types.ts';
import type { SfApi } from './api.ts';
import type { SendItem } from './collections.ts';

/**
 * Upserts by external ID through one Bulk API 2.0 ingest job: create, upload the CSV, UploadComplete, poll
 * (with a timeout), then map the successful / failed / unprocessed result rows back to records by the
 * external id, since the service does not keep row order.
 */

export interface BulkOptions {
  pollIntervalMs: number;
  pollTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** A Bulk CSV cell: '#N/A' clears a field (an empty cell would leave it unchanged). */
function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '#N/A';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

export function toCsv(matchKey: string, items: SendItem[]): string {
  const cols = new Set<string>();
  for (const it of items) for (const k of Object.keys(it.values)) if (k !== matchKey) cols.add(k);
  const columns = [matchKey, ...cols];
  // A field one record does not carry stays as it is: an empty cell.
  const rows = items.map((it) => [it.key, ...[...cols].map((c) => (c in it.values ? cell(it.values[c]) : ''))]);
  return stringify([columns, ...rows], { record_delimiter: '\n' });
}

type Row = Record<string, string>;

function failedCode(err: string): { code: string; message: string } {
  const i = err.indexOf(':');
  return i > 0 ? { code: err.slice(0, i), message: err.slice(i + 1).replace(/ --$/, '') } : { code: 'BULK_ROW_FAILED', message: err };
}

export async function upsertViaBulk(api: SfApi, object: string, matchKey: string, items: SendItem[], opts: BulkOptions): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  const byKey = new Map(items.map((it) => [it.key, it]));
  const failAll = (code: string, message: string, retryable: boolean): Map<string, RecordOutcome> => {
    for (const it of items) if (!outcomes.has(it.key)) outcomes.set(it.key, { key: it.key, status: 'failed', errorCode: code, errorMessage: message, retryable });
    return outcomes;
  };
  const job = api.conn.bulk2.createJob({ object, operation: 'upsert', externalIdFieldName: matchKey, lineEnding: 'LF', columnDelimiter: 'COMMA' });
  // Writes that create or move the job are not retried by jsforce (POST/PATCH): api.write does it.
  await api.write(`bulk create ${object} upsert job`, () => job.open(), opts.signal);
  const jobId = job.id;
  const log = opts.log.child({ bulkJob: jobId, records: items.length });
  log.info('salesforce bulk job open');
  try {
    await api.once(`bulk upload ${jobId}`, () => job.uploadData(toCsv(matchKey, items)));
    await api.write(`bulk close ${jobId}`, () => job.close(), opts.signal);
  } catch (err) {
    await api.once(`bulk abort ${jobId}`, () => job.abort()).catch(() => undefined);
    throw err;
  }
  const deadline = Date.now() + opts.pollTimeoutMs;
  let state = 'UploadComplete';
  let errorMessage = '';
  for (;;) {
    await sleep(opts.pollIntervalMs, undefined, { signal: opts.signal }).catch(() => undefined);
    if (opts.signal.aborted) break;
    const info = await api.once(`bulk status ${jobId}`, () => job.check()) as { state: string; errorMessage?: string };
    state = info.state;
    errorMessage = info.errorMessage ?? '';
    if (state === 'JobComplete' || state === 'Failed' || state === 'Aborted') break;
    if (Date.now() > deadline) break;
  }
  if (state !== 'JobComplete' && state !== 'Failed') {
    // Abort so a job finishing late cannot write values a newer run has since replaced.
    await api.once(`bulk abort ${jobId}`, () => job.abort()).catch(() => undefined);
    const why = opts.signal.aborted ? 'the run was stopped' : `no result within ${opts.pollTimeoutMs} ms (state ${state})`;
    log.warn({ state }, 'salesforce bulk job abandoned');
    return failAll('BULK_POLL_TIMEOUT', `Bulk job ${jobId}: ${why}; the records will be sent again`, true);
  }
  let success: Row[];
  let failed: Row[];
  let unprocessed: Row[];
  try {
    success = await api.once(`bulk results ${jobId}`, () => job.getSuccessfulResults()) as unknown as Row[];
    failed = await api.once(`bulk failures ${jobId}`, () => job.getFailedResults()) as unknown as Row[];
    unprocessed = await api.once(`bulk unprocessed ${jobId}`, () => job.getUnprocessedRecords()) as unknown as Row[];
  } catch (err) {
    if (err instanceof BudgetExhaustedError) throw err;
    const e = err as DestinationError;
    return failAll('BULK_RESULTS_UNAVAILABLE', `Bulk job ${jobId} finished (${state}) but its results could not be read: ${e.message}`, true);
  }
  for (const r of success) {
    const key = r[matchKey];
    if (key !== undefined && byKey.has(key)) outcomes.set(key, { key, status: 'delivered', destinationId: r.sf__Id || null, created: r.sf__Created === 'true', requestId: jobId });
  }
  for (const r of failed) {
    const key = r[matchKey];
    if (key === undefined || !byKey.has(key)) continue;
    const { code, message } = failedCode(r.sf__Error ?? '');
    outcomes.set(key, { key, status: 'failed', errorCode: code, errorMessage: message, retryable: code === 'UNABLE_TO_LOCK_ROW', requestId: jobId });
  }
  // A job that failed outright (bad column) fails every record the same way; one that broke midway left the
  // rest unprocessed, which may go through when sent again.
  const invalid = /^InvalidBatch/i.test(errorMessage);
  for (const r of unprocessed) {
    const key = r[matchKey];
    if (key === undefined || !byKey.has(key) || outcomes.has(key)) continue;
    outcomes.set(key, { key, status: 'failed', errorCode: invalid ? 'BULK_INVALID_BATCH' : 'BULK_UNPROCESSED', errorMessage: `Bulk job ${jobId} ${state}: ${errorMessage || 'record not processed'}`, retryable: !invalid, requestId: jobId });
  }
  log.info({ state, delivered: success.length, failed: failed.length, unprocessed: unprocessed.length }, 'salesforce bulk job done');
  return failAll('BULK_RESULT_MISSING', `Bulk job ${jobId} (${state}) reported nothing for this record`, true);
}
