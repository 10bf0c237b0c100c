import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'csv-stringify/sync';
import { BudgetExhaustedError, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { RecordOutcome } from '../types.ts';
import { classify, type SfApi } from './api.ts';
import type { SendItem } from './collections.ts';

/**
 * Upserts by external ID through one Bulk API 2.0 ingest job: create, upload the CSV, UploadComplete, poll
 * (with a deadline), then map the successful / failed / unprocessed result rows back to records by the
 * external id, since the service does not keep row order. Every call goes out once; what happens to the
 * records depends on how far the job got:
 * - create or upload failed: nothing can have been processed (a job runs only after UploadComplete), so the
 *   job is aborted and the error thrown for the engine, never in doubt;
 * - closed, but no final state by the deadline, the run stopping, or the results unreadable: the job may
 *   have written some or all rows, so every record is `in_doubt` with the job id as requestId (resending by
 *   external id next run is idempotent); a job still running at the deadline or stop is aborted first, so
 *   it cannot write values a newer run has since replaced;
 * - finished: one outcome per result row.
 * The CSV is uploaded as a string, so that jsforce can send it again when the session expires at the PUT
 * and it refreshes the token (jsforce's own uploadData pipes a stream, which a resend finds empty).
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

/** An error of a step after which the org cannot have processed any record. */
function notApplied(e: DestinationError): DestinationError {
  if (!e.inDoubt) return e;
  return new DestinationError(e.code, `${e.message}; the job was not closed, so no record was processed`, { cause: e, retryable: e.retryable, ...(e.status ? { status: e.status } : {}) });
}

const FINAL = new Set(['JobComplete', 'Failed', 'Aborted']);

export async function upsertViaBulk(api: SfApi, object: string, matchKey: string, items: SendItem[], opts: BulkOptions): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  const byKey = new Map(items.map((it) => [it.key, it]));
  const rest = (o: Omit<RecordOutcome, 'key'>): Map<string, RecordOutcome> => {
    for (const it of items) if (!outcomes.has(it.key)) outcomes.set(it.key, { key: it.key, ...o });
    return outcomes;
  };
  const job = api.conn.bulk2.createJob({ object, operation: 'upsert', externalIdFieldName: matchKey, lineEnding: 'LF', columnDelimiter: 'COMMA' });
  try {
    await api.once(`bulk create ${object} upsert job`, () => job.open());
  } catch (err) {
    throw notApplied(classify(err, `bulk create ${object} upsert job`));
  }
  const jobId = job.id!;
  const log = opts.log.child({ bulkJob: jobId, records: items.length });
  const abort = (): Promise<boolean> => api.once(`bulk abort ${jobId}`, () => job.abort()).then(() => true, () => false);
  const inDoubt = (why: string): Map<string, RecordOutcome> =>
    rest({ status: 'in_doubt', errorCode: 'BULK_IN_DOUBT', errorMessage: `Bulk job ${jobId}: ${why}; it may have written these records: they are sent again next run`, requestId: jobId });
  log.info('salesforce bulk job open');
  const csv = toCsv(matchKey, items);
  try {
    await api.once(`bulk upload ${jobId}`, () => api.conn.request({
      method: 'PUT', url: `/services/data/v${api.conn.version}/jobs/ingest/${jobId}/batches`, body: csv, headers: { 'Content-Type': 'text/csv' },
    }));
  } catch (err) {
    await abort();
    throw notApplied(classify(err, `bulk upload ${jobId}`));
  }
  try {
    await api.once(`bulk close ${jobId}`, () => job.close());
  } catch (err) {
    const e = classify(err, `bulk close ${jobId}`);
    await abort();
    // Refused (an answer came back): the job stays Open, nothing runs. No answer: it may be running.
    if (!e.inDoubt) throw e;
    log.warn({ code: e.code }, 'salesforce bulk job close unanswered');
    return inDoubt(`the UploadComplete request got no answer (${e.code}); the job was aborted, best effort`);
  }
  const deadline = Date.now() + opts.pollTimeoutMs;
  let state = 'UploadComplete';
  let errorMessage = '';
  let stoppedBy: DestinationError | null = null;
  for (;;) {
    await sleep(opts.pollIntervalMs, undefined, { signal: opts.signal }).catch(() => undefined);
    if (opts.signal.aborted) break;
    try {
      const info = await api.once(`bulk status ${jobId}`, () => job.check()) as { state: string; errorMessage?: string };
      state = info.state;
      errorMessage = info.errorMessage ?? '';
      if (FINAL.has(state)) break;
    } catch (err) {
      const e = classify(err, `bulk status ${jobId}`);
      // A poll that failed transiently is a poll that learnt nothing: the job runs on, ask at the next tick.
      if (e instanceof BudgetExhaustedError || !e.retryable) { stoppedBy = e; break; }
      log.warn({ code: e.code }, 'salesforce bulk status poll failed; polling on');
    }
    if (Date.now() > deadline) break;
  }
  if (stoppedBy) {
    log.warn({ state, code: stoppedBy.code }, 'salesforce bulk job left running');
    return inDoubt(`its status could not be read (${stoppedBy.code}: ${stoppedBy.message}); the job was left to finish`);
  }
  if (state !== 'JobComplete' && state !== 'Failed') {
    const why = state === 'Aborted' ? 'the job was aborted in Salesforce'
      : opts.signal.aborted ? `the run was stopped while the job was ${state}` : `still ${state} after ${opts.pollTimeoutMs} ms (bulk_poll_timeout_ms)`;
    const aborted = state === 'Aborted' ? true : await abort();
    log.warn({ state, aborted }, 'salesforce bulk job abandoned');
    return inDoubt(`${why}${state === 'Aborted' ? '' : aborted ? '; aborted' : '; the abort failed, the job may still complete'}`);
  }
  let success: Row[];
  let failed: Row[];
  let unprocessed: Row[];
  try {
    success = await api.once(`bulk results ${jobId}`, () => job.getSuccessfulResults()) as unknown as Row[];
    failed = await api.once(`bulk failures ${jobId}`, () => job.getFailedResults()) as unknown as Row[];
    unprocessed = await api.once(`bulk unprocessed ${jobId}`, () => job.getUnprocessedRecords()) as unknown as Row[];
  } catch (err) {
    const e = classify(err, `bulk results ${jobId}`);
    return inDoubt(`finished (${state}) but its results could not be read (${e.code}: ${e.message})`);
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
  return rest({ status: 'failed', errorCode: 'BULK_RESULT_MISSING', errorMessage: `Bulk job ${jobId} (${state}) reported nothing for this record`, retryable: true, requestId: jobId });
}
