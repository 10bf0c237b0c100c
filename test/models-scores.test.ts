import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { build, currentByUser, SEGMENT_MATRIX, seedSchema } from './helpers/models.ts';
import type { Payment } from './helpers/payments.ts';
import { useFreshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

const AS_OF = '2023-12-15T00:00:00Z';

function pay(user: string, id: string, date: string, amount = '10.00'): Payment {
  return { user_id: user, payment_id: id, payment_date: date, payment_amount: amount };
}

/** Users whose percentile on every metric is rank/(n-1) for rank 0..n-1: user k has k+1 payments, the last
 *  one later and larger the higher k is. */
function ladder(n: number): Payment[] {
  const rows: Payment[] = [];
  for (let k = 0; k < n; k++) {
    for (let j = 0; j <= k; j++) {
      const last = j === k;
      const date = last ? new Date(Date.UTC(2023, 0, 10 + k * 7)).toISOString() : `2022-06-0${1 + (j % 9)}T00:00:00Z`;
      rows.push(pay(`u${String(k).padStart(2, '0')}`, `u${k}-${j}`, date, last ? String(100 * (k + 1)) : '1'));
    }
  }
  return rows;
}

function score(p: number): number {
  return p >= 0.8 ? 5 : p >= 0.6 ? 4 : p >= 0.4 ? 3 : p >= 0.2 ? 2 : 1;
}

for (const kind of WAREHOUSE_KINDS) {
  describe(`RFM scores and segments (${kind})`, () => {
    let pool: pg.Pool;
    useFreshWarehouse(kind, (w) => { pool = w.pool; });

    test('all 25 (recency, frequency) score pairs map to the seed\'s segments', async () => {
      // 25 users, five to a recency group and five to a frequency group, one user per (group, group) cell.
      // With ties inside a group, the groups' percentiles are 0, 5/24, 10/24, 15/24, 20/24: scores 1..5.
      const rows: Payment[] = [];
      for (let r = 1; r <= 5; r++) {
        for (let f = 1; f <= 5; f++) {
          const user = `r${r}f${f}`;
          // Recency score r: a later last payment is a smaller recency, ranked higher (ORDER BY recency DESC).
          rows.push(pay(user, `${user}-last`, new Date(Date.UTC(2023, 5 + r, 1)).toISOString()));
          for (let k = 1; k < f; k++) rows.push(pay(user, `${user}-${k}`, `2023-01-0${k}T12:00:00Z`));
        }
      }
      await seedSchema(pool, 'pairs', rows);
      await build(pool, 'pairs', AS_OF);
      const current = await currentByUser(pool, 'pairs');
      assert.equal(current.size, 25);
      for (let r = 1; r <= 5; r++) {
        for (let f = 1; f <= 5; f++) {
          const row = current.get(`r${r}f${f}`);
          assert.ok(row, `user r${r}f${f} is in the current model`);
          assert.equal(row.recency_score, r, `recency score of r${r}f${f}`);
          assert.equal(row.frequency_score, f, `frequency score of r${r}f${f}`);
          assert.equal(row.rfm_segment, SEGMENT_MATRIX[r]?.[f], `segment of (r=${r}, f=${f})`);
        }
      }
    });

    test('percentiles exactly on 0.2, 0.4, 0.6 and 0.8 take the higher score', async () => {
      // Six users: percentiles 0, 0.2, 0.4, 0.6, 0.8, 1 on all three metrics.
      await seedSchema(pool, 'six', ladder(6));
      await build(pool, 'six', AS_OF);
      const six = [...(await currentByUser(pool, 'six')).values()];
      assert.deepEqual(six.map((r) => r.frequency_percentile), [0, 0.2, 0.4, 0.6, 0.8, 1]);
      assert.deepEqual(six.map((r) => r.recency_percentile), [0, 0.2, 0.4, 0.6, 0.8, 1]);
      assert.deepEqual(six.map((r) => r.monetary_percentile), [0, 0.2, 0.4, 0.6, 0.8, 1]);
      for (const metric of ['recency_score', 'frequency_score', 'monetary_score'] as const) {
        assert.deepEqual(six.map((r) => r[metric]), [1, 2, 3, 4, 5, 5], metric);
      }
      // Eleven users: percentiles k/10, the boundaries at k = 2, 4, 6, 8.
      await seedSchema(pool, 'eleven', ladder(11));
      await build(pool, 'eleven', AS_OF);
      const eleven = [...(await currentByUser(pool, 'eleven')).values()];
      assert.deepEqual(eleven.map((r) => r.frequency_percentile), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
      assert.deepEqual(eleven.map((r) => r.frequency_score), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5]);
      assert.deepEqual(eleven.map((r) => r.frequency_score), eleven.map((r) => score(r.frequency_percentile)));
    });

    test('ties share the lower rank (PERCENT_RANK), on every metric', async () => {
      await seedSchema(pool, 'ties', [
        pay('a', 'a1', '2023-03-01T00:00:00Z', '5'),
        pay('b', 'b1', '2023-03-01T00:00:00Z', '5'),
        pay('c', 'c1', '2023-01-01T00:00:00Z', '5'), pay('c', 'c2', '2023-06-01T00:00:00Z', '5'),
        pay('d', 'd1', '2023-01-01T00:00:00Z', '1'), pay('d', 'd2', '2023-01-02T00:00:00Z', '1'), pay('d', 'd3', '2023-09-01T00:00:00Z', '8'),
      ]);
      await build(pool, 'ties', AS_OF);
      const cur = await currentByUser(pool, 'ties');
      const get = (u: string) => cur.get(u) ?? assert.fail(`user ${u} missing`);
      // frequency 1, 1, 2, 3 -> ranks 1, 1, 3, 4 of 4 -> 0, 0, 2/3, 1
      assert.deepEqual(['a', 'b', 'c', 'd'].map((u) => get(u).frequency_percentile), [0, 0, 2 / 3, 1]);
      assert.deepEqual(['a', 'b', 'c', 'd'].map((u) => get(u).frequency_score), [1, 1, 4, 5]);
      // a and b paid last on the same day: the largest recency, tied at rank 1
      assert.deepEqual(['a', 'b', 'c', 'd'].map((u) => get(u).recency_percentile), [0, 0, 2 / 3, 1]);
      // monetary 5, 5, 10, 10 -> 0, 0, 2/3, 2/3
      assert.deepEqual(['a', 'b', 'c', 'd'].map((u) => get(u).monetary_percentile), [0, 0, 2 / 3, 2 / 3]);
      assert.equal(get('d').rfm_segment, 'Champions');
      assert.equal(get('a').rfm_segment, 'Hibernating');
    });

    test('one user: every percentile is 0, so scores 1 and Hibernating', async () => {
      await seedSchema(pool, 'alone', [pay('solo', 's1', '2023-12-14T00:00:00Z', '999'), pay('solo', 's2', '2023-12-01T00:00:00Z', '1')]);
      await build(pool, 'alone', AS_OF);
      const [only, ...rest] = (await currentByUser(pool, 'alone')).values();
      assert.equal(rest.length, 0);
      assert.ok(only);
      assert.deepEqual([only.recency_percentile, only.frequency_percentile, only.monetary_percentile], [0, 0, 0]);
      assert.deepEqual([only.recency_score, only.frequency_score, only.monetary_score], [1, 1, 1]);
      assert.equal(only.rfm_segment, 'Hibernating');
    });

    test('all-equal values: everyone ties at 0 and lands in Hibernating', async () => {
      const rows: Payment[] = [];
      for (let u = 0; u < 7; u++) {
        rows.push(pay(`same${u}`, `s${u}a`, '2023-05-05T05:05:05Z', '42.42'), pay(`same${u}`, `s${u}b`, '2023-10-10T10:10:10Z', '7.58'));
      }
      await seedSchema(pool, 'equal', rows);
      await build(pool, 'equal', AS_OF);
      const cur = [...(await currentByUser(pool, 'equal')).values()];
      assert.equal(cur.length, 7);
      for (const r of cur) {
        assert.deepEqual([r.recency_score, r.frequency_score, r.monetary_score, r.rfm_segment], [1, 1, 1, 'Hibernating']);
      }
    });
  });
}
