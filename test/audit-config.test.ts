import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { auditConfig, configContent } from '../src/audit/config-audit.ts';
import { loadConfig } from '../src/app.ts';
import { daemonActor } from '../src/state/actor.ts';
import { migrate } from '../src/state/migrate.ts';
import { FILE_MAPPING, withMappingProject } from './helpers/project.ts';

test('config audit: secrets (by name, by environment value, in URLs) masked; one row per distinct config; the diff names what changed', async () => {
  await withMappingProject(FILE_MAPPING(), async (project, db) => {
    process.env.AUDIT_CFG_TOKEN = 'tok-very-secret-123';
    const settings = (extra: string) => `warehouse:\n  url: postgres://app:hunter2pass@db.internal/prod\nconnections:\n  files:\n    type: file\n    directory: ${project.outDir}\n${extra}`;
    await project.write('config/segsync.yaml', settings(''));
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await migrate(pool, 'segsync');
      const first = await loadConfig({ root: project.dir });
      const content = configContent(first);
      assert.equal(content['settings.warehouse.url'], 'postgres://app:[secret]@db.internal/prod');
      assert.equal(content['mappings.seg-to-file.destination.match_key'], 'customer_id');
      const d1 = await auditConfig(pool, 'segsync', first, daemonActor('start'), 'config.loaded');
      assert.ok(d1 && d1.length > 5);
      assert.equal(await auditConfig(pool, 'segsync', first, daemonActor('start'), 'config.loaded'), null, 'the same config again records nothing');
      await project.write('config/segsync.yaml', settings('auth:\n  oidc:\n    issuer: https://idp.example.com\n    audience: segsync\n    role_map:\n      ops: [operator]\nprivacy:\n  erasure:\n    seg:\n      api_url: https://api.segmentapis.com\n      token: ${AUDIT_CFG_TOKEN}\n'));
      const second = await loadConfig({ root: project.dir });
      const d2 = await auditConfig(pool, 'segsync', second, daemonActor('reload'), 'config.reloaded');
      const paths = d2!.map((c) => c.path);
      assert.ok(paths.includes('settings.auth.oidc.issuer'), paths.join());
      assert.deepEqual(d2!.find((c) => c.path === 'settings.privacy.erasure.seg.token'), { path: 'settings.privacy.erasure.seg.token', new: '[secret]' });
      const rows = (await pool.query<{ action: string; actor_id: string; entry: string }>(`SELECT action, actor_id, entry FROM segsync.audit ORDER BY seq`)).rows;
      assert.deepEqual(rows.map((r) => [r.action, r.actor_id]), [['config.loaded', 'start'], ['config.reloaded', 'reload']]);
      assert.ok(rows.every((r) => !r.entry.includes('tok-very-secret-123') && !r.entry.includes('hunter2pass')));
    } finally {
      delete process.env.AUDIT_CFG_TOKEN;
      await pool.end();
    }
  });
});
