import { BudgetExhaustedError, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { Mapping } from '../../src/config/mapping.ts';
import type {
  BatchResult, Change, DestinationLimits, DestinationSession, FieldDescription, FollowUps, ReadBackRequest, ReadBackResult, RecordOutcome, SetupReport,
} from '../types.ts';
import { classify, type SfApi } from './api.ts';
import { upsertViaBulk } from './bulk.ts';
import { OpenCases } from './cases.ts';
import { chunk } from '../../src/db/chunk.ts';
import { callFailure, COLLECTIONS_MAX, saveOutcome, upsertViaCollections, type SendItem } from './collections.ts';
import type { CasesConfig, SalesforceOptions } from './config.ts';
import { byExternalId, readBack, selectIn } from './query.ts';
import { checkMapping, fieldDescriptions, setupLines, type SfDescribe } from './schema.ts';

/**
 * One run's Salesforce session. deliver() picks the transport by the size of the batch the engine hands it:
 * at least `bulk_threshold` upserts go through one Bulk API 2.0 job, fewer through sObject Collections; the
 * engine batches by `batch_size` (limits.maxBatchSize), so a run smaller than that is one batch and the
 * threshold sees the whole run's size. deliver() writes only the mapped object; the `cases:` block is
 * follow-up work with its own outcomes (`followUps`, cases.ts), applied by the engine after delivery.
 */

/** API calls a Bulk job needs at the least (create, upload, close, a few polls, three result reads). */
const BULK_CALL_RESERVE = 12;

export class SalesforceSession implements DestinationSession {
  readonly limits: DestinationLimits;
  readonly followUps: FollowUps | null;
  private readonly api: SfApi;
  private readonly mapping: Mapping;
  private readonly object: string;
  private readonly matchKey: string;
  private readonly opts: SalesforceOptions;
  private readonly cases: CasesConfig | null;
  private readonly log: Logger;
  private describeCache = new Map<string, Promise<SfDescribe>>();

  constructor(api: SfApi, mapping: Mapping, opts: SalesforceOptions, cases: CasesConfig | null, log: Logger) {
    this.api = api;
    this.mapping = mapping;
    this.object = mapping.destination.object;
    this.matchKey = mapping.destination.match_key;
    this.opts = opts;
    this.cases = cases;
    this.log = log;
    this.followUps = cases ? new OpenCases(api, cases, log) : null;
    this.limits = { maxBatchSize: opts.batch_size, maxConcurrency: 4, defaultConcurrency: 1, readBackBatchSize: 2000 };
  }

  private describe(object: string): Promise<SfDescribe> {
    let d = this.describeCache.get(object);
    if (!d) {
      // Unguarded: the first call of a session also reads today's API usage, so a guard tripped yesterday
      // (or by another mapping) is judged on fresh numbers.
      d = this.api.once(`describe ${object}`, () => this.api.conn.describe(object) as unknown as Promise<SfDescribe>, { guard: false, read: true });
      d.catch(() => this.describeCache.delete(object));
      this.describeCache.set(object, d);
    }
    return d;
  }

  async check(): Promise<void> {
    this.api.budget.exhausted = null;
    for (const object of this.cases ? [this.object, 'Case'] : [this.object]) {
      try {
        await this.describe(object);
      } catch (err) {
        if (err instanceof DestinationError && err.code === 'SALESFORCE_NOT_FOUND') {
          throw new DestinationError('SALESFORCE_OBJECT_NOT_FOUND', `Salesforce has no sObject '${object}' at API version ${this.api.conn.version} (or the integration user cannot see it): check destination.object and the connection's api_version`, { cause: err });
        }
        throw err;
      }
    }
  }

  async describeFields(): Promise<FieldDescription[]> {
    return fieldDescriptions(await this.describe(this.object));
  }

  async validateMapping(): Promise<string[]> {
    return checkMapping(this.mapping, await this.describe(this.object), this.cases, this.cases ? await this.describe('Case') : null);
  }

  async setup(apply: boolean): Promise<SetupReport> {
    const lines = setupLines(this.mapping, await this.describe(this.object), this.cases, this.cases || this.object === 'Contact' ? await this.describe('Case').catch(() => null) : null);
    if (apply) lines.unshift('segsync cannot create Salesforce fields through the REST API: nothing was changed. Create these as an admin:');
    return { lines };
  }

  async close(): Promise<void> {
    this.describeCache.clear();
  }

  async readBack(records: ReadBackRequest[], _signal: AbortSignal): Promise<ReadBackResult[]> {
    return readBack(this.api, this.object, this.matchKey, records);
  }

  async deliver(changes: Change[], signal: AbortSignal): Promise<BatchResult> {
    this.api.guard();
    const outcomes = new Map<string, RecordOutcome>();
    const upserts: SendItem[] = changes.filter((c) => c.op !== 'remove' && c.after).map((c) => ({ key: c.key, values: { ...c.after! } }));
    const removes = changes.filter((c) => c.op === 'remove');
    const lookupKeys = [...(this.mapping.mode === 'update' ? upserts.map((u) => u.key) : []), ...removes.map((r) => r.key)];
    const existing = lookupKeys.length > 0
      ? byExternalId(await selectIn(this.api, this.object, ['Id', this.matchKey], this.matchKey, lookupKeys), this.matchKey)
      : new Map<string, Record<string, unknown>>();
    let toSend = [...upserts];
    if (this.mapping.mode === 'update') {
      toSend = upserts.filter((u) => existing.has(u.key.toLowerCase()));
      for (const u of upserts) {
        if (!existing.has(u.key.toLowerCase())) outcomes.set(u.key, { key: u.key, status: 'failed', errorCode: 'NOT_IN_SALESFORCE', errorMessage: `mode update: no ${this.object} has this ${this.matchKey}; not created`, retryable: false });
      }
    }
    const deletes: Array<{ key: string; id: string }> = [];
    for (const r of removes) {
      const row = existing.get(r.key.toLowerCase());
      if (!row) { outcomes.set(r.key, { key: r.key, status: 'delivered', destinationId: null }); continue; }
      if (this.mapping.on_removed === 'delete') deletes.push({ key: r.key, id: String(row.Id) });
      else toSend.push({ key: r.key, values: Object.fromEntries(Object.keys(r.before ?? {}).filter((f) => f !== this.matchKey).map((f) => [f, null])) });
    }
    for (const [k, o] of await this.send(toSend, signal)) outcomes.set(k, o);
    for (const [k, o] of await this.destroy(deletes, signal)) outcomes.set(k, o);
    const all = changes.map((c) => outcomes.get(c.key) ?? { key: c.key, status: 'failed' as const, errorCode: 'NO_RESULT', errorMessage: 'not sent', retryable: true });
    return { outcomes: this.wholeBatchFailure(all) };
  }

  private async send(items: SendItem[], signal: AbortSignal): Promise<Map<string, RecordOutcome>> {
    if (items.length === 0) return new Map();
    const collections = { concurrency: this.opts.collections_concurrency, signal };
    if (items.length < this.opts.bulk_threshold) return upsertViaCollections(this.api, this.object, this.matchKey, items, collections);
    const { used, limit } = this.api.budget;
    if (limit > 0 && used + BULK_CALL_RESERVE > Math.floor(limit * this.api.budgetShare)) {
      this.api.guard();
      throw new BudgetExhaustedError('SALESFORCE_BUDGET_SHARE', `Salesforce API budget guard: not enough of the daily budget left for a Bulk job (${used} of ${limit} used)`);
    }
    return upsertViaBulk(this.api, this.object, this.matchKey, items, {
      pollIntervalMs: this.opts.bulk_poll_interval_ms, pollTimeoutMs: this.opts.bulk_poll_timeout_ms, signal, log: this.log,
    });
  }

  private async destroy(deletes: Array<{ key: string; id: string }>, signal: AbortSignal): Promise<Map<string, RecordOutcome>> {
    const out = new Map<string, RecordOutcome>();
    for (const part of chunk(deletes, COLLECTIONS_MAX)) {
      if (this.api.budget.exhausted || signal.aborted) {
        for (const d of part) out.set(d.key, { key: d.key, status: 'deferred' });
        continue;
      }
      try {
        const results = await this.api.once(`delete ${part.length} ${this.object}`,
          () => this.api.conn.sobject(this.object).destroy(part.map((d) => d.id), { allOrNone: false }) as unknown as Promise<Array<{ id: string; success: boolean; errors?: [] }>>);
        part.forEach((d, i) => {
          const o = saveOutcome(d.key, results[i]);
          // Already gone is what a delete wants.
          out.set(d.key, o.errorCode === 'ENTITY_IS_DELETED' ? { key: d.key, status: 'delivered', destinationId: d.id } : { ...o, destinationId: d.id });
        });
      } catch (err) {
        const e = classify(err, `delete ${this.object}`);
        for (const d of part) out.set(d.key, { ...callFailure(d.key, e), destinationId: d.id });
      }
    }
    return out;
  }

  /**
   * When nothing went through and every call failed for the same transient reason (network, 5xx), the batch
   * as a whole failed: throw so the engine backs off and retries it (in doubt when the calls may have reached
   * the org). Budget: throw so the run stops. Row locks and a Bulk job's in-doubt records stay per record:
   * the engine resends those records, not the batch.
   */
  private wholeBatchFailure(all: RecordOutcome[]): RecordOutcome[] {
    if (all.length === 0 || all.some((o) => o.status === 'delivered')) return all;
    if (all.every((o) => o.status === 'deferred') && this.api.budget.exhausted) {
      throw new BudgetExhaustedError('SALESFORCE_BUDGET', this.api.budget.exhausted);
    }
    const first = all[0]!;
    const sameCallFailure = (o: RecordOutcome): boolean => o.errorCode === first.errorCode && o.errorCode !== 'UNABLE_TO_LOCK_ROW' && o.requestId === undefined
      && ((o.status === 'failed' && o.retryable === true) || o.status === 'in_doubt');
    if (all.every(sameCallFailure)) {
      throw new DestinationError(first.errorCode ?? 'SALESFORCE_ERROR', first.errorMessage ?? 'the whole batch failed', { retryable: true, inDoubt: all.some((o) => o.status === 'in_doubt') });
    }
    return all;
  }
}
