import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/app.ts';
import { ConfigError } from '../src/errors.ts';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

/** One broken mapping file among good ones: reported, the others go on; validate and a strict load fail on it. */
test('a broken mapping file is reported and left out; plan, run, receipts and run --all go on with the others', async () => {
  await withMappingProject(FILE_MAPPING(), async (project) => {
    await project.write('mappings/broken.yaml', 'name: broken\nsource: [unclosed\n');
    await project.write('mappings/typo.yaml', FILE_MAPPING({ name: 'typo', extra: 'shedule: "0 * * * *"\n' }).replace('match_key:', 'match_kye:'));
    await project.app(async (app) => seedSegments(app.warehouse.pool, 4)).catch((err: unknown) => {
      assert.ok(err instanceof ConfigError, 'the test helper loads strictly: the broken files stop it');
    });
    const strict = await loadConfig({ root: project.dir }).then(() => null, (e: unknown) => e);
    assert.ok(strict instanceof ConfigError, 'a strict load (daemon reload) still fails on the broken file');
    const tolerant = await loadConfig({ root: project.dir, skipBrokenMappings: true });
    assert.deepEqual(tolerant.mappings.map((m) => m.value.name), ['seg-to-file']);
    assert.deepEqual(tolerant.broken.map((b) => [b.name, b.file.split('/').slice(-2).join('/')]), [['broken', 'mappings/broken.yaml'], ['typo', 'mappings/typo.yaml']]);

    // Seed through a project whose only mapping is the good one.
    const { withApp } = await import('../src/app.ts');
    await withApp({ root: project.dir, dataDir: `${project.dir}/.segsync/pgdata`, config: tolerant }, (app) => seedSegments(app.warehouse.pool, 4));

    const plan = await project.cli(['plan', 'seg-to-file']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /plan for seg-to-file \(4 source records\)/);
    assert.match(plan.stderr, /warning: mapping broken \(mappings\/broken\.yaml\) left out: 1 problem\(s\), first: mappings\/broken\.yaml:\d+:\d+: YAML syntax/);
    assert.match(plan.stderr, /warning: mapping typo \(mappings\/typo\.yaml\) left out/);

    const run = await project.cli(['run', 'seg-to-file']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /outcome: 4 delivered, 0 failed/);

    const receipts = await project.cli(['receipts', '--mapping', 'seg-to-file', '--format', 'json']);
    assert.equal(receipts.code, 0, receipts.stderr);
    assert.equal(JSON.parse(receipts.stdout).length, 4);

    const named = await project.cli(['plan', 'typo']);
    assert.equal(named.code, 2, 'the broken mapping itself, named: a config error with its positions');
    assert.match(named.stderr, /mappings\/typo\.yaml:\d+:\d+: unknown key 'shedule'\n\s+hint: 'shedule': did you mean 'schedule'\?/);

    const all = await project.cli(['run', '--all']);
    assert.equal(all.code, 2, all.stdout);
    assert.match(all.stdout, /broken: not run: mappings\/broken\.yaml has 1 problem\(s\)/);
    assert.match(all.stdout, /run \d+ of seg-to-file: succeeded/);
    assert.match(all.stdout, /2 of 3 mapping\(s\) did not succeed: broken \(broken file\), typo \(broken file\)/);
  });
});

test('validate says per mapping what is fine and what is broken, suggests the nearest key, and exits 2', async () => {
  await withMappingProject(FILE_MAPPING(), async (project) => {
    await project.write('mappings/typo.yaml', FILE_MAPPING({ name: 'typo' }).replace('match_key:', 'match_kye:').replace('on_removed:', 'on_remove:'));
    const r = await project.cli(['validate', '--offline']);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /^ok {6}seg-to-file \(mappings\/m\.yaml\): files only$/m);
    assert.match(r.stdout, /^broken {2}typo \(mappings\/typo\.yaml\): 3 problem\(s\) in the file/m);
    assert.match(r.stderr, /mappings\/typo\.yaml:8:3 \(destination\): unknown key 'match_kye'\n\s+hint: 'match_kye': did you mean 'match_key'\?/);
    assert.match(r.stderr, /mappings\/typo\.yaml:\d+:1: unknown key 'on_remove'\n\s+hint: 'on_remove': did you mean 'on_removed'\?/);
    const one = await project.cli(['validate', '--offline', 'seg-to-file']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /ok: 1 mapping\(s\) \(files only\)/);
  });
});

test('a key nothing is near gets the allowed keys; settings typos get "did you mean" too', async () => {
  await withMappingProject(FILE_MAPPING({ extra: 'zzzzzzzz: 1\n' }), async (project) => {
    const r = await project.cli(['validate', '--offline']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown key 'zzzzzzzz'\n\s+hint: allowed here: name, .*source, .*destination/);
    await project.write('config/segsync.yaml', 'warehouse:\n  url: ""\nstat:\n  schema: x\nconnections:\n  files: {type: file, directory: out}\n');
    const s = await project.cli(['validate', '--offline']);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /config\/segsync\.yaml:3:1: unknown key 'stat'\n\s+hint: 'stat': did you mean 'state'\?/);
  });
});
