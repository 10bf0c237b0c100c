import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { startCli } from './helpers/cli-process.ts';
import { withMappingProject } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * PII in the API and the dashboard (issues 14 and 17): real runs of a mapping keyed by e-mail address with a
 * name field, one of them triggered through the API of a real `segsync ui` process; then every API answer
 * (mappings, runs list and detail, planned items, record timelines, receipts, events, monitors, segments, a
 * dry run's samples) and every dashboard page, read with an admin API token, and the ui process's own log
 * output: no address and no name appears unmasked. The delivered files (the destination) are the only place
 * they belong.
 */

const MAPPING_NAME = 'people-to-file';
const FIRST = ['Alice', 'Bruno', 'Chiara', 'Dmitri', 'Elif', 'Fatima', 'Gustavo', 'Hannah', 'Ingrid', 'Jamal', 'Keiko', 'Lars'];
const LAST = ['Smithson', 'Okonkwo', 'Bianchi', 'Volkov', 'Yilmaz', 'Haddad', 'Pereira', 'Schneider', 'Lindqvist', 'Rahman', 'Tanaka', 'Eriksen'];
const PEOPLE = FIRST.map((f, i) => ({ email: `${f.toLowerCase()}.${LAST[i]!.toLowerCase()}@example.com`, name: `${f} ${LAST[i]}` }));

const MAPPING = `name: ${MAPPING_NAME}
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
  - { to: customer_name, from: full_name, pii: name }
  - { to: score, from: score, transform: number }
`;

/** The raw personal data found in `text` (case-insensitive; a name also as its URL-encoded form). */
function leaks(text: string): string[] {
  const lower = text.toLowerCase();
  const found: string[] = [];
  for (const p of PEOPLE) {
    for (const v of [p.email, encodeURIComponent(p.email), p.name, encodeURIComponent(p.name), p.name.split(' ')[1]!]) {
      if (lower.includes(v.toLowerCase())) found.push(v);
    }
  }
  return [...new Set(found)];
}

function context(text: string, needle: string): string {
  const i = text.toLowerCase().indexOf(needle.toLowerCase());
  return text.slice(Math.max(0, i - 120), i + needle.length + 120);
}

test('no e-mail address or name in any API answer, dashboard page or the ui process\'s log', async () => {
  await withMappingProject(MAPPING, async (project, db) => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const env = { SEGSYNC_LOG_LEVEL: 'debug', SEGSYNC_LOG_JSON: '1', SEGSYNC_PSEUDONYM_KEY: 'api-pii-pseudonym-key-000000', SEGSYNC_API_TOKEN: '' };
    let ui: ReturnType<typeof startCli> | undefined;
    try {
      await pool.query(`CREATE TABLE people (email text, full_name text, segment text, score text DEFAULT '5')`);
      await pool.query(`INSERT INTO people (email, full_name, segment) SELECT e, n, 'Champions' FROM unnest($1::text[], $2::text[]) AS t(e, n)`, [PEOPLE.map((p) => p.email), PEOPLE.map((p) => p.name)]);
      const first = await project.cli(['run', MAPPING_NAME], { env });
      assert.equal(first.code, 0, first.stdout + first.stderr);
      // A second run changes some: timelines then have a before and an after, both holding names.
      await pool.query(`UPDATE people SET segment = 'At Risk', full_name = full_name || ' Jr' WHERE email = ANY($1)`, [PEOPLE.slice(0, 4).map((p) => p.email)]);
      const second = await project.cli(['run', MAPPING_NAME], { env });
      assert.equal(second.code, 0, second.stdout + second.stderr);
      const made = await project.cli(['tokens', 'create', '--role', 'admin', '--name', 'pii-check'], { env });
      assert.equal(made.code, 0, made.stderr);
      const token = made.stdout.trim();
      assert.match(token, /^ssk_/);

      ui = startCli(['ui', '--port', '0'], { cwd: project.dir, env });
      let live = '';
      ui.child.stdout!.on('data', (d: Buffer) => { live += d.toString(); });
      ui.child.stderr!.on('data', (d: Buffer) => { live += d.toString(); });
      let base = '';
      await waitFor('segsync ui to listen', () => {
        const m = /segsync ui: (http:\/\/127\.0\.0\.1:\d+)\//.exec(live);
        if (m) base = m[1]!;
        return !!m || !ui!.running();
      });
      assert.ok(base, `segsync ui did not start: ${live}`);
      const seen: Array<{ what: string; text: string }> = [];
      const get = async (p: string, expect = 200) => {
        const res = await fetch(base + p, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
        const text = await res.text();
        assert.equal(res.status, expect, `GET ${p}: ${text.slice(0, 300)}`);
        seen.push({ what: `GET ${p}`, text });
        return text;
      };
      const post = async (p: string, body: unknown, expect: number) => {
        const res = await fetch(base + p, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const text = await res.text();
        assert.equal(res.status, expect, `POST ${p}: ${text.slice(0, 300)}`);
        seen.push({ what: `POST ${p}`, text });
        return JSON.parse(text);
      };

      // A third run, through the ui's API: its planning and delivery log in that process.
      await pool.query(`UPDATE people SET segment = 'Loyal', full_name = full_name || ' II' WHERE email = ANY($1)`, [PEOPLE.slice(4, 8).map((p) => p.email)]);
      const dry = await post(`/api/v1/mappings/${MAPPING_NAME}/runs`, { dryRun: true }, 200);
      assert.ok(JSON.stringify(dry.samples ?? dry).length > 50, 'the dry run shows samples');
      const started = await post(`/api/v1/mappings/${MAPPING_NAME}/runs`, {}, 202);
      await waitFor('the API-triggered run to finish', async () => ['succeeded', 'failed', 'partial'].includes(
        (await pool.query<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [started.runId])).rows[0]?.status ?? ''));
      assert.equal((await pool.query(`SELECT status FROM segsync.runs WHERE id = $1`, [started.runId])).rows[0].status, 'succeeded');

      // Two more through the API that fail on a cast error quoting a value: an address, then a name. The failure
      // is logged by the ui process and kept (runs, events): masked.
      for (const [i, column] of [[9, 'email'], [10, 'full_name']] as const) {
        await pool.query(`UPDATE people SET score = CASE WHEN email = $1 THEN ${column} ELSE '5' END`, [PEOPLE[i]!.email]);
        const res = await fetch(`${base}/api/v1/mappings/${MAPPING_NAME}/runs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
        const text = await res.text();
        seen.push({ what: `POST /api/v1/mappings/${MAPPING_NAME}/runs (a bad ${column})`, text });
        assert.equal(res.status, 202, `a run that fails is still a run: ${text}\n${live.slice(-3000)}`);
        if (res.status === 202) {
          const id = (JSON.parse(text) as { runId: number }).runId;
          await waitFor('the failing run to end', async () => ['failed', 'partial', 'succeeded'].includes(
            (await pool.query<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [id])).rows[0]?.status ?? ''));
        }
      }
      await pool.query(`UPDATE people SET score = '5'`);

      const runIds = (await pool.query<{ id: string }>(`SELECT id FROM segsync.runs ORDER BY id`)).rows.map((r) => Number(r.id));
      assert.ok(runIds.length >= 3, String(runIds));
      await get('/api/v1/openapi.json');
      await get('/api/v1/mappings');
      await get(`/api/v1/mappings/${MAPPING_NAME}`);
      await get('/api/v1/runs');
      await get('/api/v1/receipts?limit=500');
      await get(`/api/v1/receipts?mapping=${MAPPING_NAME}&limit=500`);
      await get('/api/v1/events');
      await get('/api/v1/monitors');
      await get('/api/v1/segments');
      await get('/');
      await get(`/mappings/${MAPPING_NAME}`);
      await get('/segments');
      await get('/events');
      await get('/records');
      // The probes answer without a token: nothing personal in them either (/metrics labels, /status).
      for (const probe of ['/healthz', '/readyz', '/metrics', '/status']) {
        const res = await fetch(base + probe);
        assert.equal(res.status, 200, probe);
        seen.push({ what: `GET ${probe} (no token)`, text: await res.text() });
      }
      for (const id of runIds) {
        await get(`/api/v1/runs/${id}`);
        await get(`/api/v1/runs/${id}/items?limit=500`);
        await get(`/runs/${id}`);
        await get(`/runs/${id}?transitions=1`);
        await get(`/runs/${id}?fragment=items`);
      }
      for (const p of PEOPLE) {
        const k = encodeURIComponent(p.email);
        const t = JSON.parse(await get(`/api/v1/records/${MAPPING_NAME}/${k}`));
        assert.ok(t.runs.length >= 1, `the timeline of ${k} has its runs`);
        await get(`/api/v1/receipts?key=${k}`);
        await get(`/records?mapping=${MAPPING_NAME}&key=${k}`);
        await get(`/records?mapping=${MAPPING_NAME}&key=${k}&fragment=result`);
      }

      // The answers really hold the data, masked: the timelines carry payloads, the run pages items.
      const all = seen.map((s) => s.text).join('\n');
      assert.ok(all.length > 20_000, 'there was something to search');
      assert.match(all, /a\*\*\*@e\*\*\*\.com/, 'addresses are shown masked');
      assert.match(all, /invalid input syntax for type numeric/, 'the cast failures are shown (masked)');
      const problems: string[] = [];
      for (const s of seen) for (const l of leaks(s.text)) problems.push(`${s.what}: '${l}' in …${context(s.text, l)}…`);

      // The ui process's own log (debug level, JSON lines) and output.
      ui.child.kill('SIGTERM');
      const exit = await ui.exited;
      const output = exit.stdout + exit.stderr;
      if (process.env.SEGSYNC_TEST_SHOW_UI_LOG) console.log(output);
      assert.ok(output.split('\n').length > 3, `the ui logged: ${output.slice(0, 500)}`);
      for (const l of leaks(output)) problems.push(`segsync ui output: '${l}' in …${context(output, l)}…`);
      for (const l of leaks(first.stdout + first.stderr + second.stdout + second.stderr)) problems.push(`segsync run output: '${l}'`);
      assert.deepEqual(problems, []);

      // The destination has them in clear: that is where they belong (and proves the search would find them).
      const delivered = (await project.cli(['receipts', '--show-pii', '--reason', 'api-pii test: proving the search finds clear text'], { env })).stdout;
      assert.ok(leaks(delivered).length > 0, 'the same search finds the clear values where they are meant to be');
    } finally {
      if (ui?.running()) ui.child.kill('SIGKILL');
      await pool.end();
    }
  });
});
