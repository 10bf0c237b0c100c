import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ConfigError } from '../src/errors.ts';
import { loadConfig } from '../src/app.ts';
import { insertEvent } from '../src/state/events.ts';
import { startReceiver } from './helpers/alert-receivers.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, type TestProject } from './helpers/project.ts';

let db: TestDatabase;
let project: TestProject;
let slack: Awaited<ReturnType<typeof startReceiver>>;

const settings = (url: string, alerts: string) => `warehouse:\n  url: ${url}\npublic_url: https://segsync.example.com\nalerts:\n${alerts}`;

before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  slack = await startReceiver();
  await project.write('config/segsync.yaml', settings(db.url, `  channels:\n    ops:\n      type: slack\n      url: \${SLACK_URL}\n    down:\n      type: slack\n      url: http://127.0.0.1:9/closed\n      timeout: 2s\n  routes:\n    - channels: [ops]\n`));
});
after(async () => {
  await slack.close();
  await project.cleanup();
  await db.drop();
});

describe('segsync alerts and segsync silence', () => {
  test('alerts test <channel> sends a test message; an unknown channel is a usage error; a channel that fails exits 1', async () => {
    const env = { SLACK_URL: `${slack.url}/hook` };
    const ok = await project.cli(['alerts', 'test', 'ops'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /test message sent to ops \(slack\)/);
    assert.equal(slack.requests.length, 1);
    assert.match(slack.requests[0]!.json.text, /Test message from segsync to channel ops/);
    const unknown = await project.cli(['alerts', 'test', 'nope'], { env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no alert channel named 'nope'/);
    const down = await project.cli(['alerts', 'test', 'down'], { env });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /test message to down failed: slack: request failed/);
  });

  test('silence add / list / expire, with the CLI actor as author; bad input exits 2', async () => {
    const env = { SLACK_URL: slack.url };
    const added = await project.cli(['silence', 'add', '--match', 'mapping=crm', '--match', 'kind=~run_.*', '--for', '2h', '--comment', 'CRM maintenance'], { env });
    assert.equal(added.code, 0, added.stderr);
    const id = /silence (\d+) added/.exec(added.stdout)![1];
    const list = await project.cli(['silence', 'list', '--format', 'json'], { env });
    const silences = JSON.parse(list.stdout);
    assert.equal(silences.length, 1);
    assert.deepEqual(silences[0].matchers, ['mapping=crm', 'kind=~run_.*']);
    assert.match(silences[0].author, /^cli:.+@.+/);
    assert.equal(silences[0].comment, 'CRM maintenance');
    for (const args of [
      ['silence', 'add', '--for', '2h', '--comment', 'x'],
      ['silence', 'add', '--match', 'colour=red', '--for', '2h', '--comment', 'x'],
      ['silence', 'add', '--match', 'kind=~(', '--for', '2h', '--comment', 'x'],
      ['silence', 'add', '--match', 'mapping=crm', '--for', 'soon', '--comment', 'x'],
      ['silence', 'add', '--match', 'mapping=crm', '--for', '2h'],
      ['silence', 'expire', 'abc'],
      ['alerts', '--format', 'csv'],
    ]) {
      const r = await project.cli(args, { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const expired = await project.cli(['silence', 'expire', id!], { env });
    assert.equal(expired.code, 0, expired.stderr);
    assert.equal((await project.cli(['silence', 'expire', id!], { env })).code, 2, 'a second expire: no such silence in force');
    assert.equal(JSON.parse((await project.cli(['silence', 'list', '--format', 'json'], { env })).stdout).length, 0);
    const trail = JSON.parse((await project.cli(['audit', 'log', '--action', 'silence.', '--format', 'json'], { env })).stdout);
    assert.deepEqual(trail.map((r: { action: string; subject: string }) => [r.action, r.subject]),
      [['silence.expired', `silence:${id}`], ['silence.added', `silence:${id}`]], 'both changes are in the audit trail, once each');
    assert.match(trail[1].actor, /^cli:.+@.+/);
  });

  test('segsync alerts lists open incidents with their delivery state', async () => {
    const env = { SLACK_URL: slack.url };
    // An event and its group as the daemon's dispatcher leaves them.
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      await (await import('../src/state/migrate.ts')).migrate(pool, 'segsync');
      await insertEvent(pool, 'segsync', { kind: 'run_failed', severity: 'error', mapping: 'crm', message: 'crm failed: bob@example.com rejected', runId: 3 });
      const { AlertDispatcher } = await import('../src/alerts/dispatcher.ts');
      const config = await loadConfig({ root: project.dir, env: { ...process.env, ...env } });
      const d = new AlertDispatcher({ pool, schema: 'segsync', config: () => config, log: (await import('./helpers/pg.ts')).testLog });
      await d.ingest();
      const r = await project.cli(['alerts', '--format', 'json'], { env });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.incidents.length, 1);
      assert.equal(out.incidents[0].kind, 'run_failed');
      assert.equal(out.incidents[0].state, 'firing');
      assert.equal(out.incidents[0].lastRunId, 3);
      assert.match(out.incidents[0].lastMessage, /crm failed: b\*\*\*@e\*\*\*/);
      assert.doesNotMatch(r.stdout, /bob@example\.com/, 'PII masked in what the command shows');
      const t = await project.cli(['alerts'], { env });
      assert.match(t.stdout, /run_failed\s+crm\s+error\s+firing/);
    } finally {
      await pool.end();
    }
  });
});

describe('alerts configuration errors, located', () => {
  test('unknown channel type, missing secret, invalid matcher, unknown route channel: each with file:line', async () => {
    const p = await createProject({ settings: settings('', [
      '  channels:',
      '    a:',
      '      type: carrier_pigeon',
      '      url: https://x',
      '    b:',
      '      type: slack',
      '      url: ${NOT_SET_ANYWHERE_XYZ}',
      '    c:',
      '      type: webhook',
      '      url: https://x',
      '      secret: plain',
      '  routes:',
      '    - match: ["severity=critical", "colour=red", "kind=~("]',
      '      channels: [b, nope]',
      '',
    ].join('\n')) });
    try {
      const err = await loadConfig({ root: p.dir, env: {} }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, String(err));
      const text = err.problems.map((x) => `${x.line}:${x.path}: ${x.message}`).join('\n');
      const at = (re: RegExp) => err.problems.find((x) => re.test(`${x.path}: ${x.message}`));
      assert.equal(at(/environment variable NOT_SET_ANYWHERE_XYZ is not set/)?.line, 11, text);
      assert.equal(at(/^alerts\.channels\.a\.type/)?.line, 7, text);
      assert.equal(at(/^alerts\.channels\.c\.secret: .*whsec_/)?.line, 15, text);
      assert.match(at(/^alerts\.routes\.0\.match\.1:/)?.message ?? '', /invalid route matcher: unknown label 'colour'/, text);
      assert.match(at(/^alerts\.routes\.0\.match\.2:/)?.message ?? '', /invalid regular expression/, text);
      assert.equal(at(/^alerts\.routes\.0\.match\.1:/)?.line, 17, text);
    } finally {
      await p.cleanup();
    }
  });

  test('a route naming a channel that does not exist', async () => {
    const p = await createProject({ settings: settings('', '  channels:\n    b: { type: slack, url: "https://hooks.example.com/x" }\n  routes:\n    - channels: [b, nope]\n') });
    try {
      const err = await loadConfig({ root: p.dir, env: {} }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ConfigError);
      const problem = err.problems.find((x) => x.path === 'alerts.routes.0.channels.1');
      assert.match(problem?.message ?? '', /unknown channel 'nope'/);
      assert.equal(problem?.line, 8);
    } finally {
      await p.cleanup();
    }
  });
});

test('the configuration example in docs/alerts.md loads', async () => {
  const { readFile } = await import('node:fs/promises');
  const doc = await readFile(new URL('../docs/alerts.md', import.meta.url), 'utf8');
  const yaml = /<!-- alerts-example -->\n```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
  const p = await createProject({ settings: yaml });
  try {
    const env = {
      SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/x', TEAMS_WORKFLOW_URL: 'https://example.api.powerplatform.com/workflows/x?sig=y',
      TELEGRAM_BOT_TOKEN: '1:x', PAGERDUTY_ROUTING_KEY: 'k', SMTP_URL: 'smtp://relay.example.com:587', ALERT_WEBHOOK_SECRET: `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`,
    };
    const config = await loadConfig({ root: p.dir, env });
    assert.deepEqual(Object.keys(config.settings.alerts.channels), ['ops-slack', 'ops-teams', 'oncall-tg', 'pager', 'data-team', 'audit-hook']);
    assert.equal(config.settings.alerts.routes.length, 4);
    assert.equal(config.settings.public_url, 'https://segsync.example.com');
  } finally {
    await p.cleanup();
  }
});
