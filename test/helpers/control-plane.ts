import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { App } from '../../src/app.ts';
import { mountControlPlane } from '../../src/api/server.ts';
import { addUtcMonths } from '../../src/demo/generate.ts';
import { loadDemoPayments } from '../../src/demo/load.ts';
import { runMapping, type RunSummary } from '../../src/sync/run.ts';
import { buildAt, openApp } from './open-app.ts';
import { createTestDatabase, type TestDatabase } from './pg.ts';
import { createProject, REPO_ROOT, type TestProject } from './project.ts';

/**
 * A real project for the API and dashboard tests: demo payments, the RFM models built month by month, the
 * rfm-to-file mapping run after each build (real receipts), then a 12-point segment move the guardrails hold
 * (a real held run with its evidence). The control plane is served on 127.0.0.1, port 0.
 */

export const MAPPING = 'rfm-to-file';
export const TOKEN = 'test-admin-token-0123456789';
const END = new Date('2026-01-01T00:00:00Z');
const MONTHS = 16;

export interface ControlPlaneFixture {
  app: App;
  project: TestProject;
  url: string;
  server: FastifyInstance;
  runs: RunSummary[];
  held: RunSummary;
  q<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Moves `share` of the customers from the largest segment to the smallest in the newest snapshot. */
  moveSegments(share: number): Promise<void>;
  close(): Promise<void>;
}

export async function controlPlaneFixture(): Promise<ControlPlaneFixture> {
  process.env.SEGSYNC_API_TOKEN = TOKEN;
  const db: TestDatabase = await createTestDatabase();
  const project = await createProject({ url: db.url });
  await copyFile(path.join(REPO_ROOT, 'mappings/rfm-to-file.yaml'), path.join(project.dir, 'mappings/rfm-to-file.yaml'));
  const { app, close } = await openApp(project);
  const q = async <T>(sql: string, params: unknown[] = []) => (await app.warehouse.pool.query(sql, params)).rows as T[];
  await loadDemoPayments(app.warehouse, { relation: 'fact_payments', users: 600, months: MONTHS, seed: 7, end: END });
  const start = addUtcMonths(END, -MONTHS);
  const runs: RunSummary[] = [];
  for (let m = 12; m <= MONTHS; m++) {
    await buildAt(app, addUtcMonths(start, m));
    const s = await runMapping(app, MAPPING, {});
    if (s.status !== 'succeeded') throw new Error(`fixture run ${m} ended ${s.status}: ${s.error}`);
    runs.push(s);
  }
  const moveSegments = async (share: number) => {
    const segs = await q<{ s: string; n: number }>(`SELECT rfm_segment AS s, count(*)::int AS n FROM rfm_current_segments GROUP BY 1 ORDER BY 2 DESC, 1`);
    const total = segs.reduce((a, r) => a + r.n, 0);
    await q(`UPDATE rfm_segments_hist h SET rfm_segment = $2 WHERE snapshot_at = (SELECT max(snapshot_at) FROM rfm_segments_hist)
             AND user_id IN (SELECT user_id FROM rfm_current_segments WHERE rfm_segment = $1 ORDER BY user_id LIMIT $3)`, [segs[0]!.s, segs[segs.length - 1]!.s, Math.round(total * share)]);
  };
  await moveSegments(0.12);
  const held = await runMapping(app, MAPPING, {});
  if (held.status !== 'held') throw new Error(`the fixture's move was not held: ${held.status}`);
  const server = Fastify({ logger: false });
  await mountControlPlane(server, { app: () => app });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    app, project, url, server, runs, held, q, moveSegments,
    close: async () => {
      await server.close();
      await close();
      await project.cleanup();
      await db.drop();
    },
  };
}
