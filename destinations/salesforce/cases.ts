import { BudgetExhaustedError, describeError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { SfApi } from './api.ts';
import { chunk } from '../../src/db/chunk.ts';
import { pool, saveOutcome, COLLECTIONS_MAX } from './collections.ts';
import type { CasesConfig } from './config.ts';
import { selectIn, soqlString } from './query.ts';

/**
 * Writes the contact's segment, and the priority the `cases:` block derives from it, onto the contact's open
 * Cases. Only Cases whose values differ are written, so a rerun costs one query per 500 contacts and no
 * writes. A Case failure is logged and counted; it never fails the contact's own delivery.
 */

export interface CaseUpdateSummary {
  matched: number;
  updated: number;
  failed: number;
}

export async function updateOpenCases(api: SfApi, cfg: CasesConfig, segments: Map<string, string | null>, log: Logger, signal: AbortSignal): Promise<CaseUpdateSummary> {
  const summary: CaseUpdateSummary = { matched: 0, updated: 0, failed: 0 };
  if (segments.size === 0) return summary;
  const open = cfg.open_statuses ? `Status IN (${cfg.open_statuses.map(soqlString).join(',')})` : 'IsClosed = false';
  const setPriority = Object.keys(cfg.priority).length > 0;
  const fields = ['Id', cfg.contact_field, cfg.segment_field, ...(setPriority ? [cfg.priority_field] : [])];
  const rows = await selectIn(api, 'Case', fields, cfg.contact_field, [...segments.keys()], open);
  summary.matched = rows.length;
  const updates: Array<Record<string, unknown>> = [];
  for (const row of rows) {
    const segment = segments.get(String(row[cfg.contact_field]));
    if (segment === undefined) continue;
    const change: Record<string, unknown> = {};
    if ((row[cfg.segment_field] ?? null) !== segment) change[cfg.segment_field] = segment;
    const priority = segment === null ? undefined : cfg.priority[segment];
    if (setPriority && priority !== undefined && row[cfg.priority_field] !== priority) change[cfg.priority_field] = priority;
    if (Object.keys(change).length > 0) updates.push({ attributes: { type: 'Case' }, Id: row.Id, ...change });
  }
  await pool(chunk(updates, COLLECTIONS_MAX), 2, async (part) => {
    if (signal.aborted) return;
    try {
      const results = await api.write(`update ${part.length} Case`, () => api.conn.sobject('Case').update(part as Array<{ Id: string }>, { allOrNone: false }) as unknown as Promise<Array<{ success: boolean; id?: string; errors?: [] }>>, signal);
      part.forEach((rec, i) => {
        const o = saveOutcome(String(rec.Id), results[i]);
        if (o.status === 'delivered') summary.updated += 1;
        else {
          summary.failed += 1;
          log.warn({ caseId: rec.Id, code: o.errorCode, error: o.errorMessage }, 'salesforce case update failed');
        }
      });
    } catch (err) {
      summary.failed += part.length;
      log.warn({ err: describeError(err), cases: part.length }, 'salesforce case update call failed');
      if (err instanceof BudgetExhaustedError) throw err;
    }
  });
  log.info(summary, 'salesforce open cases updated');
  return summary;
}
