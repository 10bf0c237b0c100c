import { BudgetExhaustedError, type DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { FollowUpItem, FollowUpOutcome, FollowUps } from '../types.ts';
import { classify, type SfApi } from './api.ts';
import { chunk } from '../../src/db/chunk.ts';
import { pool, saveOutcome, COLLECTIONS_MAX } from './collections.ts';
import type { CasesConfig } from './config.ts';
import { fieldName, queryAll, selectIn, soqlString, type SfRow } from './query.ts';

/**
 * The `cases:` block as follow-up work (session.followUps): the contact's segment, and the priority the block
 * derives from it, onto the contact's open Cases. Only Cases whose values differ are written, so applying
 * the same segment again costs one query per 500 contacts and no writes. Every item gets its own outcome:
 * done (written, or nothing to write), deferred (the daily budget or the budget guard stopped it, or the run
 * is stopping: not attempted) or failed (with Salesforce's code and whether sending again may help).
 * Nothing is retried here; the engine keeps what is not done pending and applies it again.
 */

/** Contacts per Case query: the same IN-list size as every other lookup. */
const CONTACTS_PER_QUERY = 500;

type Outcome = Omit<FollowUpOutcome, 'key'>;

interface Pending {
  keys: string[];
  segment: string | null;
  outcome: Outcome | null;
}

/** A call that failed as a whole: deferred at the budget (not attempted), failed otherwise. */
function failure(e: DestinationError): Outcome {
  if (e instanceof BudgetExhaustedError) return { status: 'deferred', errorCode: e.code, errorMessage: e.message };
  return { status: 'failed', errorCode: e.code, errorMessage: e.message, retryable: e.retryable };
}

/** A worse outcome replaces a better one: failed over deferred over done. */
const RANK = { done: 0, deferred: 1, failed: 2 } as const;

export class OpenCases implements FollowUps {
  readonly kind = 'cases';
  private readonly api: SfApi;
  private readonly cfg: CasesConfig;
  private readonly log: Logger;

  constructor(api: SfApi, cfg: CasesConfig, log: Logger) {
    this.api = api;
    this.cfg = cfg;
    this.log = log;
  }

  /** What counts as open: the configured statuses, or IsClosed = false. */
  private open(): string {
    return this.cfg.open_statuses ? `Status IN (${this.cfg.open_statuses.map(soqlString).join(',')})` : 'IsClosed = false';
  }

  async apply(items: FollowUpItem[], signal: AbortSignal): Promise<FollowUpOutcome[]> {
    const cfg = this.cfg;
    const outcomes = new Map<string, FollowUpOutcome>();
    const byContact = new Map<string, Pending>();
    for (const it of items) {
      if (!it.destinationId) {
        outcomes.set(it.key, { key: it.key, status: 'failed', errorCode: 'NO_DESTINATION_ID', errorMessage: 'the record has no Salesforce Id to find its Cases by', retryable: false });
        continue;
      }
      // A removed record clears the segment; a payload without the segment field has nothing to say.
      if (it.payload && !(cfg.segment_from in it.payload)) { outcomes.set(it.key, { key: it.key, status: 'done' }); continue; }
      const v = it.payload ? it.payload[cfg.segment_from] : null;
      const p = byContact.get(it.destinationId) ?? { keys: [], segment: null, outcome: null };
      p.keys.push(it.key);
      p.segment = v === null || v === undefined || v === '' ? null : String(v);
      byContact.set(it.destinationId, p);
    }
    const note = (contactId: string, o: Outcome): void => {
      const p = byContact.get(contactId)!;
      if (!p.outcome || RANK[o.status] > RANK[p.outcome.status]) p.outcome = o;
    };
    const summary = { contacts: byContact.size, cases: 0, updated: 0, failed: 0, deferred: 0 };
    for (const ids of chunk([...byContact.keys()], CONTACTS_PER_QUERY)) {
      if (signal.aborted || this.api.budget.exhausted) {
        for (const id of ids) note(id, this.stopped(signal));
        continue;
      }
      let rows: SfRow[];
      try {
        rows = await selectIn(this.api, 'Case', this.fields(), cfg.contact_field, ids, this.open());
      } catch (err) {
        const e = classify(err, 'query Case');
        for (const id of ids) note(id, failure(e));
        continue;
      }
      summary.cases += rows.length;
      const updates = this.changes(rows, byContact);
      await pool(chunk(updates, COLLECTIONS_MAX), 2, async (part) => {
        if (signal.aborted || this.api.budget.exhausted) {
          for (const u of part) note(u.contactId, this.stopped(signal));
          summary.deferred += part.length;
          return;
        }
        try {
          const results = await this.api.once(`update ${part.length} Case`, () => this.api.conn.sobject('Case')
            .update(part.map((u) => u.record) as Array<{ Id: string }>, { allOrNone: false }) as unknown as Promise<Array<{ success: boolean; id?: string; errors?: [] }>>);
          part.forEach((u, i) => {
            const o = saveOutcome(String(u.record.Id), results[i]);
            if (o.status === 'delivered') { summary.updated += 1; return; }
            summary.failed += 1;
            note(u.contactId, { status: 'failed', errorCode: o.errorCode ?? 'UNKNOWN', errorMessage: `Case ${String(u.record.Id)}: ${o.errorMessage ?? ''}`, retryable: o.retryable === true });
          });
        } catch (err) {
          const e = classify(err, `update ${part.length} Case`);
          for (const u of part) note(u.contactId, failure(e));
          if (e instanceof BudgetExhaustedError) summary.deferred += part.length; else summary.failed += part.length;
        }
      });
    }
    for (const p of byContact.values()) {
      for (const key of p.keys) outcomes.set(key, { ...(p.outcome ?? { status: 'done' }), key });
    }
    this.log.info(summary, 'salesforce open cases');
    return items.map((it) => outcomes.get(it.key)!);
  }

  async changedSince(since: Date, _signal: AbortSignal): Promise<string[]> {
    // A SOQL dateTime literal: unquoted ISO-8601 with a zone and no fraction, floored to the second so that
    // nothing at `since` itself is missed.
    const at = new Date(Math.floor(since.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const contact = fieldName(this.cfg.contact_field);
    const soql = `SELECT ${contact} FROM Case WHERE ${this.open()} AND ${contact} != null AND (CreatedDate >= ${at} OR LastModifiedDate >= ${at})`;
    const rows = await queryAll(this.api, 'query Case (opened or changed since the last run)', soql);
    return [...new Set(rows.map((r) => r[contact]).filter((v): v is string => typeof v === 'string' && v !== ''))];
  }

  private fields(): string[] {
    const cfg = this.cfg;
    return ['Id', cfg.contact_field, cfg.segment_field, ...(Object.keys(cfg.priority).length > 0 ? [cfg.priority_field] : [])];
  }

  /** The Case updates that bring these open Cases to their contact's segment and priority. */
  private changes(rows: SfRow[], byContact: Map<string, Pending>): Array<{ contactId: string; record: Record<string, unknown> }> {
    const cfg = this.cfg;
    const setPriority = Object.keys(cfg.priority).length > 0;
    const out: Array<{ contactId: string; record: Record<string, unknown> }> = [];
    for (const row of rows) {
      const contactId = String(row[cfg.contact_field]);
      const p = byContact.get(contactId);
      if (!p) continue;
      const change: Record<string, unknown> = {};
      if ((row[cfg.segment_field] ?? null) !== p.segment) change[cfg.segment_field] = p.segment;
      const priority = p.segment === null ? undefined : cfg.priority[p.segment];
      if (setPriority && priority !== undefined && row[cfg.priority_field] !== priority) change[cfg.priority_field] = priority;
      if (Object.keys(change).length > 0) out.push({ contactId, record: { attributes: { type: 'Case' }, Id: row.Id, ...change } });
    }
    return out;
  }

  private stopped(signal: AbortSignal): Outcome {
    return this.api.budget.exhausted
      ? { status: 'deferred', errorCode: 'SALESFORCE_BUDGET', errorMessage: this.api.budget.exhausted }
      : { status: 'deferred', errorCode: signal.aborted ? 'ABORTED' : 'NOT_SENT', errorMessage: 'not attempted: the run is stopping' };
  }
}
