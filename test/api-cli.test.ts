import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { controlPlaneFixture, MAPPING, TOKEN, type ControlPlaneFixture } from './helpers/control-plane.ts';
import { CLI } from './helpers/project.ts';

/**
 * `segsync ui` serves the API and the dashboard without scheduling; `segsync approve` / `reject` go through
 * the same shared functions as the API (src/sync/decide.ts) and say what they did.
 */

let f: ControlPlaneFixture;
before(async () => { f = await controlPlaneFixture(); });
after(async () => { await f?.close(); });

describe('segsync ui and the CLI decisions', () => {
  test('segsync ui: 127.0.0.1 by default, the API and the dashboard behind the token, nothing scheduled; SIGTERM ends it', async () => {
    const child = spawn(process.execPath, [CLI, 'ui', '--port', '0'], { cwd: f.project.dir, env: { ...process.env, SEGSYNC_API_TOKEN: TOKEN, SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => { if (/segsync ui: http:\/\/\S+\//.test(out)) resolve(); });
        child.once('exit', (code) => reject(new Error(`ui exited ${code} before listening: ${out}`)));
      });
      const url = /segsync ui: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      assert.ok(url, `binds 127.0.0.1 by default: ${out}`);
      assert.equal((await fetch(`${url}/api/v1/mappings`)).status, 401);
      const m = await fetch(`${url}/api/v1/mappings`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(m.status, 200);
      const body = await m.json() as { mappings: Array<{ name: string; waiting: { id: number } | null }> };
      assert.deepEqual(body.mappings.map((x) => [x.name, x.waiting?.id]), [[MAPPING, f.held.runId]]);
      const status = await (await fetch(`${url}/status`)).json() as { scheduling: boolean };
      assert.equal(status.scheduling, false);
    } finally {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
    }
  });

  test('segsync reject and approve: the shared decision functions, refusing a run that is not held', async () => {
    const notHeld = await f.project.cli(['approve', String(f.runs[0]!.runId), '--reason', 'x']);
    assert.equal(notHeld.code, 2, notHeld.stderr);
    assert.match(notHeld.stderr, /is succeeded, not held: nothing to approve/);
    const ok = await f.project.cli(['approve', String(f.held.runId), '--reason', 'the definitions changed on purpose']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`run ${f.held.runId} of ${MAPPING} approved by cli:`));
    assert.match(ok.stdout, new RegExp(`run ${f.held.runId} of ${MAPPING}: succeeded`));
    const [row] = await f.q<{ status: string }>('SELECT status FROM segsync.runs WHERE id = $1', [f.held.runId]);
    assert.equal(row!.status, 'succeeded');
    const again = await f.project.cli(['reject', String(f.held.runId), '--reason', 'late']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /not held: nothing to reject/);
  });
});
