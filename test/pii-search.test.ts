import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { withMappingProject } from './helpers/project.ts';

/**
 * A demo-like run with e-mail keys, one that fails on a Postgres cast quoting an address, and the commands people
 * read afterwards; then a search of everything shown or kept for people (logs, command output, run errors and
 * reasons, events, the outbox, receipts, the audit trail) for those addresses: none may appear unmasked. The
 * delivered files themselves (the destination) are the only place they belong.
 */
const PEOPLE = Array.from({ length: 12 }, (_, i) => `person${i}@example.com`);

const MAPPING = (field: string) => `name: people-to-file
source:
  model: people
  key: email
  key_pii: email
destination:
  connection: files
  object: customers
  match_key: email
  options:
    format: ndjson
fields:
  - { to: segment, from: segment }
  - { to: contact, from: email, pii: email }
${field}
`;

test('after runs with e-mail keys and a cast error quoting one, no address appears unmasked in logs, output, events, runs, receipts or the audit trail', async () => {
  await withMappingProject(MAPPING(''), async (project, db) => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await pool.query(`CREATE TABLE people (email text, segment text, score text)`);
      await pool.query(`INSERT INTO people SELECT e, 'Champions', '5' FROM unnest($1::text[]) e`, [PEOPLE]);
      const env = { SEGSYNC_LOG_LEVEL: 'debug', SEGSYNC_PSEUDONYM_KEY: 'pii-search-pseudonym-key-00' };
      const outputs: string[] = [];
      const cli = async (args: string[], expect?: number) => {
        const r = await project.cli(args, { env });
        outputs.push(r.stdout, r.stderr);
        if (expect !== undefined) assert.equal(r.code, expect, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        return r;
      };
      await cli(['run', 'people-to-file'], 0);
      // A score column holding an address: PostgreSQL's cast error quotes it.
      await pool.query(`UPDATE people SET score = email WHERE email = $1`, [PEOPLE[3]]);
      await project.write('mappings/m.yaml', MAPPING('  - { to: score, from: score, transform: number }'));
      const failed = await cli(['run', 'people-to-file']);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /invalid input syntax for type numeric: "p\*\*\*@e\*\*\*\.com"/);
      await cli(['runs'], 0);
      await cli(['receipts', '--mapping', 'people-to-file'], 0);
      await cli(['audit', 'log', '--format', 'json'], 0);
      await cli(['audit', 'verify'], 0);
      const tables = await pool.query<{ t: string }>(`
        SELECT coalesce(error, '') || ' ' || coalesce(status_reason, '') AS t FROM segsync.runs
        UNION ALL SELECT coalesce(reason, '') || ' ' || details::text FROM segsync.outbox
        UNION ALL SELECT message || ' ' || details::text FROM segsync.events
        UNION ALL SELECT coalesce(error_message, '') FROM segsync.receipts
        UNION ALL SELECT entry FROM segsync.audit
        UNION ALL SELECT coalesce(last_error, '') FROM segsync.delivered`);
      const shown = [...outputs, ...tables.rows.map((r) => r.t)].join('\n');
      assert.ok(shown.length > 1000, 'there was something to search');
      assert.match(shown, /invalid input syntax for type numeric/, 'the cast error itself is kept');
      const found = PEOPLE.filter((p) => shown.toLowerCase().includes(p));
      assert.deepEqual(found, [], `unmasked addresses in: ${found.map((f) => shown.split('\n').find((l) => l.toLowerCase().includes(f))).join('\n')}`);
      // Seeing them unmasked takes a reason, and the view is an access event in the audit trail.
      const refused = await project.cli(['receipts', '--show-pii'], { env });
      assert.equal(refused.code, 2);
      const clear = await project.cli(['receipts', '--show-pii', '--reason', 'ticket 42: customer asked what we sent'], { env });
      assert.equal(clear.code, 0, clear.stderr);
      assert.ok(clear.stdout.includes(PEOPLE[0]!));
      const access = (await pool.query<{ entry: string }>(`SELECT entry FROM segsync.audit WHERE action = 'pii.viewed'`)).rows;
      assert.equal(access.length, 1);
      const e = JSON.parse(access[0]!.entry);
      assert.equal(e.details.reason, 'ticket 42: customer asked what we sent');
      assert.ok(e.details.keys.length >= 12 && e.details.keys.every((k: string) => k.startsWith('p_')));
    } finally {
      await pool.end();
    }
  });
});
