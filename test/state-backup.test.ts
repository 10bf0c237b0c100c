import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createProject, FILE_MAPPING, seedSegments } from './helpers/project.ts';

test('state export/import: the embedded ledger survives a lost .segsync; an existing one is replaced only when asked, and kept aside', async () => {
  const project = await createProject(); // the embedded database under the project's .segsync/pgdata
  try {
    await project.write('mappings/m.yaml', FILE_MAPPING());
    await project.app((app) => seedSegments(app.warehouse.pool, 3));
    const first = await project.cli(['run', 'seg-to-file']);
    assert.match(first.stdout, /outcome: 3 delivered/);

    const exported = await project.cli(['state', 'export', 'backup.tgz']);
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok(existsSync(path.join(project.dir, 'backup.tgz')));

    const refused = await project.cli(['state', 'import', 'backup.tgz']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /already at .*pgdata: importing would replace its ledger\n\s+hint: pass --replace/);

    await rm(path.join(project.dir, '.segsync/pgdata'), { recursive: true, force: true });
    const restored = await project.cli(['state', 'import', 'backup.tgz']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /restored backup\.tgz: 1 run\(s\), 3 receipt\(s\)/);
    const again = await project.cli(['run', 'seg-to-file']);
    assert.match(again.stdout, /planned: 0 create, 0 update, 0 remove, 3 unchanged/, 'the delivered state came back: nothing is re-created');

    const replaced = await project.cli(['state', 'import', 'backup.tgz', '--replace']);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(replaced.stdout, /the previous database is kept at .*pgdata\.before-import-/);
    assert.ok(readdirSync(path.join(project.dir, '.segsync')).some((f) => f.startsWith('pgdata.before-import-')));
    const runs = JSON.parse((await project.cli(['runs', '--format', 'json'])).stdout) as unknown[];
    assert.equal(runs.length, 1, 'the backup (one run) replaced the database with two');

    assert.equal((await project.cli(['state', 'import', 'missing.tgz'])).code, 2);
  } finally {
    await project.cleanup();
  }
});
