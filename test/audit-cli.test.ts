import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

/** The audit trail through the real CLI: runs, config changes, tokens audited; verify, checkpoints, processing record. */
test('segsync audit: a run and a config change are audited with the diff; verify and a checkpoint file hold, tampering fails verify', async () => {
  const mapping = FILE_MAPPING({ extra: '' }).replace('{ to: rfm_segment, from: rfm_segment }', '{ to: rfm_segment, from: rfm_segment, pii: none }');
  await withMappingProject(mapping, async (project, db) => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await seedSegments(pool, 20);
      const env = { SEGSYNC_PSEUDONYM_KEY: 'cli-test-pseudonym-key-000', FILES_SECRET: 'supersecretvalue' };
      const run = await project.cli(['run', 'seg-to-file'], { env });
      assert.equal(run.code, 0, run.stderr);
      const cpFile = path.join(project.dir, 'cp.txt');
      const cp = await project.cli(['audit', 'checkpoint', '--out', cpFile], { env });
      assert.equal(cp.code, 0, cp.stderr);
      assert.match(await readFile(cpFile, 'utf8'), /^segsync\/[0-9a-f-]{36}\n\d+\n[A-Za-z0-9+/=]+\n\n\u2014 segsync\/[0-9a-f-]{36} [A-Za-z0-9+/=]+\n$/);
      // A config change (with a secret interpolated from the environment) is audited as a diff, the secret masked.
      await project.write('mappings/m.yaml', mapping.replace('throttle_ms: 0', 'throttle_ms: 0\n    api_token: ${FILES_SECRET}').replace('on_removed: keep', 'on_removed: clear'));
      const tok = await project.cli(['tokens', 'create', '--role', 'operator', '--name', 'ci', '--expires', '30d'], { env });
      if (tok.code !== 0) {
        // the file destination may refuse an unknown option: the change still had to be audited before that
        assert.match(tok.stderr, /api_token/);
        await project.write('mappings/m.yaml', mapping.replace('on_removed: keep', 'on_removed: clear'));
        const again = await project.cli(['tokens', 'create', '--role', 'operator', '--name', 'ci', '--expires', '30d'], { env });
        assert.equal(again.code, 0, again.stderr);
      }
      const rows = (await pool.query<{ action: string; entry: string }>(`SELECT action, entry FROM segsync.audit ORDER BY seq`)).rows;
      const actions = rows.map((r) => r.action);
      assert.equal(actions[0], 'config.loaded');
      assert.ok(actions.includes('run.planning') && actions.includes('run.succeeded') && actions.includes('audit.checkpoint') && actions.includes('token.created'), actions.join());
      const changed = rows.filter((r) => r.action === 'config.loaded').at(-1)!;
      const diff = JSON.parse(changed.entry).details.diff as Array<{ path: string; old?: unknown; new?: unknown }>;
      assert.ok(diff.some((d) => d.path === 'mappings.seg-to-file.on_removed' && d.old === 'keep' && d.new === 'clear'), JSON.stringify(diff));
      assert.ok(!rows.some((r) => r.entry.includes('supersecretvalue')));
      const runRow = JSON.parse(rows.find((r) => r.action === 'run.planning')!.entry);
      assert.equal(runRow.actor.type, 'cli');
      const verify = await project.cli(['audit', 'verify', '--checkpoint', cpFile], { env });
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /^ok: \d+ row\(s\) chained, 1 run\(s\)' receipts match, 2 checkpoint\(s\) verify/);
      // An auditor's machine: no keys of its own; it verifies with the public key it was given, and makes none.
      const pub = await project.cli(['audit', 'public-key'], { env });
      await project.write('audit.pub', pub.stdout);
      const elsewhere = { ...env, SEGSYNC_AUDIT_KEY_DIR: path.join(project.dir, 'auditor-keys') };
      const noKey = await project.cli(['audit', 'verify'], { env: elsewhere });
      assert.equal(noKey.code, 2, noKey.stdout + noKey.stderr);
      assert.match(noKey.stderr, /--public-key/);
      const offline = await project.cli(['audit', 'verify', '--public-key', path.join(project.dir, 'audit.pub'), '--checkpoint', cpFile], { env: elsewhere });
      assert.equal(offline.code, 0, offline.stdout + offline.stderr);
      // Tampering with the trigger off: verify names the row and exits 1.
      await pool.query(`ALTER TABLE segsync.audit DISABLE TRIGGER USER; DELETE FROM segsync.audit WHERE seq = 2; ALTER TABLE segsync.audit ENABLE TRIGGER USER`);
      const bad = await project.cli(['audit', 'verify', '--checkpoint', cpFile], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /FAIL deleted: row 2 was deleted/);
      const record = await project.cli(['audit', 'processing-record'], { env });
      assert.equal(record.code, 0, record.stderr);
      assert.match(record.stdout, /# Record of processing activities \(GDPR Article 30\)/);
      assert.match(record.stdout, /\| files \| file \| customers \| seg-to-file \|/);
      const badFlag = await project.cli(['tokens', 'create', '--role', 'operator', '--name', 'x', '--expires', 'soon'], { env });
      assert.equal(badFlag.code, 2);
      assert.match(badFlag.stderr, /--expires/);
    } finally {
      await pool.end();
    }
  });
});
