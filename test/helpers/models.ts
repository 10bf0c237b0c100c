import type pg from 'pg';
import { buildModels, type BuildSummary } from '../../src/models/index.ts';
import { createPayments, insertPayments, type Payment } from './payments.ts';
import { testLog } from './pg.ts';

/** A schema of its own per test: its payments table and its models live there. */
export async function seedSchema(pool: pg.Pool, schema: string, rows: Payment[]): Promise<void> {
  await pool.query(`CREATE SCHEMA ${schema}`);
  await createPayments(pool, `${schema}.fact_payments`);
  await insertPayments(pool, rows, `${schema}.fact_payments`);
}

/**
 * A build as of a historical instant. The model tests move the as-of both ways on purpose, so going back is
 * allowed here; the refusal itself is tested in time-traps.test.ts.
 */
export function build(pool: pg.Pool, schema: string, asOf: string, extra: { fullRefresh?: boolean; payments?: string; allowEarlierAsOf?: boolean } = {}): Promise<BuildSummary> {
  return buildModels(pool, { schema, payments: extra.payments ?? 'fact_payments', asOf: new Date(asOf), fullRefresh: extra.fullRefresh, allowEarlierAsOf: extra.allowEarlierAsOf ?? true, log: testLog });
}

export interface ScoreRow {
  user_id: string;
  recency_percentile: number;
  frequency_percentile: number;
  monetary_percentile: number;
  recency_score: number;
  frequency_score: number;
  monetary_score: number;
  rfm_segment: string;
}

export async function currentByUser(pool: pg.Pool, schema: string): Promise<Map<string, ScoreRow>> {
  const { rows } = await pool.query<ScoreRow>(`SELECT * FROM ${schema}.rfm_current_segments ORDER BY user_id`);
  return new Map(rows.map((r) => [r.user_id, r]));
}

/**
 * Every column of a history table as text, in a stable order: two histories are equal when these lists are.
 * Percentiles are compared as float8 text (shortest exact representation), so "equal" means bit-equal.
 */
export async function historyRows(pool: pg.Pool, relation: string): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(
    `SELECT concat_ws(' | ', user_id, snapshot_at, max_payment_date, recency, recency_days, frequency, monetary,
            recency_percentile, frequency_percentile, monetary_percentile,
            recency_score, frequency_score, monetary_score, rfm_segment) AS line
       FROM ${relation} ORDER BY snapshot_at, user_id`);
  return rows.map((r) => r.line);
}

/** The 5 x 5 (recency score, frequency score) matrix of rfm-model.md, written out cell by cell. */
export const SEGMENT_MATRIX: Record<number, Record<number, string>> = {
  1: { 1: 'Hibernating', 2: 'Hibernating', 3: 'At Risk', 4: 'At Risk', 5: 'Cannot Lose Them' },
  2: { 1: 'Hibernating', 2: 'Hibernating', 3: 'At Risk', 4: 'At Risk', 5: 'Cannot Lose Them' },
  3: { 1: 'About to Sleep', 2: 'About to Sleep', 3: 'Need Attention', 4: 'Loyal Customers', 5: 'Loyal Customers' },
  4: { 1: 'Promising', 2: 'Potential Loyalists', 3: 'Potential Loyalists', 4: 'Loyal Customers', 5: 'Loyal Customers' },
  5: { 1: 'New Customers', 2: 'Potential Loyalists', 3: 'Potential Loyalists', 4: 'Champions', 5: 'Champions' },
};
