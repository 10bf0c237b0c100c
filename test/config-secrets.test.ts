import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadProject } from '../src/config/load.ts';
import { ConfigError } from '../src/errors.ts';

/** Secrets only from environment variables: a credential written into config/segsync.yaml is refused, located. */
test('a literal secret in the settings file is a located config error; ${VAR} references load', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'segsync-secrets-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'config'));
  await mkdir(path.join(root, 'mappings'));
  const write = (yaml: string) => writeFile(path.join(root, 'config', 'segsync.yaml'), yaml);

  await write(`connections:
  crm:
    type: hubspot
    access_token: pat-na1-0123456789
alerts:
  channels:
    pager: { type: pagerduty, routing_key: "R0UT1NG\${X:-}" }
`);
  const err = await loadProject({ root, env: {} }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  const secrets = err.problems.filter((p) => /secret written into the file/.test(p.message));
  assert.deepEqual(secrets.map((p) => [p.path, p.line]), [['connections.crm.access_token', 4], ['alerts.channels.pager.routing_key', 7]]);
  assert.match(secrets[0]!.hint ?? '', /\$\{SEGSYNC_CRM_ACCESS_TOKEN\}/);
  assert.ok(!err.message.includes('pat-na1-0123456789'), 'the error does not repeat the secret');

  await write(`connections:
  crm:
    type: hubspot
    access_token: \${HUBSPOT_TOKEN}
  sf:
    type: salesforce
    client_secret: \${SALESFORCE_CLIENT_SECRET:-}
`);
  const config = await loadProject({ root, env: { HUBSPOT_TOKEN: 'pat-from-env' } });
  assert.deepEqual(Object.keys(config.settings.connections), ['crm', 'sf']);
});
