import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openWarehouse } from '../src/db/warehouse.ts';
import { SegsyncError } from '../src/errors.ts';
import { freshWarehouse, testLog, WAREHOUSE_KINDS } from './helpers/pg.ts';

for (const kind of WAREHOUSE_KINDS) {
  describe(`warehouse (${kind})`, () => {
    test('answers SQL through pg and persists across reopen', async () => {
      const w = await freshWarehouse(kind);
      try {
        await w.warehouse.pool.query('create table probe(id int primary key)');
        await w.warehouse.pool.query('insert into probe values (1), (2)');
        const { rows } = await w.warehouse.pool.query<{ n: number }>('select count(*)::int as n from probe');
        assert.equal(rows[0]?.n, 2);
        assert.equal(w.warehouse.embedded, kind === 'embedded');
        if (kind === 'embedded') {
          await w.warehouse.close();
          const again = await openWarehouse({ dataDir: w.dataDir, log: testLog });
          const r = await again.pool.query<{ n: number }>('select count(*)::int as n from probe');
          assert.equal(r.rows[0]?.n, 2, 'embedded data persists in its data folder');
          w.warehouse = again;
        }
      } finally {
        await w.cleanup();
      }
    });
  });
}

test('embedded mode: one connection, and a second process-level open of the same folder is refused', async () => {
  const w = await freshWarehouse('embedded');
  try {
    assert.equal(w.warehouse.pool.options.max, 1, 'PGlite is one session: the pool must not multiplex transactions');
    await assert.rejects(openWarehouse({ dataDir: w.dataDir, log: testLog }), (err: unknown) => {
      assert.ok(err instanceof SegsyncError);
      assert.equal(err.code, 'EMBEDDED_IN_USE');
      assert.match(err.message, /in use by another segsync process/);
      return true;
    });
    // Two queries at once still run one after the other on the one session, each in its own transaction.
    const client = await w.warehouse.pool.connect();
    await client.query('begin');
    await client.query('create table t(x int)');
    const pending = w.warehouse.pool.query('select count(*) from t');
    let settled = false;
    void pending.then(() => { settled = true; }, () => { settled = true; });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(settled, false, 'a second query waits for the open transaction instead of joining it');
    await client.query('commit');
    client.release();
    await pending;
  } finally {
    await w.cleanup();
  }
});

test('an unreachable server gives an error naming the redacted URL and a hint', async () => {
  await assert.rejects(openWarehouse({ url: 'postgres://u:secret@127.0.0.1:1/x', log: testLog }), (err: unknown) => {
    assert.ok(err instanceof SegsyncError);
    assert.equal(err.code, 'WAREHOUSE_UNREACHABLE');
    assert.doesNotMatch(err.message, /secret/);
    assert.match(err.message, /127\.0\.0\.1:1/);
    return true;
  });
});

test('embedded mode: back-to-back failing queries each report their SQL error, not a dropped connection', async () => {
  const w = await freshWarehouse('embedded');
  try {
    for (let i = 0; i < 4; i++) {
      await assert.rejects(w.warehouse.pool.query('SELECT * FROM missing_relation'), /relation "missing_relation" does not exist/);
    }
    const { rows } = await w.warehouse.pool.query<{ ok: number }>('SELECT 1 AS ok');
    assert.equal(rows[0]?.ok, 1);
  } finally {
    await w.cleanup();
  }
});
