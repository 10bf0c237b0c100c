import { capBody } from '../../src/errors.ts';
import { compareToExpected } from '../compare.ts';
import type { Payload, ReadBackRequest, ReadBackResult, RecordOutcome } from '../types.ts';

/**
 * Reading a receiver's answers. A 2xx without a `results` array means the whole batch was accepted; with
 * one, each key's own status counts, and a key the receiver left out is failed rather than assumed done.
 */

interface ResultRow {
  key?: unknown;
  status?: unknown;
  error?: unknown;
  retryable?: unknown;
}

export function parseJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function outcomesFrom(keys: string[], body: unknown, requestId: string): RecordOutcome[] {
  const results = (body as { results?: unknown } | undefined)?.results;
  if (!Array.isArray(results)) return keys.map((key) => ({ key, status: 'delivered', requestId }));
  const byKey = new Map<string, ResultRow>();
  for (const r of results as ResultRow[]) if (r && typeof r.key === 'string') byKey.set(r.key, r);
  return keys.map((key): RecordOutcome => {
    const r = byKey.get(key);
    if (!r) return { key, status: 'failed', errorCode: 'WEBHOOK_NO_RESULT', errorMessage: 'the receiver answered with results but none for this key', retryable: true, requestId };
    if (r.status === 'ok') return { key, status: 'delivered', requestId };
    if (r.status === 'error') {
      return { key, status: 'failed', errorCode: 'WEBHOOK_RECORD_ERROR', errorMessage: capBody(typeof r.error === 'string' ? r.error : 'the receiver reported an error'), retryable: r.retryable === true, requestId };
    }
    return { key, status: 'failed', errorCode: 'WEBHOOK_BAD_RESULT', errorMessage: `the receiver's status for this key is ${capBody(r.status)}, expected "ok" or "error"`, retryable: false, requestId };
  });
}

export function readBackFrom(requests: ReadBackRequest[], body: unknown): ReadBackResult[] {
  const rows = (body as { records?: unknown } | undefined)?.records;
  const byKey = new Map<string, Payload>();
  if (Array.isArray(rows)) {
    for (const r of rows as Array<{ key?: unknown; values?: unknown }>) {
      if (r && typeof r.key === 'string' && r.values && typeof r.values === 'object') byKey.set(r.key, r.values as Payload);
    }
  }
  return requests.map((req): ReadBackResult => {
    const actual = byKey.get(req.key);
    if (!actual) return { key: req.key, status: 'missing', detail: 'the read-back URL returned no record for this key' };
    return { key: req.key, ...compareToExpected(req.expected, actual) };
  });
}
