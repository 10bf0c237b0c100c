import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insertEvent } from '../src/state/events.ts';
import { lastRunId } from '../src/state/cli-lookups.ts';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

test('receipts, runs and events: filters checked, values sent, destination, readable runs, a dry run takes no run id', async () => {
  await withMappingProject(FILE_MAPPING(), async (project) => {
    await project.app((app) => seedSegments(app.warehouse.pool, 4));
    assert.equal((await project.cli(['run', 'seg-to-file'])).code, 0);
    // u0002 and u0004 move from Champions to At Risk.
    await project.app((app) => seedSegments(app.warehouse.pool, 4, () => 'At Risk'));

    const before = await project.app((app) => lastRunId(app.warehouse.pool, 'segsync'));
    const plan = await project.cli(['plan', 'seg-to-file']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(await project.app((app) => lastRunId(app.warehouse.pool, 'segsync')), before, 'a dry-run plan takes no run id');
    const second = await project.cli(['run', 'seg-to-file']);
    assert.match(second.stdout, new RegExp(`^run ${before + 1} of seg-to-file: succeeded`), 'the next run id follows the last real run');

    // Filter values are checked and name the allowed ones (exit 2), never an empty "(none)".
    const typo = await project.cli(['receipts', '--status', 'fialed']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--status 'fialed' is not one of: delivered, failed, deferred, interrupted, in_doubt\n\s+hint: did you mean 'failed'\?/);
    const unknownMapping = await project.cli(['receipts', '--mapping', 'seg-to-fil']);
    assert.equal(unknownMapping.code, 2);
    assert.match(unknownMapping.stderr, /no mapping named 'seg-to-fil'\n\s+hint: did you mean 'seg-to-file'\? mappings: seg-to-file/);
    const unknownRun = await project.cli(['receipts', '--run', '999']);
    assert.equal(unknownRun.code, 2);
    assert.match(unknownRun.stderr, /no run 999/);
    assert.equal((await project.cli(['receipts', '--since', 'yesterday'])).code, 2);
    assert.equal((await project.cli(['receipts', '--since', '2030-01-02', '--until', '2030-01-01'])).code, 2);
    assert.equal((await project.cli(['receipts', '--op', 'upsert'])).code, 2);

    // Values sent, before -> after, and the destination (connection/object).
    const updates = await project.cli(['receipts', '--mapping', 'seg-to-file', '--op', 'update']);
    assert.equal(updates.code, 0, updates.stderr);
    const lines = updates.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2 + 2, updates.stdout);
    assert.match(lines[0]!, /run_id\s+mapping\s+destination\s+key\s+op\s+status\s+sent/);
    assert.match(updates.stdout, /files\/customers\s+u0004\s+update\s+delivered\s+rfm_segment: Champions -> At Risk/);
    const creates = await project.cli(['receipts', '--op', 'create', '--format', 'json']);
    const created = JSON.parse(creates.stdout) as Array<Record<string, unknown>>;
    assert.equal(created.length, 4);
    assert.deepEqual([created[0]!.connection, created[0]!.object], ['files', 'customers']);
    assert.equal((created.find((r) => r.key === 'u0001')!.after as Record<string, unknown>).rfm_segment, 'At Risk');
    const none = await project.cli(['receipts', '--since', '2099-01-01']);
    assert.equal(none.stdout, '(none)\n');
    const window = await project.cli(['receipts', '--since', '2000-01-01', '--until', '2099-01-01', '--format', 'json']);
    assert.equal(JSON.parse(window.stdout).length, 6);

    // runs: formats, readable counts, destination, host:pid, config hash; one line per run whatever the error.
    await project.app((app) => app.warehouse.pool.query(`UPDATE segsync.runs SET error = 'first line\nsecond line' WHERE id = $1`, [before]));
    const runs = await project.cli(['runs']);
    assert.equal(runs.code, 0, runs.stderr);
    const runLines = runs.stdout.trimEnd().split('\n');
    assert.equal(runLines.length, 2 + 2, runs.stdout);
    assert.match(runs.stdout, /seg-to-file\s+files\s+succeeded\s+4 create, 0 update, 0 remove\s+4 delivered, 0 failed/);
    assert.match(runs.stdout, /0 create, 2 update, 0 remove, 2 unchanged\s+2 delivered, 0 failed/);
    assert.match(runs.stdout, /first line \/ second line/);
    assert.match(runs.stdout, /\S+:\d+\s+[0-9a-f]{12}/, 'host:pid and the config hash');
    const json = JSON.parse((await project.cli(['runs', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    assert.equal(json.length, 2);
    assert.equal(json[0]!.destination, 'files');
    assert.equal(typeof json[0]!.pid, 'number');
    assert.match(String(json[0]!.config_hash), /^[0-9a-f]{64}$/);
    assert.equal((await project.cli(['runs', '--format', 'yaml'])).code, 2);
    const badStatus = await project.cli(['runs', '--status', 'succeded']);
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /did you mean 'succeeded'/);
    assert.equal((await project.cli(['runs', '--mapping', 'nope'])).code, 2);
    assert.equal(JSON.parse((await project.cli(['runs', '--status', 'failed,held', '--format', 'json'])).stdout).length, 0);

    // events
    await project.app((app) => insertEvent(app.warehouse.pool, 'segsync', { kind: 'sla_breach', severity: 'error', mapping: 'seg-to-file', message: 'late for ann@example.com\nsecond line' }));
    const events = await project.cli(['events']);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /error\s+sla_breach\s+seg-to-file\s+late for a\*\*\*@e\*\*\*\.com \/ second line/);
    assert.doesNotMatch(events.stdout, /ann@example\.com/);
    assert.equal(JSON.parse((await project.cli(['events', '--severity', 'info', '--format', 'json'])).stdout).length, 0);
    const badKind = await project.cli(['events', '--kind', 'sla_brech']);
    assert.equal(badKind.code, 2);
    assert.match(badKind.stderr, /did you mean 'sla_breach'\? kinds recorded: sla_breach/);
    assert.equal((await project.cli(['events', '--severity', 'fatal'])).code, 2);
  });
});
