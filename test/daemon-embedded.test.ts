import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { spawnDaemon } from './helpers/daemon-process.ts';
import { committedRecords } from './helpers/files.ts';
import { createProject, FILE_MAPPING, seedSegments } from './helpers/project.ts';

test('embedded PGlite: the daemon runs a schedule on the one connection, answers /readyz and stops cleanly', async () => {
  const project = await createProject();
  await project.write('mappings/m.yaml', FILE_MAPPING({ extra: 'schedule: "*/2 * * * * *"\nbatch_size: 5' }));
  try {
    await project.app(async (app) => seedSegments(app.warehouse.pool, 12));
    const d = await spawnDaemon(project.dir, ['--data-dir', path.join(project.dir, '.segsync/pgdata')]);
    await d.waitForLog((l) => l.msg === 'run finished' && l.status === 'succeeded');
    const ready = await fetch(`http://127.0.0.1:${d.port}/readyz`);
    assert.equal(ready.status, 200);
    d.child.kill('SIGTERM');
    assert.equal((await d.exited()).code, 0);
    assert.equal((await committedRecords(path.join(project.outDir, 'seg-to-file'))).length, 12);
    // The data folder was released: the CLI can open it again.
    const again = await project.cli(['run', 'seg-to-file']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /12 unchanged/);
  } finally {
    await project.cleanup();
  }
});
