import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

test('file destination: a run that fails before sending, or a check, leaves no output folder; the first delivery creates it', async () => {
  await withMappingProject(FILE_MAPPING().replace('from: recency_score', 'from: no_such_column'), async (project) => {
    await project.app((app) => seedSegments(app.warehouse.pool, 2));
    const failed = await project.cli(['run', 'seg-to-file']);
    assert.notEqual(failed.code, 0);
    assert.equal(existsSync(path.join(project.outDir, 'seg-to-file')), false, 'nothing was sent, so no folder');
    assert.equal(existsSync(project.outDir), false);
    await project.write('mappings/m.yaml', FILE_MAPPING());
    // The destination check (validate, and a run's pre-flight) checks the folder could be written; it does not create it.
    const checked = await project.cli(['validate', 'seg-to-file']);
    assert.equal(checked.code, 0, checked.stderr);
    assert.equal(existsSync(project.outDir), false, 'validate created no folder');
    const ok = await project.cli(['run', 'seg-to-file']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(path.join(project.outDir, 'seg-to-file')));
  });
});
