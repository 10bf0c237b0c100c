import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { withApp, type App } from '../src/app.ts';
import { loadProject } from '../src/config/load.ts';
import { Mapping } from '../src/config/mapping.ts';
import { bindSourceSql, renderSourceSql } from '../src/config/source-sql.ts';
import { ConfigError, DataError } from '../src/errors.ts';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { checkSource } from '../src/sync/source.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, seedSegments, type TestProject } from './helpers/project.ts';

/** A file mapping over `sql` (a block scalar starting on line 3, so positions are predictable). */
const SQL_MAPPING = (sql: string, name = 'src-sql') => `name: ${name}
source:
  sql: |
${sql.split('\n').map((l) => `    ${l}`).join('\n')}
  key: user_id
destination:
  connection: files
  object: customers
  match_key: customer_id
fields:
  - { to: rfm_segment, from: rfm_segment }
`;

describe('sources run read-only, as one statement, with ${ENV} bound as a parameter', () => {
  let db: TestDatabase;
  let project: TestProject;
  const app = <T>(env: NodeJS.ProcessEnv, fn: (app: App) => Promise<T>) => withApp({ root: project.dir, env: { ...process.env, ...env } }, fn);
  const tableExists = async (a: App, name: string) => (await a.warehouse.pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [name])).rows[0].e as boolean;

  before(async () => {
    db = await createTestDatabase();
    project = await createProject({ url: db.url });
    await project.app(async (a) => seedSegments(a.warehouse.pool, 6));
  });
  after(async () => { await project.cleanup(); await db.drop(); });

  test('a second statement in source.sql is refused at load, with its position, and creates nothing', async () => {
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment FROM segments;\nCREATE TABLE pwned (x int)'));
    const err = await loadProject({ root: project.dir }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /mappings\/m\.yaml:3:\d+.*source\.sql line 1, column 42: source\.sql holds more than one statement/);
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT 1 AS user_id, 2 AS rfm_segment) src; CREATE TABLE pwned (x int); SELECT * FROM (SELECT 1 AS user_id'));
    const escape = await loadProject({ root: project.dir }).then(() => null, (e: unknown) => e);
    assert.ok(escape instanceof ConfigError);
    assert.match(escape.message, /a '\)' closes more than the query opened/);
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment FROM segments'));
    await project.app(async (a) => assert.equal(await tableExists(a, 'pwned'), false));
  });

  test('a source that escapes its parentheses, handed over without the loader, is refused by the database and creates nothing', async () => {
    // The defect: the source was pasted into `(...) src` and run over the simple protocol, so this ran CREATE TABLE.
    const mapping = Mapping.parse({
      name: 'escape', source: { sql: 'SELECT 1 AS user_id, 2 AS rfm_segment) src; CREATE TABLE pwned (x int); SELECT * FROM (SELECT 1 AS user_id, 2 AS rfm_segment', key: 'user_id' },
      destination: { connection: 'files', object: 'x', match_key: 'customer_id' }, fields: [{ to: 'rfm_segment', from: 'rfm_segment' }],
    });
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment FROM segments'));
    await project.app(async (a) => {
      const err = await checkSource(a.warehouse.pool, { file: 'mappings/escape.yaml', value: mapping, where: () => ({ line: 3, column: 8 }) }, 'public').then(() => null, (e: unknown) => e);
      assert.ok(err instanceof DataError && err.code === 'SOURCE_UNREADABLE', String(err));
      assert.match(err.message, /^mappings\/escape\.yaml:3:8: cannot read the source of mapping 'escape': cannot insert multiple commands into a prepared statement/);
      assert.equal(await tableExists(a, 'pwned'), false);
    });
  });

  test('an ${ENV} value is a bind parameter: quotes in it match literally and never widen the source', async () => {
    await project.app(async (a) => a.warehouse.pool.query(`INSERT INTO segments (user_id, rfm_segment) VALUES ('q1', $1)`, ["x' OR true OR 'y"]));
    // Both spellings: the bare placeholder, and the quoted one mappings were written with while values were pasted.
    for (const where of ['rfm_segment = ${REGION}', "rfm_segment = '${REGION}'"]) {
      await project.write('mappings/m.yaml', SQL_MAPPING(`SELECT user_id, rfm_segment FROM segments\nWHERE ${where}`));
      const injected = await app({ REGION: "x' OR true OR 'y" }, (a) => planMapping(a, 'src-sql'));
      assert.equal(injected.counts.source, 1, `${where}: only the row whose segment is literally the value`);
      assert.deepEqual(injected.detail.samples.map((s) => s.key), ['q1']);
      const plain = await app({ REGION: 'Champions' }, (a) => planMapping(a, 'src-sql'));
      assert.equal(plain.counts.source, 3, `${where}: a plain value still selects its rows`);
    }
  });

  test('a placeholder inside a longer string literal is refused at load with its position', async () => {
    await project.write('mappings/m.yaml', SQL_MAPPING(`SELECT user_id, rfm_segment FROM segments\nWHERE rfm_segment LIKE '\${PREFIX}%'`));
    const err = await loadProject({ root: project.dir, env: { PREFIX: 'Ch' } }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /source\.sql line 2, column 25: \$\{\.\.\.\} inside a string literal/);
  });

  test('a source calling a writing function fails in the read-only check with file:line, before anything is planned; the failure is a run row', async () => {
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment, touch() AS t FROM segments'));
    await project.app(async (a) => {
      await a.warehouse.pool.query(`CREATE TABLE audit (at timestamptz DEFAULT now());
        CREATE FUNCTION touch() RETURNS int LANGUAGE sql AS 'INSERT INTO audit DEFAULT VALUES RETURNING 1'`);
    });
    await project.app(async (a) => {
      await assert.rejects(runMapping(a, 'src-sql'), (err: unknown) => {
        assert.ok(err instanceof DataError && err.code === 'SOURCE_NOT_READ_ONLY', String(err));
        assert.match(err.message, /mappings\/m\.yaml:3:\d+: the source of mapping 'src-sql' writes to the database: cannot execute INSERT in a read-only transaction/);
        return true;
      });
      const pool = a.warehouse.pool;
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM audit')).rows[0].n, 0);
      // Every failure is a visible run (issue 11): failed, with the error, and nothing planned.
      const runs = (await pool.query(`SELECT r.status, r.error, (SELECT count(*)::int FROM segsync.run_items i WHERE i.run_id = r.id) AS items FROM segsync.runs r`)).rows;
      assert.equal(runs.length, 1);
      assert.equal(runs[0].status, 'failed');
      assert.match(runs[0].error, /writes to the database/);
      assert.equal(runs[0].items, 0, 'nothing was planned');
    });
  });

  test('a bad source fails with the mapping position, the line in source.sql and the database message', async () => {
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment\nFROM segments\nWHERE no_such_column = 1'));
    await project.app(async (a) => {
      await assert.rejects(planMapping(a, 'src-sql'), /DataError: [^ ]*mappings\/m\.yaml:3:\d+: cannot read the source of mapping 'src-sql': column "no_such_column" does not exist \(at line 3 of source\.sql\)/);
    });
  });
});

describe('empty and whitespace-only keys are refused like NULL', () => {
  let db: TestDatabase;
  let project: TestProject;
  before(async () => {
    db = await createTestDatabase();
    project = await createProject({ url: db.url });
  });
  after(async () => { await project.cleanup(); await db.drop(); });

  const KEYS_MAPPING = (model: string) => `name: keys
source: { model: ${model}, key: user_id }
destination: { connection: files, object: customers, match_key: customer_id }
fields:
  - { to: rfm_segment, from: rfm_segment }
`;

  for (const [what, ddl] of [
    ['a source without constraints', 'CREATE TABLE k_plain (user_id text, rfm_segment text)'],
    // The fast path: the database rules out duplicates and NULLs, not ''.
    ['a unique NOT NULL (primary) key', 'CREATE TABLE k_pk (user_id text PRIMARY KEY, rfm_segment text)'],
  ] as const) {
    test(`${what}: '' and '  ' are refused with examples, and nothing is sent`, async () => {
      const table = /CREATE TABLE (\w+)/.exec(ddl)![1]!;
      await project.write('mappings/m.yaml', KEYS_MAPPING(table));
      await project.app(async (a) => {
        await a.warehouse.pool.query(`${ddl}; INSERT INTO ${table} VALUES ('u1', 'A'), ('', 'B'), (E' \\t', 'C'), ('u2', 'D')`);
        await assert.rejects(runMapping(a, 'keys'), (err: unknown) => {
          assert.ok(err instanceof DataError && err.code === 'INVALID_KEYS', String(err));
          assert.match(err.message, /the source has 2 row\(s\) with an empty or whitespace-only user_id: "" x1, " \\t" x1\. Nothing was sent\./);
          return true;
        });
        const run = (await a.warehouse.pool.query(`SELECT status FROM segsync.runs WHERE mapping = 'keys' ORDER BY id DESC LIMIT 1`)).rows;
        assert.deepEqual(run.map((r) => r.status), ['failed']);
      });
      assert.deepEqual(await readdir(path.join(project.outDir, 'keys')).catch(() => []), [], 'no batch file');
    });
  }

  test(`a vertical tab alone is blank, and keys of the letter v are keys (PostgreSQL's E'\\v' is a v)`, async () => {
    await project.write('mappings/m.yaml', KEYS_MAPPING('k_vt'));
    await project.app(async (a) => {
      await a.warehouse.pool.query(`CREATE TABLE k_vt (user_id text PRIMARY KEY, rfm_segment text); INSERT INTO k_vt VALUES ('v', 'A'), ('vv', 'B')`);
      const plan = await planMapping(a, 'keys');
      assert.equal(plan.counts.create, 2, 'v and vv are planned');
      await a.warehouse.pool.query(`INSERT INTO k_vt VALUES (E' \\x0b', 'C')`);
      await assert.rejects(planMapping(a, 'keys'), /the source has 1 row\(s\) with an empty or whitespace-only user_id: " \\u000b" x1\. Nothing was sent\./);
    });
  });

  test('a NULL, a blank and a duplicate are reported together', async () => {
    await project.write('mappings/m.yaml', KEYS_MAPPING('k_mixed'));
    await project.app(async (a) => {
      await a.warehouse.pool.query(`CREATE TABLE k_mixed (user_id text, rfm_segment text);
        INSERT INTO k_mixed VALUES (NULL, 'A'), ('', 'B'), ('user-one', 'C'), ('user-one', 'D')`);
      await assert.rejects(planMapping(a, 'keys'), /the source has 1 row\(s\) with a NULL user_id; 1 row\(s\) with an empty or whitespace-only user_id: "" x1; duplicate user_id values \(NON_UNIQUE_PRIMARY_KEY\): 'us\*\*\*ne' x2\. Nothing was sent\./);
    });
  });
});

test('source.sql lexing: placeholders in code are bound, comments and quoted text are left alone', () => {
  const env = { A: "x'y", B: '2' };
  const r = bindSourceSql("SELECT a$1, \"we;ird)\" FROM t -- ${A} ; )\nWHERE x = ${A} AND y = '${B}' /* ; ) /* nested */ */ AND z = $q$;)$q$;\n", env);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.params, ["x'y", '2']);
  assert.equal(renderSourceSql(r.text, 4), "SELECT a$1, \"we;ird)\" FROM t -- ${A} ; )\nWHERE x = $5 AND y = $6 /* ; ) /* nested */ */ AND z = $q$;)$q$");
  const bad = bindSourceSql("SELECT E'${A}', $$ ${B} $$ FROM t WHERE k = $1", env);
  assert.deepEqual(bad.problems.map((p) => [p.offset, p.message.split(':')[0]]), [
    [9, '${...} inside a string literal'], [19, '${...} inside a dollar-quoted string'], [44, 'positional parameter $1 in source.sql'],
  ]);
});

test('embedded PGlite: a SQL source with a bind parameter is read over the extended protocol and delivered', async () => {
  const project = await createProject();
  try {
    await project.write('mappings/m.yaml', SQL_MAPPING('SELECT user_id, rfm_segment FROM segments\nWHERE rfm_segment = ${SEG}'));
    const opts = { root: project.dir, dataDir: path.join(project.dir, '.segsync/pgdata') };
    await withApp({ ...opts, env: { ...process.env, SEG: "Champions' OR 'a' = 'a" } }, async (a) => {
      assert.equal(a.warehouse.embedded, true);
      await seedSegments(a.warehouse.pool, 6);
      assert.equal((await planMapping(a, 'src-sql')).counts.source, 0);
    });
    await withApp({ ...opts, env: { ...process.env, SEG: 'Champions' } }, async (a) => {
      assert.equal((await runMapping(a, 'src-sql')).counts.delivered, 3);
    });
  } finally {
    await project.cleanup();
  }
});
