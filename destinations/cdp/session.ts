import { capBody, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import { describeUrl, httpError, postOnce, type HttpAnswer } from '../http/post.ts';
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

export const CDP_LIMITS: DestinationLimits = { maxBatchSize: 1000, maxConcurrency: 8, defaultConcurrency: 2, readBackBatchSize: 1000 };

export class CdpSession implements DestinationSession {
  readonly limits = CDP_LIMITS;
  private readonly cfg: CdpSessionConfig;
  private readonly endpoint: string;
  private readonly auth: string;

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
      return new DestinationError(err.code, `${err.message} (check the connection's write_key: \${${this.cfg.flavour.writeKeyEnv}})`, { status: err.status, cause: err });
    }
    if (err.status === 404) {
      return new DestinationError(err.code, `${err.message} (check the connection's base_url: ${describeUrl(this.endpoint)} does not exist)`, { status: err.status, cause: err });
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

  /**
   * One request per pack group, in order, each group's records reported by that group's answer: accepted
   * records are delivered even when a later request fails. A failing request's records are failed (retryable
   * when its error is, with Retry-After) or in_doubt (a reset or timeout after sending: the CDP may hold them).
   * After an endpoint-wide failure (429, unreachable, 401/403/404) the rest of the batch is not sent and fails
   * with that error. The batch throws only when it failed as a whole: nothing delivered and every request
   * failed the same way. Nothing is retried here; the engine resends what is failed and retryable, with the
   * same messageIds, so a resend the CDP already holds is dropped by its dedup.
   */
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
    for (const change of changes) {
      const events = eventsFor(change, ctx);
      const sizes = events.map(eventBytes);
      const big = sizes.find((b) => b > flavour.maxEventBytes);
      if (big !== undefined) {
        outcomes.push({ key: change.key, status: 'failed', errorCode: 'EVENT_TOO_LARGE', retryable: false,
          errorMessage: `the ${flavour.label} event for this record is ${big} bytes; the limit is ${flavour.maxEventBytes} bytes per event (shorten or drop large traits)` });
        continue;
      }
      toSend.push({ key: change.key, events, bytes: sizes.reduce((n, b) => n + b, 0) });
    }
    const refusedBeforeSending = outcomes.length;

    const groups = pack(toSend, flavour);
    const n = groups.length;
    let delivered = 0;
    let interrupted = false;
    let stoppedBy: DestinationError | undefined;
    const requestErrors: DestinationError[] = [];
    for (const [i, group] of groups.entries()) {
      const which = n > 1 ? ` (request ${i + 1} of ${n} of this batch)` : '';
      if (stoppedBy) {
        outcomes.push(...group.map((item) => failed(item.key, stoppedBy!, `not sent: an earlier request of this batch failed: ${stoppedBy!.message}`)));
        continue;
      }
      if (interrupted || signal.aborted) {
        interrupted = true;
        outcomes.push(...group.map((item): RecordOutcome => ({ key: item.key, status: 'deferred', errorCode: 'INTERRUPTED', errorMessage: 'not sent: the run was stopping' })));
        continue;
      }
      let answer: HttpAnswer;
      try {
        answer = await this.send(group.flatMap((item) => item.events), signal);
      } catch (err) {
        if (signal.aborted) {
          // The run stopped while this request was in flight: it may have been read and applied.
          interrupted = true;
          outcomes.push(...group.map((item): RecordOutcome => ({ key: item.key, status: 'in_doubt', errorCode: 'INTERRUPTED', errorMessage: `the run stopped while this request was in flight${which}; the CDP may hold it` })));
          continue;
        }
        if (!(err instanceof DestinationError)) throw err;
        requestErrors.push(err);
        if (err.inDoubt) {
          outcomes.push(...group.map((item): RecordOutcome => ({ key: item.key, status: 'in_doubt', errorCode: err.code, errorMessage: capBody(`${err.message}${which}`) })));
        } else {
          // Never sent (nothing listening, unknown host): the requests after it would meet the same.
          outcomes.push(...group.map((item) => failed(item.key, err, `${err.message}${which}`)));
          stoppedBy = err;
        }
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        const requestId = answer.requestId ?? `http-${answer.status}`;
        for (const item of group) outcomes.push(this.delivered(item.key, item.events, requestId));
        delivered += group.length;
        continue;
      }
      const err = this.failure(answer);
      requestErrors.push(err);
      this.cfg.log.warn({ status: answer.status, records: group.length, requestId: answer.requestId, request: i + 1, requests: n }, `${flavour.label} refused a request`);
      outcomes.push(...group.map((item) => failed(item.key, err, `${err.message}${which}`)));
      // A rate limit or a wrong key / URL holds for the whole endpoint; a 5xx or a 400/413 is this request's.
      if (answer.status === 429 || answer.status === 401 || answer.status === 403 || answer.status === 404) stoppedBy = err;
    }

    const whole = delivered === 0 && !interrupted && refusedBeforeSending === 0 ? sameFailure(requestErrors) : undefined;
    if (whole) throw whole;
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

  async close(): Promise<void> {}
}

function failed(key: string, err: DestinationError, message: string): RecordOutcome {
  return {
    key,
    status: 'failed',
    errorCode: err.code,
    errorMessage: capBody(message),
    retryable: err.retryable,
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    ...(err.requestId === undefined ? {} : { requestId: err.requestId }),
  };
}

/**
 * The error to throw for the whole batch when every request failed the same way (same code, retryability and
 * doubt), so all its records share one fate; undefined when they differ (the outcomes say it per record).
 * The longest Retry-After of them is kept.
 */
function sameFailure(errors: DestinationError[]): DestinationError | undefined {
  const [first] = errors;
  if (!first || errors.some((e) => e.code !== first.code || e.retryable !== first.retryable || e.inDoubt !== first.inDoubt)) return undefined;
  if (errors.length === 1) return first;
  const waits = errors.map((e) => e.retryAfterMs).filter((w): w is number => w !== undefined);
  return new DestinationError(first.code, `${first.message} (all ${errors.length} requests of this batch failed alike)`, {
    cause: first,
    retryable: first.retryable,
    inDoubt: first.inDoubt,
    ...(waits.length ? { retryAfterMs: Math.max(...waits) } : {}),
    ...(first.status === undefined ? {} : { status: first.status }),
    ...(first.requestId === undefined ? {} : { requestId: first.requestId }),
  });
}
