import { DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signatureFor, TIMESTAMP_HEADER } from '../../src/webhook/verify.ts';
import { httpError, postOnce, type HttpAnswer } from '../http/post.ts';
import type { BatchResult, Change, DestinationLimits, DestinationSession, FieldDescription, ReadBackRequest, ReadBackResult } from '../types.ts';
import { idempotencyKey, toWebhookChanges, type WebhookBody } from './body.ts';
import { outcomesFrom, parseJson, readBackFrom } from './results.ts';

/** Signed JSON POSTs of change batches to a URL the user runs; see docs/destinations/webhook.md. */

export interface WebhookSessionConfig {
  url: string;
  secret: string;
  readBackUrl: string | undefined;
  timeoutMs: number;
  headers: Record<string, string>;
  mapping: string;
  runId: number | undefined;
  onRemoved: string;
  fields: string[];
  log: Logger;
}

export const WEBHOOK_LIMITS: DestinationLimits = { maxBatchSize: 500, maxConcurrency: 16, defaultConcurrency: 2, readBackBatchSize: 500 };

export class WebhookSession implements DestinationSession {
  readonly limits = WEBHOOK_LIMITS;
  private readonly cfg: WebhookSessionConfig;

  constructor(cfg: WebhookSessionConfig) {
    this.cfg = cfg;
  }

  private async post(url: string, what: string, body: string, extra: Record<string, string>, signal: AbortSignal): Promise<HttpAnswer> {
    const ts = String(Math.floor(Date.now() / 1000));
    return postOnce(url, {
      headers: {
        ...this.cfg.headers,
        'content-type': 'application/json',
        'user-agent': 'segsync',
        'x-segsync-mapping': this.cfg.mapping,
        [TIMESTAMP_HEADER]: ts,
        [SIGNATURE_HEADER]: signatureFor(this.cfg.secret, ts, body),
        ...extra,
      },
      body,
      timeoutMs: this.cfg.timeoutMs,
      signal,
      what,
    });
  }

  private async sendChanges(changes: Change[], signal: AbortSignal, what: string): Promise<{ answer: HttpAnswer; key: string; ids: string[] }> {
    const wc = toWebhookChanges(this.cfg.mapping, changes);
    const body: WebhookBody = { mapping: this.cfg.mapping, ...(this.cfg.runId === undefined ? {} : { run: this.cfg.runId }), on_removed: this.cfg.onRemoved, sent_at: new Date().toISOString(), changes: wc };
    const key = idempotencyKey(this.cfg.mapping, wc);
    const answer = await this.post(this.cfg.url, what, JSON.stringify(body), { [IDEMPOTENCY_HEADER]: key }, signal);
    return { answer, key, ids: wc.map((c) => c.id) };
  }

  private failure(what: string, answer: HttpAnswer): DestinationError {
    const err = httpError(what, answer, answer.text);
    if (err.status === 401 || err.status === 403) {
      return new DestinationError(err.code, `${err.message} (does the receiver use the same secret?)`, { status: err.status, cause: err });
    }
    return err;
  }

  async check(): Promise<void> {
    // A signed batch with no changes: proves the URL answers and accepts our signature, changes nothing.
    const { answer } = await this.sendChanges([], new AbortController().signal, 'webhook check');
    if (answer.status >= 200 && answer.status < 300) return;
    const err = this.failure('webhook check', answer);
    // A busy receiver (429/5xx) is reachable and will be retried batch by batch; only a wrong URL or
    // secret should stop the run before it starts.
    if (err.retryable) return void this.cfg.log.warn({ status: answer.status }, 'webhook check: receiver busy; delivering anyway');
    throw err;
  }

  async describeFields(): Promise<FieldDescription[]> {
    return this.cfg.fields.map((name) => ({ name, type: 'any', writable: true }));
  }

  async validateMapping(): Promise<string[]> {
    return [];
  }

  /**
   * One request for the batch, so its answer is the batch's: a non-2xx or no answer throws (retryable or not,
   * in doubt when the request may have been applied) and the engine retries it as is, with the same key.
   */
  async deliver(changes: Change[], signal: AbortSignal): Promise<BatchResult> {
    const { answer, key, ids } = await this.sendChanges(changes, signal, 'webhook POST');
    if (answer.status < 200 || answer.status >= 300) throw this.failure('webhook POST', answer);
    const outcomes = outcomesFrom(changes.map((c) => c.key), parseJson(answer.text), answer.requestId ?? key);
    // A delivered change's id becomes the record's destinationId: the next change of the key chains on it.
    for (const [i, o] of outcomes.entries()) if (o.status === 'delivered') o.destinationId = ids[i] ?? null;
    return { outcomes };
  }

  async readBack(records: ReadBackRequest[], signal: AbortSignal): Promise<ReadBackResult[]> {
    if (!this.cfg.readBackUrl) {
      return records.map((r) => ({ key: r.key, status: 'unverifiable', detail: 'the webhook connection has no read_back_url; the last confirmation is the receiver\'s 2xx (see receipts)' }));
    }
    const body = JSON.stringify({ mapping: this.cfg.mapping, keys: records.map((r) => r.key) });
    const answer = await this.post(this.cfg.readBackUrl, 'webhook read-back', body, {}, signal);
    if (answer.status < 200 || answer.status >= 300) throw this.failure('webhook read-back', answer);
    const parsed = parseJson(answer.text);
    if (!Array.isArray((parsed as { records?: unknown } | undefined)?.records)) {
      throw new DestinationError('WEBHOOK_BAD_READBACK', 'webhook read-back: the answer is not {"records": [{"key", "values"}]}', { status: answer.status });
    }
    return readBackFrom(records, parsed);
  }

  async close(): Promise<void> {}
}
