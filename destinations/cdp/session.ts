import { capBody, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import { httpError, postOnce, type HttpAnswer } from '../http/post.ts';
import type { BatchResult, Change, DestinationLimits, DestinationSession, FieldDescription, ReadBackRequest, ReadBackResult, RecordOutcome } from '../types.ts';
import { pack, type PackItem } from './batches.ts';
import { eventBytes, eventsFor, type CdpEvent, type EventContext } from './events.ts';
import type { CdpFlavour } from './flavours.ts';

/**
 * One run's conversation with a CDP's batch endpoint. fetch is used directly, not @segment/analytics-node:
 * that client queues and flushes on its own schedule, so a caller cannot learn which records a given HTTP
 * answer covered, cannot choose the messageId, and cannot see a 400 for one request; segsync needs all three.
 */

export interface CdpSessionConfig {
  flavour: CdpFlavour;
  baseUrl: string;
  writeKey: string;
  timeoutMs: number;
  mapping: string;
  mappingObject: string;
  mode: string;
  matchKey: string;
  traits: string[];
  removal: EventContext['removal'];
  removalEvent: string;
  log: Logger;
}

interface Accepted {
  requestId: string;
}

export const CDP_LIMITS: DestinationLimits = { maxBatchSize: 1000, maxConcurrency: 8, defaultConcurrency: 2, readBackBatchSize: 1000 };

export class CdpSession implements DestinationSession {
  readonly limits = CDP_LIMITS;
  private readonly cfg: CdpSessionConfig;
  private readonly endpoint: string;
  private readonly auth: string;
  /**
   * messageIds the CDP confirmed of a batch that then failed. When the engine retries that batch, the
   * confirmed part is not sent again (the CDP would drop it anyway; this saves the quota). A batch that returns
   * normally is never sent again, so its ids are forgotten then: the map holds one batch, not the whole run.
   */
  private readonly accepted = new Map<string, Accepted>();

  constructor(cfg: CdpSessionConfig) {
    this.cfg = cfg;
    this.endpoint = `${cfg.baseUrl.replace(/\/+$/, '')}/v1/batch`;
    this.auth = `Basic ${Buffer.from(`${cfg.writeKey}:`).toString('base64')}`;
  }

  private what(): string {
    return `${this.cfg.flavour.label} POST /v1/batch`;
  }

  private async send(events: CdpEvent[], signal: AbortSignal): Promise<HttpAnswer> {
    const body = JSON.stringify({ batch: events, sentAt: new Date().toISOString() });
    return postOnce(this.endpoint, {
      headers: { authorization: this.auth, 'content-type': 'application/json', 'user-agent': 'segsync' },
      body,
      timeoutMs: this.cfg.timeoutMs,
      signal,
      what: this.what(),
    });
  }

  private failure(answer: HttpAnswer): DestinationError {
    const err = httpError(this.what(), answer, this.cfg.flavour.errorDetail(answer.text));
    if (err.status === 401 || err.status === 403) {
      return new DestinationError(err.code, `${err.message} (check ${this.cfg.flavour.writeKeyEnv})`, { status: err.status, cause: err });
    }
    if (err.status === 404) {
      return new DestinationError(err.code, `${err.message} (check ${this.cfg.flavour.baseUrlEnv}: ${this.endpoint} does not exist)`, { status: err.status, cause: err });
    }
    return err;
  }

  async check(): Promise<void> {
    // An empty batch carries no data but goes through authentication, so a wrong key or URL shows here.
    const answer = await this.send([], new AbortController().signal);
    if (answer.status >= 200 && answer.status < 300) return;
    if (answer.status === 400) return; // authenticated; some gateways refuse an empty batch
    const err = this.failure(answer);
    // Busy (429/5xx) is not misconfigured: the batches are retried one by one, so the run goes ahead.
    if (err.retryable) return void this.cfg.log.warn({ status: answer.status }, `${this.cfg.flavour.label} check: busy; delivering anyway`);
    throw err;
  }

  async describeFields(): Promise<FieldDescription[]> {
    // Traits are free-form: every mapped field is writable, nothing to fetch.
    return [
      { name: this.cfg.matchKey, type: 'string', writable: true, unique: true, required: true },
      ...this.cfg.traits.map((name) => ({ name, type: 'any', writable: true })),
    ];
  }

  async validateMapping(): Promise<string[]> {
    const problems: string[] = [];
    if (this.cfg.mappingObject !== 'identify') problems.push(`destination.object must be 'identify' for ${this.cfg.flavour.label} (got '${this.cfg.mappingObject}')`);
    if (this.cfg.matchKey !== 'userId' && this.cfg.matchKey !== 'anonymousId') problems.push(`destination.match_key must be userId or anonymousId for ${this.cfg.flavour.label} (got '${this.cfg.matchKey}')`);
    if (this.cfg.mode === 'update') {
      problems.push(`mode: update cannot be honoured by ${this.cfg.flavour.label}: an identify creates the profile when it does not exist (use mode: upsert)`);
    }
    for (const t of this.cfg.traits) {
      if (t === 'userId' || t === 'anonymousId') problems.push(`trait '${t}' collides with the identity field; the source key already goes there`);
    }
    return problems;
  }

  async deliver(changes: Change[], signal: AbortSignal): Promise<BatchResult> {
    const { flavour } = this.cfg;
    const ctx: EventContext = {
      mapping: this.cfg.mapping,
      identity: this.cfg.matchKey === 'anonymousId' ? 'anonymousId' : 'userId',
      mappedTraits: this.cfg.traits,
      removal: this.cfg.removal,
      removalEvent: this.cfg.removalEvent,
      now: new Date(),
    };
    const outcomes: RecordOutcome[] = [];
    const toSend: PackItem[] = [];
    const messageIds: string[] = [];
    for (const change of changes) {
      const events = eventsFor(change, ctx);
      for (const e of events) messageIds.push(e.messageId);
      const sizes = events.map(eventBytes);
      const big = sizes.find((b) => b > flavour.maxEventBytes);
      if (big !== undefined) {
        outcomes.push({ key: change.key, status: 'failed', errorCode: 'EVENT_TOO_LARGE', retryable: false,
          errorMessage: `the ${flavour.label} event for this record is ${big} bytes; the limit is ${flavour.maxEventBytes} bytes per event (shorten or drop large traits)` });
        continue;
      }
      const done = events.map((e) => this.accepted.get(e.messageId));
      if (done.every((a) => a !== undefined)) {
        outcomes.push(this.delivered(change.key, events, done.at(-1)?.requestId));
        continue;
      }
      toSend.push({ key: change.key, events, bytes: sizes.reduce((n, b) => n + b, 0) });
    }

    const groups = pack(toSend, flavour);
    let rejected = 0;
    let lastRejection: DestinationError | undefined;
    for (const group of groups) {
      const answer = await this.send(group.flatMap((i) => i.events), signal);
      if (answer.status >= 200 && answer.status < 300) {
        const requestId = answer.requestId ?? `http-${answer.status}`;
        for (const item of group) {
          for (const e of item.events) this.accepted.set(e.messageId, { requestId });
          outcomes.push(this.delivered(item.key, item.events, requestId));
        }
        continue;
      }
      const err = this.failure(answer);
      // Rate limits, server trouble and bad credentials are about the whole batch: the engine retries it
      // (honouring Retry-After) and what this session already delivered is not sent twice.
      if (err.retryable || answer.status === 401 || answer.status === 403 || answer.status === 404) throw err;
      // A 400 / 413 rejects this request's records; the other requests go on.
      rejected += group.length;
      lastRejection = err;
      this.cfg.log.warn({ status: answer.status, records: group.length, requestId: answer.requestId }, `${flavour.label} rejected a request`);
      for (const item of group) {
        outcomes.push({ key: item.key, status: 'failed', errorCode: err.code, errorMessage: capBody(err.message), retryable: false, ...(answer.requestId ? { requestId: answer.requestId } : {}) });
      }
    }
    if (lastRejection && rejected === changes.length) throw lastRejection;
    for (const id of messageIds) this.accepted.delete(id);
    return { outcomes };
  }

  private delivered(key: string, events: CdpEvent[], requestId: string | undefined): RecordOutcome {
    // The last messageId becomes the record's destinationId: the next change of this key chains on it.
    return { key, status: 'delivered', destinationId: events.at(-1)?.messageId ?? null, ...(requestId ? { requestId } : {}) };
  }

  async readBack(records: ReadBackRequest[]): Promise<ReadBackResult[]> {
    const label = this.cfg.flavour.label;
    return records.map((r) => ({
      key: r.key,
      status: 'unverifiable',
      destinationId: r.destinationId,
      detail: `${label} has no API to read traits back; the last confirmation is its HTTP acceptance${r.destinationId ? ` of messageId ${r.destinationId}` : ''} (see the run's receipts)`,
    }));
  }

  async close(): Promise<void> {
    this.accepted.clear();
  }
}
