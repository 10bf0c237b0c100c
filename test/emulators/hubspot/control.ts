import type { Answer } from './routes.ts';
import type { HubSpotEmulator } from './server.ts';

/**
 * The control API over HTTP (`/__emulator/...`), for an emulator running in another process (benchmarks, the
 * demo). No token, no rate limit, not logged: it is the test's side door, not part of HubSpot.
 */
export function controlRoute(e: HubSpotEmulator, method: string, path: string, body: unknown): Answer {
  const b = (body ?? {}) as Record<string, unknown>;
  if (method === 'GET' && path === '/__emulator/stats') {
    const statuses: Record<string, number> = {};
    for (const r of e.requests) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const records = Object.fromEntries([...e.crm.types.keys()].map((t) => [t, e.records(t).length]));
    return { status: 200, body: { requests: e.requests.length, statuses, counts: e.counts(), records, dailyUsed: e.limiter.dailyUsed } };
  }
  if (method === 'POST' && path === '/__emulator/limits') return e.setLimits(b), { status: 204 };
  if (method === 'POST' && path === '/__emulator/faults') {
    // {"script": ["unavailable", "none", "reset_after"]}: the next requests' faults, in order; other keys set the random ones.
    const { script, ...random } = b;
    if (Array.isArray(script)) e.scriptFaults(...(script as never[]));
    e.setFaults(random);
    return { status: 204 };
  }
  if (method === 'POST' && path === '/__emulator/next-day') return e.nextDay(), { status: 204 };
  if (method === 'POST' && path === '/__emulator/reset-log') return e.requests.splice(0), { status: 204 };
  const m = path.match(/^\/__emulator\/properties\/([^/]+)$/);
  if (method === 'POST' && m) {
    try {
      e.defineProperty(m[1]!, b);
      return { status: 204 };
    } catch (err) {
      return { status: 400, body: { message: String(err) } };
    }
  }
  return { status: 404, body: { message: `no control route ${method} ${path}` } };
}
