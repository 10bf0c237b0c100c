import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../log.ts';
import { registry } from '../metrics.ts';

/**
 * The daemon's HTTP face: /healthz (the process answers: liveness), /readyz (database reachable and
 * migrations applied: readiness), /metrics (Prometheus text), /status (what each job is doing, as JSON).
 */

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface HttpDeps {
  log: Logger;
  readiness(): Promise<Readiness>;
  status(): unknown;
  /** Adds more routes before listening (the API and the dashboard, src/api/server.ts). */
  mount?(server: FastifyInstance): Promise<void>;
}

export async function startHttp(deps: HttpDeps, host: string, port: number): Promise<{ server: FastifyInstance; port: number }> {
  const server = Fastify({ logger: false });
  server.get('/healthz', async () => ({ status: 'ok', uptime_s: Math.round(process.uptime()) }));
  server.get('/readyz', async (_req, reply) => {
    const r = await deps.readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
  server.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
  server.get('/status', async () => deps.status());
  await deps.mount?.(server);
  await server.listen({ host, port });
  const address = server.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  deps.log.info({ host, port: bound, ...(deps.mount ? { api: '/api/v1', dashboard: '/' } : {}) }, 'http listening (/healthz /readyz /metrics /status)');
  return { server, port: bound };
}
