import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runToExit } from './helpers/cli.ts';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeProblem } from '../bin/node-check.js';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, REPO_ROOT, type TestProject } from './helpers/project.ts';

/** `segsync` as a user types it: the shim linked by the set-up, from a folder that is not the clone. */
const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string } });

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(cmd, args, { cwd: opts.cwd, env: { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_LOG_JSON: '1', ...opts.env } });
}

/** A Node older than 24 on this machine (the plain `node` of the CI image is 20), or null. */
function oldNode(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin'];
  for (const d of dirs) {
    const n = path.join(d, 'node');
    if (!d || !existsSync(n)) continue;
    const v = spawnSync(n, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (v && Number(v.split('.')[0]) < 24) return n;
  }
  return null;
}

describe('segsync as a command', () => {
  let home: string;
  let elsewhere: string;
  let shim: string;
  /** PATH for the user's shell: system folders only, so the command has to find the project's Node itself. */
  let userPathEnv: string;

  before(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'segsync-home-'));
    elsewhere = await mkdtemp(path.join(tmpdir(), 'segsync-cwd-'));
    const bin = path.join(home, '.local/bin');
    const linked = spawnSync('sh', [path.join(REPO_ROOT, 'scripts/link-command.sh')], { env: { ...process.env, HOME: home, SEGSYNC_BIN_DIR: '' }, encoding: 'utf8' });
    assert.equal(linked.status, 0, linked.stderr);
    shim = path.join(bin, 'segsync');
    assert.equal(readlinkSync(shim), path.join(REPO_ROOT, 'bin/segsync'));
    assert.match(linked.stderr, /not on your PATH yet: export PATH=/);
    // A bare clone without .tools/ runs its tests with Node 24 first on PATH (scripts/dev.sh): keep that one.
    userPathEnv = existsSync(path.join(REPO_ROOT, '.tools/node_modules/.bin/node')) ? '/usr/bin:/bin' : `${path.dirname(process.execPath)}:/usr/bin:/bin`;
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
  });

  it('answers --version from any folder, with the project\'s Node', async () => {
    const r = await run(shim, ['--version'], { cwd: elsewhere, env: { PATH: userPathEnv } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version.version);
  });

  it('linking again is a no-op, and a link into another clone is left alone', async () => {
    const again = spawnSync('sh', [path.join(REPO_ROOT, 'scripts/link-command.sh')], { env: { ...process.env, HOME: home, SEGSYNC_BIN_DIR: '', PATH: `${path.join(home, '.local/bin')}:/usr/bin:/bin` }, encoding: 'utf8' });
    assert.equal(again.status, 0);
    assert.match(again.stderr, /the segsync command is .*\.local\/bin\/segsync$/m);
    const otherBin = await mkdtemp(path.join(tmpdir(), 'segsync-bin-'));
    try {
      spawnSync('ln', ['-s', '/bin/true', path.join(otherBin, 'segsync')]);
      const kept = spawnSync('sh', [path.join(REPO_ROOT, 'scripts/link-command.sh')], { env: { ...process.env, SEGSYNC_BIN_DIR: otherBin }, encoding: 'utf8' });
      assert.match(kept.stderr, /another clone.*left as it is/);
      assert.equal(readlinkSync(path.join(otherBin, 'segsync')), '/bin/true');
    } finally {
      await rm(otherBin, { recursive: true, force: true });
    }
  });

  it('on an old Node says what to do instead of a stack trace (exit 2)', async (t) => {
    assert.equal(nodeProblem('24.1.0', '/x'), null);
    assert.match(nodeProblem('20.20.2', '/x') ?? '', /needs Node 24 \(this is Node 20\.20\.2\)[\s\S]*npm start/);
    assert.equal(version.engines.node, '>=24', 'one Node version story: engines says the same as bin/node-check.js');
    const old = oldNode();
    if (!old) return t.skip('no Node older than 24 on this machine to try the entry point with');
    const r = await run(old, [path.join(REPO_ROOT, 'bin/segsync.js'), '--version'], { cwd: elsewhere });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /segsync needs Node 24/);
    assert.doesNotMatch(r.stderr, /SyntaxError|ERR_|\n\s+at /);
  });

  it('usage errors exit 2 (commander\'s too), --help exits 0', async () => {
    const unknownOption = await run(shim, ['runs', '--no-such-flag'], { cwd: elsewhere, env: { PATH: userPathEnv } });
    assert.equal(unknownOption.code, 2, unknownOption.stderr);
    assert.match(unknownOption.stderr, /unknown option '--no-such-flag'/);
    const unknownCommand = await run(shim, ['frobnicate'], { cwd: elsewhere, env: { PATH: userPathEnv } });
    assert.equal(unknownCommand.code, 2);
    const badValue = await run(shim, ['runs', '--limit', 'x'], { cwd: elsewhere, env: { PATH: userPathEnv } });
    assert.equal(badValue.code, 2);
    const help = await run(shim, ['--help'], { cwd: elsewhere, env: { PATH: userPathEnv } });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--project <dir>/);
  });

  describe('--project and SEGSYNC_PROJECT', () => {
    let db: TestDatabase;
    let project: TestProject;
    before(async () => {
      db = await createTestDatabase('segsync_cli_command');
      project = await createProject({ url: db.url });
    });
    after(async () => {
      await project.cleanup();
      await db.drop();
    });

    it('reads the project\'s config and mappings, and the user\'s paths from where the user is', async () => {
      await writeFile(path.join(elsewhere, 'pay.csv'), 'user_id,payment_id,payment_date,payment_amount\nu1,p1,2024-01-02,10.5\nu2,p2,2024-01-03,x\n');
      const r = await run(shim, ['--project', project.dir, 'load', 'payments', 'pay.csv', '--rejects', 'bad.csv'], { cwd: elsewhere, env: { PATH: userPathEnv } });
      assert.equal(r.code, 3, r.stderr); // one row rejected
      assert.match(r.stdout, /loaded \(new\)\s+1/);
      assert.ok(existsSync(path.join(elsewhere, 'bad.csv')), 'the reject file is where the user asked, relative to the working directory');
      const { rows } = await project.app((app) => app.warehouse.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.fact_payments'));
      assert.equal(rows[0]!.n, 1, 'the project\'s warehouse got the row');

      const viaEnv = await run(shim, ['validate', '--offline'], { cwd: elsewhere, env: { PATH: userPathEnv, SEGSYNC_PROJECT: project.dir } });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
      assert.match(viaEnv.stdout, /ok/);
      assert.ok(!existsSync(path.join(elsewhere, '.segsync')), 'nothing is created in the working directory');
    });

    it('a missing project folder is a usage error naming it', async () => {
      const r = await run(shim, ['--project', 'no/such/dir', 'runs'], { cwd: elsewhere, env: { PATH: userPathEnv } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--project no\/such\/dir: no such folder/);
    });
  });
});
