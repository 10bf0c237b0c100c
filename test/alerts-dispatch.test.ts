import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/app.ts';
import { AlertDispatcher, quietHoursEnd } from '../src/alerts/dispatcher.ts';
import { Alerts } from '../src/config/alerts.ts';
import type { ProjectConfig } from '../src/config/load.ts';
import { cliActor, daemonActor } from '../src/state/actor.ts';
import { registry } from '../src/metrics.ts';
import { addSilence, expireSilence, insertTestDelivery, listDeliveries, listGroups } from '../src/state/alerts.ts';
import { createRun } from '../src/state/create-run.ts';
import { insertEvent, type EventInput } from '../src/state/events.ts';
import { migrate } from '../src/state/migrate.ts';
import { transition } from '../src/state/transition.ts';
import { startReceiver } from './helpers/alert-receivers.ts';
import { createTestDatabase, testLog, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, type TestProject } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

const S = 'segsync';

interface Setup {
  config: ProjectConfig;
  pools: pg.Pool[];
  replicas: AlertDispatcher[];
  event(ev: Partial<EventInput>): Promise<number>;
  /** One tick of every replica at once, and their sends finished. */
  tick(): Promise<void>;
  succeed(mapping: string): Promise<number>;
  close(): Promise<void>;
}

let db: TestDatabase;
let project: TestProject;
before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  await project.write('mappings/crm.yaml', FILE_MAPPING({ name: 'crm' }));
});
after(async () => {
  await project.cleanup();
  await db.drop();
});

/** A fresh state schema's alert tables, the config with `alertsYaml`, and `n` dispatchers on their own pools (replicas). */
async function setup(alertsYaml: string, env: Record<string, string>, n = 2): Promise<Setup> {
  await project.write('config/segsync.yaml', `warehouse:\n  url: ${db.url}\npublic_url: https://segsync.example.com\nconnections:\n  files:\n    type: file\n    directory: ${project.outDir}\nalerts:\n${alertsYaml}`);
  const config = await loadConfig({ root: project.dir, env: { ...process.env, ...env } });
  const admin = new pg.Pool({ connectionString: db.url, max: 2 });
  await admin.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
  await migrate(admin, S);
  const pools = [admin, ...Array.from({ length: n - 1 }, () => new pg.Pool({ connectionString: db.url, max: 4 }))];
  const replicas = pools.map((pool) => new AlertDispatcher({ pool, schema: S, config: () => config, log: testLog }));
  return {
    config, pools, replicas,
    event: (ev) => insertEvent(admin, S, { kind: 'run_failed', severity: 'error', mapping: 'crm', message: 'crm run failed: 2 failed', ...ev }),
    async tick() {
      await Promise.all(replicas.map((r) => r.tick()));
      await Promise.all(replicas.map((r) => r.settle()));
    },
    async succeed(mapping) {
      const actor = daemonActor('schedule');
      const id = await createRun(admin, S, { mapping, actor, configHash: 'x', destination: 'files', status: 'planning' });
      await transition(admin, S, { run: id }, 'planned', actor, null, { planned: {} });
      await transition(admin, S, { run: id }, 'delivering', actor, null);
      await transition(admin, S, { run: id }, 'succeeded', actor, null, { outcome: {} });
      return id;
    },
    async close() {
      for (const r of replicas) await r.stop();
      for (const p of pools) await p.end();
    },
  };
}

const FAST = `  group_wait: 100ms\n  group_interval: 300ms\n  tick: 20ms\n  retry: { base: 50ms, max: 200ms }\n`;

describe('alert dispatcher on one database', () => {
  test('two replicas: exactly one notification per group, each event folded once', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops:\n      type: slack\n      url: \${SLACK_URL}\n      rate_per_second: 100\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: `${slack.url}/hook` }, 3);
    try {
      await s.event({ mapping: 'crm', severity: 'critical', message: 'crm failed #0' });
      for (let i = 1; i < 5; i++) await s.event({ mapping: 'crm', severity: 'warning', message: `crm failed #${i}` });
      for (let i = 0; i < 3; i++) await s.event({ mapping: 'billing', kind: 'blocked', message: `billing blocked #${i}` });
      await waitFor('two groups notified', async () => { await s.tick(); return slack.requests.length >= 2; });
      for (let i = 0; i < 10; i++) await s.tick();
      assert.equal(slack.requests.length, 2, 'one message per group across three replicas');
      const groups = await listGroups(s.pools[0]!, S);
      assert.deepEqual(groups.map((g) => [g.key, g.events, g.notifications]).sort(), [['blocked|billing', 3, 1], ['run_failed|crm', 5, 1]]);
      const crm = slack.requests.map((r) => r.json).find((j) => /crm/.test(j.text));
      assert.match(crm.text, /crm failed #4/, 'the latest message');
      assert.match(crm.text, /^CRITICAL: /, 'the group keeps its highest severity');
      assert.equal(groups.find((g) => g.mapping === 'crm')!.labels.severity, 'critical', 'and routes see it');
      assert.match(crm.text, /5 events/);
      assert.match(crm.text, /Mapping: crm/);
      assert.match(crm.text, /https:\/\/segsync\.example\.com\/mappings\/crm/);
      assert.equal((await s.pools[0]!.query(`SELECT count(*)::int AS n FROM ${S}.alert_ingested`)).rows[0].n, 8);
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('a restart keeps the repeat timer (repeat per severity): nothing is resent early, the repeat comes when due', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  repeat_interval: 4h\n  repeat_by_severity: { error: 1500ms }\n  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url }, 1);
    try {
      await s.event({ runId: 7 });
      await waitFor('first notification', async () => { await s.tick(); return slack.requests.length === 1; });
      const [before] = await listGroups(s.pools[0]!, S);
      await s.replicas[0]!.stop();
      // The restarted process: a new dispatcher on a new pool.
      const pool = new pg.Pool({ connectionString: db.url, max: 4 });
      const again = new AlertDispatcher({ pool, schema: S, config: () => s.config, log: testLog });
      try {
        for (let i = 0; i < 5; i++) { await again.tick(); await again.settle(); }
        const [afterRestart] = await listGroups(pool, S);
        assert.equal(slack.requests.length, 1, 'no resend at restart');
        assert.equal(afterRestart!.nextAt!.getTime(), before!.nextAt!.getTime(), 'the timer is where it was');
        await waitFor('the repeat', async () => { await again.tick(); await again.settle(); return slack.requests.length === 2; });
        assert.equal(before!.nextAt!.getTime() - before!.notifiedAt!.getTime(), 1500, 'repeat_by_severity.error, not repeat_interval');
        assert.ok(slack.requests[1]!.at >= before!.nextAt!.getTime() - 5, `repeat ${before!.nextAt!.getTime() - slack.requests[1]!.at} ms before its timer`);
        assert.match(slack.requests[1]!.json.text, /still firing/);
        assert.match(slack.requests[1]!.json.text, /https:\/\/segsync\.example\.com\/runs\/7/);
      } finally {
        await again.stop();
        await pool.end();
      }
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('resolve: once per channel when a later run succeeds; PagerDuty resolves the dedup_key it triggered; a new failure is a new incident', async () => {
    const slack = await startReceiver();
    const pd = await startReceiver({ reply: (r, _n, res) => { res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', dedup_key: r.json.dedup_key })); return true; } });
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n    pager: { type: pagerduty, routing_key: "\${PD_KEY}", api_url: "\${PD_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n    - match: ["severity=~error|critical"]\n      channels: [pager]\n`, { SLACK_URL: slack.url, PD_URL: pd.url, PD_KEY: 'rk-1' });
    try {
      await s.event({});
      await waitFor('triggered', async () => { await s.tick(); return slack.requests.length === 1 && pd.requests.length === 1; });
      await s.succeed('crm');
      await waitFor('resolved', async () => { await s.tick(); return slack.requests.length === 2 && pd.requests.length === 2; });
      for (let i = 0; i < 8; i++) await s.tick();
      assert.equal(slack.requests.length, 2, 'one resolve notice');
      assert.equal(pd.requests.length, 2);
      assert.equal(pd.requests[0]!.json.event_action, 'trigger');
      assert.deepEqual(pd.requests[1]!.json, { routing_key: 'rk-1', event_action: 'resolve', dedup_key: pd.requests[0]!.json.dedup_key });
      assert.match(slack.requests[1]!.json.text, /^Resolved: run failed on crm/);
      assert.match(slack.requests[1]!.json.text, /Cleared: run \d+ of crm succeeded/);
      await s.event({ message: 'failed again' });
      await waitFor('a new incident', async () => { await s.tick(); return pd.requests.length === 3; });
      assert.equal(pd.requests[2]!.json.event_action, 'trigger');
      assert.notEqual(pd.requests[2]!.json.dedup_key, pd.requests[0]!.json.dedup_key);
    } finally {
      await s.close();
      await slack.close();
      await pd.close();
    }
  });

  test('a held run: the message links to the held plan; approving it resolves the incident once', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - match: ["kind=run_held"]\n      channels: [ops]\n`, { SLACK_URL: slack.url }, 2);
    try {
      const admin = s.pools[0]!;
      const runId = await createRun(admin, S, { mapping: 'crm', actor: daemonActor('schedule'), configHash: 'x', destination: 'files', status: 'planning' });
      await transition(admin, S, { run: runId }, 'held', daemonActor('schedule'), 'removed: 60% would be removed', { planned: {} });
      await s.event({ kind: 'run_held', severity: 'warning', runId, message: `crm run ${runId} held for approval: removed: 60% would be removed` });
      await waitFor('held run notified', async () => { await s.tick(); return slack.requests.length === 1; });
      const button = slack.requests[0]!.json.blocks.find((b: any) => b.type === 'actions').elements[0];
      assert.equal(button.url, `https://segsync.example.com/runs/${runId}`);
      assert.match(slack.requests[0]!.json.text, /held for approval/);
      for (let i = 0; i < 3; i++) await s.tick();
      assert.equal(slack.requests.length, 1, 'still held: no resolve');
      await transition(admin, S, { run: runId }, 'approved', cliActor(), 'looked fine');
      await waitFor('resolved', async () => { await s.tick(); return slack.requests.length === 2; });
      for (let i = 0; i < 5; i++) await s.tick();
      assert.equal(slack.requests.length, 2);
      assert.match(slack.requests[1]!.json.text, new RegExp(`Cleared: run ${runId} is approved, no longer held`));
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('a monitor resolves when it recovers, a rejected reload when a later one is applied', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url });
    try {
      await s.event({ kind: 'monitor', severity: 'critical', mapping: null, message: 'monitor latency is critical: newest payment 3d old', details: { monitor: 'latency' } });
      await s.event({ kind: 'config_rejected', severity: 'error', mapping: null, message: 'configuration reload rejected' });
      await waitFor('both notified', async () => { await s.tick(); return slack.requests.length === 2; });
      assert.ok(slack.requests.some((r) => /^CRITICAL: monitor on latency/.test(r.json.text)));
      await s.event({ kind: 'monitor_recovered', severity: 'info', mapping: null, message: 'monitor latency recovered', details: { monitor: 'latency' } });
      await s.event({ kind: 'config_reloaded', severity: 'info', mapping: null, message: 'configuration reloaded' });
      await waitFor('both resolved', async () => { await s.tick(); return slack.requests.length === 4; });
      for (let i = 0; i < 5; i++) await s.tick();
      assert.equal(slack.requests.length, 4, 'the resolver events are no alerts of their own');
      const resolved = slack.requests.slice(2).map((r) => r.json.text.split('\n')[0]).sort();
      assert.deepEqual(resolved, ['Resolved: config rejected on segsync', 'Resolved: monitor on latency']);
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('a 429 from Slack with Retry-After: the next attempt waits that long, and the rate limit uses up no attempt', async () => {
    const slack = await startReceiver({ reply: (_r, n, res) => { if (n > 1) return false; res.writeHead(429, { 'retry-after': '1' }).end('rate_limited'); return true; } });
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100, max_attempts: 1 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url });
    try {
      await s.event({});
      await waitFor('sent after the 429', async () => { await s.tick(); return slack.requests.length === 2; });
      const gap = slack.requests[1]!.at - slack.requests[0]!.at;
      assert.ok(gap >= 950, `second attempt ${gap} ms after the 429`);
      const [d] = await listDeliveries(s.pools[0]!, S, { channel: 'ops' });
      await waitFor('recorded sent', async () => (await listDeliveries(s.pools[0]!, S, { channel: 'ops' }))[0]!.status === 'sent');
      assert.equal(d!.attempts, 1, 'max_attempts 1 and still sent: the 429 did not count');
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('the channel rate is shared by the replicas: a token bucket of 5/s, depth 1, spaces sends 200 ms apart on average', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 5, burst: 1 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url });
    try {
      for (const m of ['a', 'b', 'c', 'd']) await s.event({ mapping: m });
      await waitFor('four groups sent', async () => { await s.tick(); return slack.requests.length === 4; });
      // Arrival times carry the senders' jitter; the span of four sends cannot be shorter than three tokens.
      const span = slack.requests[3]!.at - slack.requests[0]!.at;
      assert.ok(span >= 3 * 200 * 0.9, `four sends within ${span} ms`);
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('a silence holds its groups until it is expired; other groups go out', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url });
    try {
      const silence = await addSilence(s.pools[0]!, S, { matchers: ['mapping=crm', 'kind=~run_.*'], forMs: 3_600_000, author: 'cli:alice@host', comment: 'CRM maintenance' });
      await s.event({});
      await s.event({ mapping: 'billing' });
      await waitFor('billing notified, crm held by the silence', async () => {
        await s.tick();
        const crm = (await listGroups(s.pools[0]!, S)).find((g) => g.mapping === 'crm');
        return slack.requests.length === 1 && crm?.heldBy === `silence #${silence.id}`;
      });
      for (let i = 0; i < 5; i++) await s.tick();
      assert.equal(slack.requests.length, 1);
      assert.match(slack.requests[0]!.json.text, /billing/);
      assert.equal(await expireSilence(s.pools[0]!, S, silence.id, 'cli:alice@host'), true);
      await waitFor('crm notified after the silence ended', async () => { await s.tick(); return slack.requests.length === 2; });
      assert.match(slack.requests[1]!.json.text, /Mapping: crm/);
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('a failing channel and a hanging one block neither the others nor each other; failures end visible as failed', async () => {
    const slack = await startReceiver();
    const hook = await startReceiver({ okStatus: 500, okBody: 'boom' });
    const hang = await startReceiver({ reply: () => true });
    const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n    hook: { type: webhook, url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}", rate_per_second: 100, max_attempts: 2 }\n    teams: { type: teams, url: "\${TEAMS_URL}", timeout: 30s }\n  routes:\n    - channels: [teams, hook, ops]\n`, { SLACK_URL: slack.url, HOOK_URL: hook.url, HOOK_SECRET: secret, TEAMS_URL: hang.url }, 1);
    const r = s.replicas[0]!;
    try {
      await s.event({});
      await waitFor('slack sent and the webhook failed for good while teams hangs', async () => {
        await r.tick();
        const hookD = (await listDeliveries(s.pools[0]!, S, { channel: 'hook' }))[0];
        return slack.requests.length === 1 && hookD?.status === 'failed' && hang.requests.length === 1;
      });
      const [hd] = await listDeliveries(s.pools[0]!, S, { channel: 'hook' });
      assert.equal(hd!.attempts, 2);
      assert.equal(hook.requests.length, 2);
      assert.match(hd!.lastError!, /webhook: HTTP 500: boom/);
      const counted = (await registry.getSingleMetric('segsync_alert_deliveries_total')!.get()).values;
      const n = (outcome: string) => counted.filter((v) => v.labels.channel === 'hook' && v.labels.outcome === outcome).reduce((a, v) => a + v.value, 0);
      assert.equal(n('retry'), 1);
      assert.equal(n('failed'), 1);
      assert.equal((await listDeliveries(s.pools[0]!, S, { channel: 'teams' }))[0]!.status, 'sending');
    } finally {
      await hang.close();
      await s.close();
      await slack.close();
      await hook.close();
    }
  });

  test('a delivery left for a channel a reload removed is marked failed, not left pending', async () => {
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "https://hooks.example.com/x" }\n`, {}, 1);
    try {
      const id = await insertTestDelivery(s.pools[0]!, S, 'gone', { action: 'test' });
      await s.tick();
      const d = (await listDeliveries(s.pools[0]!, S)).find((x) => x.id === id)!;
      assert.equal(d.status, 'failed');
      assert.equal(d.lastError, 'channel gone is no longer configured');
    } finally {
      await s.close();
    }
  });

  test('inhibition: a destination down is sent once and holds back the run failure it causes; both clear with the next successful run', async () => {
    const slack = await startReceiver();
    const s = await setup(`${FAST}  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url });
    try {
      await s.event({ message: 'crm failed to run: connect ECONNREFUSED', details: { code: 'NETWORK' } });
      await waitFor('destination_down sent, run_failed inhibited', async () => {
        await s.tick();
        const groups = await listGroups(s.pools[0]!, S);
        const down = groups.find((g) => g.kind === 'destination_down');
        const failed = groups.find((g) => g.kind === 'run_failed');
        return slack.requests.length === 1 && down !== undefined && failed?.heldBy === `inhibited by group #${down.id}`;
      });
      assert.match(slack.requests[0]!.json.text, /destination down on files/);
      await s.succeed('crm');
      await waitFor('both closed', async () => { await s.tick(); return (await listGroups(s.pools[0]!, S)).every((g) => g.state === 'closed'); });
      await s.tick();
      assert.equal(slack.requests.length, 2, 'one resolve (the inhibited failure was never sent, so nothing to resolve)');
      assert.match(slack.requests[1]!.json.text, /^Resolved: destination down on files/);
    } finally {
      await s.close();
      await slack.close();
    }
  });

  test('quiet hours hold the severities they name until they end; others go out', async () => {
    const slack = await startReceiver();
    const hm = (d: Date) => d.toISOString().slice(11, 16);
    const now = Date.now();
    const s = await setup(`${FAST}  quiet_hours:\n    - { severities: [warning], from: "${hm(new Date(now - 3_600_000))}", to: "${hm(new Date(now + 3_600_000))}", timezone: UTC }\n  channels:\n    ops: { type: slack, url: "\${SLACK_URL}", rate_per_second: 100 }\n  routes:\n    - channels: [ops]\n`, { SLACK_URL: slack.url }, 1);
    try {
      await s.event({ kind: 'run_partial', severity: 'warning', message: 'crm partial' });
      await s.event({ mapping: 'billing', severity: 'error', message: 'billing failed' });
      await waitFor('error sent, warning held', async () => {
        await s.tick();
        const crm = (await listGroups(s.pools[0]!, S)).find((g) => g.mapping === 'crm');
        return slack.requests.length === 1 && /^quiet hours until /.test(crm?.heldBy ?? '');
      });
      const crm = (await listGroups(s.pools[0]!, S)).find((g) => g.mapping === 'crm')!;
      assert.ok(Math.abs(crm.nextAt!.getTime() - (now + 3_600_000)) < 120_000, 'held until the window ends');
      assert.match(slack.requests[0]!.json.text, /billing failed/);
    } finally {
      await s.close();
      await slack.close();
    }
  });
});

test('quietHoursEnd: a window over midnight, in the given time zone', () => {
  const a = Alerts.parse({ quiet_hours: [{ severities: ['info', 'warning'], from: '22:00', to: '07:00', timezone: 'Europe/Berlin' }] });
  // 23:30 in Berlin (UTC+1 in December) = 22:30Z: quiet until 07:00 Berlin = 06:00Z.
  assert.equal(quietHoursEnd(a, 'warning', new Date('2026-12-02T22:30:00Z'), 'UTC')?.toISOString(), '2026-12-03T06:00:00.000Z');
  assert.equal(quietHoursEnd(a, 'critical', new Date('2026-12-02T22:30:00Z'), 'UTC'), null);
  assert.equal(quietHoursEnd(a, 'warning', new Date('2026-12-02T12:00:00Z'), 'UTC'), null);
});
