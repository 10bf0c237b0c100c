import type pg from 'pg';

/** One payment row as the tests write it into fact_payments. */
export interface Payment {
  user_id: string;
  payment_id: string;
  payment_date: string;
  payment_amount: string;
}

/** Creates the payments relation of the contract (the loader makes the same shape). */
export async function createPayments(pool: pg.Pool, relation = 'public.fact_payments'): Promise<void> {
  await pool.query(`CREATE TABLE ${relation} (user_id text, payment_id text, payment_date timestamptz, payment_amount numeric)`);
}

/** Inserts rows in batches with unnest (COPY FROM STDIN does not work on the embedded database). */
export async function insertPayments(pool: pg.Pool, rows: Payment[], relation = 'public.fact_payments'): Promise<void> {
  for (let i = 0; i < rows.length; i += 5000) {
    const batch = rows.slice(i, i + 5000);
    await pool.query(
      `INSERT INTO ${relation} (user_id, payment_id, payment_date, payment_amount)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[])`,
      [batch.map((r) => r.user_id), batch.map((r) => r.payment_id), batch.map((r) => r.payment_date), batch.map((r) => r.payment_amount)]);
  }
}

import { prng } from './prng.ts';

export { prng };

/**
 * Seeded random payments between `from` and `to`: skewed counts per user, amounts with two decimals, users
 * starting at different times (so early snapshots have fewer users), and many ties in frequency.
 */
export function randomPayments(seed: number, users: number, from: Date, to: Date, idPrefix = 'p'): Payment[] {
  const rand = prng(seed);
  const span = to.getTime() - from.getTime();
  const out: Payment[] = [];
  let n = 0;
  for (let u = 0; u < users; u++) {
    const start = from.getTime() + Math.floor(rand() * span * 0.8);
    const count = 1 + Math.floor(rand() ** 3 * 12);
    for (let k = 0; k < count; k++) {
      const at = start + Math.floor(rand() * (to.getTime() - start));
      out.push({
        user_id: `u${u}`,
        payment_id: `${idPrefix}${n++}`,
        payment_date: new Date(at).toISOString(),
        payment_amount: (1 + Math.floor(rand() * 50000) / 100).toFixed(2),
      });
    }
  }
  return out;
}
