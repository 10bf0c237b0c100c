import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadProject } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { syncEngine } from '../src/daemon/sync-adapter.ts';
import type { Warehouse } from '../src/db/warehouse.ts';
import { listGroups } from '../src/state/alerts.ts';
import { startReceiver } from './helpers/alert-receivers.ts';
import { testLog, useFreshWarehouse } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The daemon runs the dispatcher: real engine, real PostgreSQL, a Slack receiver on 127.0.0.1. A stale model
 * blocks a mapping every second; people hear of the stale model once (its dependents' blocks are inhibited),
 * a reload with a bad alerts block is rejected while the old channels keep working, and stop ends it all.
 */

let warehouse: Warehouse;
let project: TestProject;
let url: string;

useFreshWarehouse('postgres', async (w, where) => {
  warehouse = w;
  url = where.url!;
  project = await createProject({ url });
  await seedSegments(warehouse.pool, 4);
});
after(() => project.cleanup());

const settings = (alerts: string) => `warehouse: {url: '${url}'}\npublic_url: https://segsync.example.com/\nconnections:\n  files: {type: file, directory: '${project.outDir}'}\ndaemon: {port: 0, host: 127.0.0.1, drain_timeout: 10s}\nalerts:\n  group_wait: 200ms\n  group_interval: 1h\n  tick: 50ms\n${alerts}`;

test('the daemon alerts once for a stale model (its blocks inhibited), keeps its channels over a rejected reload, and stops cleanly', async () => {
  const slack = await startReceiver();
  process.env.SEGSYNC_TEST_SLACK_URL = `${slack.url}/services/x`;
  await project.write('config/segsync.yaml', settings('  channels:\n    ops: { type: slack, url: "${SEGSYNC_TEST_SLACK_URL}", rate_per_second: 20 }\n  routes:\n    - channels: [ops]\n'));
  await project.write('mappings/gated.yaml', FILE_MAPPING({ name: 'gated', extra: 'schedule: "* * * * * *"\nafter: [models]\nmax_staleness: 1h' }));
  const load = () => loadProject({ root: project.dir });
  const daemon = new Daemon({ app: { config: await load(), warehouse, log: testLog }, engine: syncEngine, loadConfig: load });
  await daemon.start();
  try {
    await waitFor('the stale model alerted', () => slack.requests.length >= 1, 20_000);
    assert.match(slack.requests[0]!.json.text, /model stale on segments/);
    assert.match(slack.requests[0]!.json.text, /mappings that depend on it are blocked/);
    await waitFor('the block inhibited by it', async () => {
      const groups = await listGroups(warehouse.pool, 'segsync');
      const stale = groups.find((g) => g.kind === 'model_stale');
      return groups.some((g) => g.kind === 'blocked' && g.heldBy === `inhibited by group #${stale?.id}`);
    }, 20_000);
    assert.equal(slack.requests.length, 1, 'one message, not one per blocked tick or per mapping');

    await project.write('config/segsync.yaml', settings('  channels:\n    ops: { type: slack, url: "${SEGSYNC_TEST_UNSET_ALERT_URL}" }\n  routes:\n    - channels: [ops]\n'));
    assert.equal(await daemon.reload(), false, 'a missing secret rejects the reload');
    await waitFor('the rejection alerted through the channel still in force', () => slack.requests.some((r) => /config rejected/.test(r.json.text)), 20_000);
    const rejected = slack.requests.find((r) => /config rejected/.test(r.json.text))!;
    assert.match(rejected.json.text, /SEGSYNC_TEST_UNSET_ALERT_URL is not set/);
    assert.match(rejected.json.text, /segsync\.yaml:\d+/);
  } finally {
    assert.equal(await daemon.stop(), true);
    delete process.env.SEGSYNC_TEST_SLACK_URL;
  }
  await slack.close();
});
