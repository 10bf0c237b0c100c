import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { spawnDaemon } from './helpers/daemon-process.ts';
import { createProject, FILE_MAPPING, seedSegments } from './helpers/project.ts';

/**
 * Embedded database held by a running daemon (issue 17): the read-only commands `runs`, `receipts` and `plan`
 * answer through the daemon's API instead of failing; without a token they fail as before, saying how to
 * make them work. The daemon serves the API and the dashboard on its HTTP port, behind the token.
 */
test('while a daemon holds the embedded database, runs / receipts / plan ask its API', async () => {
  const token = 'remote-cli-token-0123456789';
  const project = await createProject();
  await project.write('mappings/m.yaml', FILE_MAPPING({ extra: 'schedule: "*/2 * * * * *"\nbatch_size: 5' }));
  const saved = process.env.SEGSYNC_API_TOKEN;
  process.env.SEGSYNC_API_TOKEN = token;
  try {
    await project.app(async (app) => seedSegments(app.warehouse.pool, 12));
    const d = await spawnDaemon(project.dir, ['--data-dir', path.join(project.dir, '.segsync/pgdata')]);
    try {
      await d.waitForLog((l) => l.msg === 'run finished' && l.status === 'succeeded');
      const base = `http://127.0.0.1:${d.port}`;
      assert.equal((await fetch(`${base}/api/v1/runs`)).status, 401, 'the daemon\'s API wants the token');
      const api = await fetch(`${base}/api/v1/runs?mapping=seg-to-file`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(api.status, 200);
      const page = await fetch(`${base}/`, { headers: { authorization: `Bearer ${token}` } });
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.match(await page.text(), /seg-to-file/);

      const env = { SEGSYNC_API_TOKEN: token, SEGSYNC_API_URL: base };
      const runs = await project.cli(['runs', '--mapping', 'seg-to-file'], { env });
      assert.equal(runs.code, 0, runs.stderr);
      assert.match(runs.stderr, /asking its API/);
      assert.match(runs.stdout, /seg-to-file/);
      assert.match(runs.stdout, /succeeded/);
      const receipts = await project.cli(['receipts', '--mapping', 'seg-to-file', '--format', 'json'], { env });
      assert.equal(receipts.code, 0, receipts.stderr);
      const rows = JSON.parse(receipts.stdout) as Array<{ key: string; status: string }>;
      assert.ok(rows.length >= 12 && rows.every((r) => r.status === 'delivered'), receipts.stdout.slice(0, 300));
      const plan = await project.cli(['plan', 'seg-to-file'], { env });
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /plan for seg-to-file \(12 source records\)/);
      const bad = await project.cli(['receipts', '--status', 'fialed'], { env });
      assert.equal(bad.code, 2, 'a bad flag is refused before asking anyone');

      const without = await project.cli(['runs'], { env: { SEGSYNC_API_TOKEN: '' } });
      assert.notEqual(without.code, 0);
      assert.match(without.stderr, /in use by another segsync process/);
      assert.match(without.stderr, /SEGSYNC_API_TOKEN/);
    } finally {
      d.child.kill('SIGTERM');
      assert.equal((await d.exited()).code, 0);
    }
  } finally {
    if (saved === undefined) delete process.env.SEGSYNC_API_TOKEN;
    else process.env.SEGSYNC_API_TOKEN = saved;
    await project.cleanup();
  }
});
