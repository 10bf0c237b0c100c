import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { mountControlPlane } from '../src/api/server.ts';
import { PERMISSIONS, ROLES, roleAllows, type Permission, type Role } from '../src/auth/permissions.ts';
import { createToken, revoke } from '../src/auth/tokens.ts';
import { startHttp } from '../src/daemon/http.ts';
import { cliActor } from '../src/state/actor.ts';
import { runMapping } from '../src/sync/run.ts';
import { controlPlaneFixture, MAPPING, type ControlPlaneFixture } from './helpers/control-plane.ts';

/**
 * The whole role x route matrix (issue 14 item 7), from the running server itself: every route the control
 * plane registers (API and dashboard, seen through an onRoute hook) must declare a permission; each is called
 * with a real API token of every role (made by src/auth/tokens.ts) on real ids from real runs and a real held
 * run. A role holding the route's permission is never refused (no 401/403); one without it always gets 403
 * FORBIDDEN; no token, a revoked token and an expired one get 401 (a page: the login form).
 */

interface Route { method: string; url: string; permission: Permission | 'public' | undefined; kind: 'api' | 'page' | undefined }

const PUBLIC = new Set(['GET /login', 'POST /login', 'POST /logout', 'GET /assets/:file', 'HEAD /login', 'HEAD /assets/:file']);

let f: ControlPlaneFixture;
let server: FastifyInstance;
let url: string;
const routes: Route[] = [];
const tokens = new Map<Role, string>();
let revoked: string;
let expired: string;
let key: string;

before(async () => {
  f = await controlPlaneFixture();
  // A second server on the fixture's app, watched from its first route on: the list is what it really serves.
  server = Fastify({ logger: false });
  server.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) {
      const config = (r.config ?? {}) as { permission?: Permission | 'public'; kind?: 'api' | 'page' };
      routes.push({ method, url: r.url ?? r.path, permission: config.permission, kind: config.kind });
    }
  });
  await mountControlPlane(server, { app: () => f.app });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const db = f.app.warehouse.pool;
  const schema = f.app.config.settings.state.schema;
  for (const role of Object.keys(ROLES) as Role[]) tokens.set(role, (await createToken(db, schema, { role, name: `matrix-${role}`, expiresAt: null, actor: cliActor() })).token);
  const r = await createToken(db, schema, { role: 'admin', name: 'matrix-revoked', expiresAt: null, actor: cliActor() });
  await revoke(db, schema, r.row.id, cliActor());
  revoked = r.token;
  expired = (await createToken(db, schema, { role: 'admin', name: 'matrix-expired', expiresAt: new Date(Date.now() - 60_000), actor: cliActor() })).token;
  const [k] = await f.q<{ key: string }>(`SELECT key FROM ${schema}.run_items WHERE run_id = $1 ORDER BY key LIMIT 1`, [f.runs[0]!.runId]);
  key = k!.key;
});
after(async () => {
  await server?.close();
  await f?.close();
});

/** A concrete path for a route: real ids (the held run, the fixture's mapping, a key it delivered). */
function concrete(r: Route): string {
  if (r.url === '/records') return `/records?mapping=${MAPPING}&key=${key}`;
  return r.url.replace(/:(\w+)/g, (_, p: string) => {
    switch (p) {
      case 'id': return String(f.held.runId);
      case 'name': case 'mapping': return MAPPING;
      case 'key': return key;
      case 'file': return 'app.css';
      default: throw new Error(`no real value for the path parameter :${p} of ${r.method} ${r.url}: teach this test one`);
    }
  });
}

/** A body the route accepts: a dry run (nothing written or sent), a decision with a reason and no delivery. */
function bodyOf(r: Route): { body?: string; type?: string } {
  if (r.method !== 'POST') return {};
  if (r.kind === 'page') return { body: new URLSearchParams({ reason: 'role matrix' }).toString(), type: 'application/x-www-form-urlencoded' };
  if (r.url.endsWith('/runs') ) return { body: JSON.stringify({ dryRun: true }), type: 'application/json' };
  if (r.url.endsWith('/approve')) return { body: JSON.stringify({ reason: 'role matrix', deliver: false }), type: 'application/json' };
  return { body: JSON.stringify({ reason: 'role matrix' }), type: 'application/json' };
}

async function call(r: Route, token: string | null, cookie?: string): Promise<{ status: number; code: string | null; location: string | null; text: string }> {
  const b = bodyOf(r);
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (cookie) headers.cookie = cookie;
  if (b.type) headers['content-type'] = b.type;
  const res = await fetch(url + concrete(r), { method: r.method, headers, redirect: 'manual', ...(b.body ? { body: b.body } : {}) });
  const text = await res.text();
  let code: string | null = null;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) {
    try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null; } catch { /* not an error body */ }
  }
  // A HEAD answer has no body: its code is the one the GET beside it sends.
  if (r.method === 'HEAD' && res.status >= 400) code = res.status === 401 ? 'UNAUTHENTICATED' : res.status === 403 ? 'FORBIDDEN' : null;
  return { status: res.status, code, location: res.headers.get('location'), text: text.slice(0, 300) };
}

const guarded = () => routes.filter((r) => r.permission !== 'public');
const label = (r: Route) => `${r.method} ${r.url}`;

describe('roles x routes', () => {
  test('every route declares a permission; only the login form and the static assets are public', () => {
    assert.ok(routes.length >= 20, `the server registered ${routes.length} routes`);
    const undeclared = routes.filter((r) => r.permission === undefined).map(label);
    assert.deepEqual(undeclared, [], 'a route without config.permission would be served to anyone');
    const known = Object.keys(PERMISSIONS);
    for (const r of routes) assert.ok(r.permission === 'public' || known.includes(r.permission!), `${label(r)}: '${r.permission}' is no permission`);
    const open = routes.filter((r) => r.permission === 'public').map(label);
    assert.deepEqual(open.filter((o) => !PUBLIC.has(o)), [], 'public routes beyond the login form and the assets');
    for (const r of guarded()) assert.ok(r.kind === 'api' || r.kind === 'page', `${label(r)} says whether it is the API or a page (how a refusal is answered)`);
    // Both halves are in the list: the API (every path of its OpenAPI document) and the dashboard pages.
    for (const p of ['GET /api/v1/runs/:id', 'POST /api/v1/runs/:id/approve', 'POST /api/v1/mappings/:name/runs', 'GET /', 'GET /runs/:id', 'POST /runs/:id/approve', 'GET /records', 'GET /events', 'GET /segments']) {
      assert.ok(routes.some((r) => label(r) === p), `${p} is served`);
    }
  });

  test('the OpenAPI document lists every API route with the permission the server checks', async () => {
    const res = await fetch(url + '/api/v1/openapi.json', { headers: { authorization: `Bearer ${tokens.get('viewer')}` } });
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, { 'x-permission': string }>> };
    const documented = new Map<string, string>();
    for (const [p, ops] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(ops)) documented.set(`${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`, op['x-permission']);
    const served = routes.filter((r) => r.kind === 'api' && r.method !== 'HEAD' && r.url !== '/api/v1/openapi.json');
    assert.deepEqual(served.map(label).sort(), [...documented.keys()].sort(), 'the document and the server list the same API routes');
    for (const r of served) assert.equal(documented.get(label(r)), r.permission, `${label(r)}: documented and checked permission differ`);
  });

  test('no token, a revoked token, an expired token: 401 (a page sends the caller to the login form)', async () => {
    for (const r of guarded()) {
      for (const [who, token] of [['no token', null], ['a revoked token', revoked], ['an expired token', expired]] as const) {
        const res = await call(r, token);
        if (r.kind === 'page' && token === null) {
          assert.deepEqual([res.status, res.location?.startsWith('/login?next=')], [303, true], `${label(r)} with ${who}: ${res.status} ${res.text}`);
        } else if (r.kind === 'page') {
          // A bearer token that does not check out is a 401 even for a page (a browser sends none).
          assert.ok(res.status === 401 || (res.status === 303 && res.location?.startsWith('/login?next=')), `${label(r)} with ${who}: ${res.status} ${res.text}`);
        } else {
          assert.deepEqual([res.status, res.code], [401, 'UNAUTHENTICATED'], `${label(r)} with ${who}: ${res.text}`);
        }
      }
    }
  });

  test('each role: allowed where its permissions hold the route\'s, 403 FORBIDDEN everywhere else', async () => {
    const cells: string[] = [];
    let allowedCalls = 0;
    let refusedCalls = 0;
    for (const r of guarded()) {
      for (const role of Object.keys(ROLES) as Role[]) {
        const res = await call(r, tokens.get(role)!);
        const may = roleAllows(role, r.permission as Permission);
        cells.push(`${label(r)} ${role} -> ${res.status}${res.code ? ` ${res.code}` : ''}`);
        if (may) {
          allowedCalls++;
          assert.ok(res.status !== 401 && res.status !== 403, `${role} holds '${r.permission}' but ${label(r)} refused it: ${res.status} ${res.text}`);
          assert.ok(res.status < 500, `${label(r)} as ${role}: ${res.status} ${res.text}`);
          if (r.method === 'GET') assert.ok(res.status >= 200 && res.status < 300, `${label(r)} as ${role} on real ids: ${res.status} ${res.text}`);
        } else {
          refusedCalls++;
          assert.deepEqual([res.status, res.code], [403, 'FORBIDDEN'], `${role} lacks '${r.permission}': ${label(r)} answered ${res.status} ${res.text}`);
        }
      }
    }
    assert.ok(allowedCalls > 0 && refusedCalls > 0, cells.join('\n'));
    if (process.env.SEGSYNC_TEST_SHOW_MATRIX) console.log(cells.join('\n'));
    // The held run was decided by the approver (the first allowed caller), not by a refused one.
    const [h] = await f.q<{ status: string }>(`SELECT status FROM ${f.app.config.settings.state.schema}.runs WHERE id = $1`, [f.held.runId]);
    assert.notEqual(h!.status, 'held', 'an allowed decision went through');
    const detail = await fetch(`${url}/api/v1/runs/${f.held.runId}`, { headers: { authorization: `Bearer ${tokens.get('admin')}` } });
    const history = ((await detail.json()) as { history: Array<{ to: string; actor: string }> }).history;
    const decision = history.find((x) => ['approved', 'rejected', 'cancelled'].includes(x.to));
    assert.match(decision?.actor ?? '', /matrix-(approver|operator|editor|admin)/, JSON.stringify(history));
  });

  test('the same matrix through a dashboard session made at the login form with each role\'s token', async () => {
    for (const role of Object.keys(ROLES) as Role[]) {
      const res = await fetch(url + '/login', { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens.get(role)!, next: '/' }).toString() });
      await res.text();
      const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.match(cookie, /^segsync_session=.+/, `${role} logs in`);
      for (const r of guarded()) {
        const got = await call(r, null, cookie);
        if (roleAllows(role, r.permission as Permission)) {
          assert.ok(got.status !== 401 && got.status !== 403 && got.status < 500 && got.status !== 303, `${role}'s session holds '${r.permission}' but ${label(r)} answered ${got.status} ${got.text}`);
        } else {
          assert.deepEqual([got.status, got.code], [403, 'FORBIDDEN'], `${role}'s session lacks '${r.permission}': ${label(r)} answered ${got.status} ${got.text}`);
        }
      }
    }
  });

  test('a held run\'s page offers approve and reject only to a role that may decide', async () => {
    await f.moveSegments(0.12);
    const held = await runMapping(f.app, MAPPING, {});
    assert.equal(held.status, 'held');
    for (const role of Object.keys(ROLES) as Role[]) {
      const res = await fetch(`${url}/runs/${held.runId}`, { headers: { authorization: `Bearer ${tokens.get(role)}` } });
      const page = await res.text();
      assert.equal(res.status, 200);
      const forms = page.includes('id="approve-form"') && page.includes('id="reject-form"');
      assert.equal(forms, roleAllows(role, 'approve'), `${role}: the decision forms are ${forms ? 'shown' : 'not shown'}`);
      assert.match(page, /Held for approval: nothing was sent/, `${role} sees that it is held`);
    }
    const cancel = await fetch(`${url}/api/v1/runs/${held.runId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${tokens.get('operator')}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'role matrix done' }) });
    assert.equal(cancel.status, 200, await cancel.text());
  });

  test('a dashboard session made with a token ends when the token is revoked or expires', async () => {
    const db = f.app.warehouse.pool;
    const schema = f.app.config.settings.state.schema;
    const login = async (token: string) => {
      const res = await fetch(url + '/login', { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, next: '/' }).toString() });
      assert.equal(res.status, 303);
      const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.match(cookie, /^segsync_session=.+/);
      return cookie;
    };
    const page = async (cookie: string) => {
      const res = await fetch(url + '/', { headers: { cookie }, redirect: 'manual' });
      await res.text();
      return [res.status, res.headers.get('location')];
    };
    const a = await createToken(db, schema, { role: 'viewer', name: 'matrix-session-revoked', expiresAt: null, actor: cliActor() });
    const ca = await login(a.token);
    assert.deepEqual(await page(ca), [200, null], 'the session works while its token does');
    await revoke(db, schema, a.row.id, cliActor());
    assert.deepEqual(await page(ca), [303, '/login?next=%2F'], 'revoking a token ends the sessions made with it');
    const b = await createToken(db, schema, { role: 'viewer', name: 'matrix-session-expired', expiresAt: new Date(Date.now() + 3_600_000), actor: cliActor() });
    const cb = await login(b.token);
    assert.deepEqual(await page(cb), [200, null]);
    await db.query(`UPDATE ${schema}.api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [b.row.id]);
    assert.deepEqual(await page(cb), [303, '/login?next=%2F'], 'a token\'s expiry ends the sessions made with it');
  });
});

/** "METHOD /path" for every route of a ready server, read from fastify's own route tree (printRoutes). */
function servedRoutes(s: FastifyInstance): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of s.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([\s│├└─]*?)(?:[├└]── )?([^\s│├└─][^(]*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m || !m[2]) continue;
    const depth = Math.round(m[1]!.length / 4);
    stack.length = depth;
    stack[depth] = m[2]!;
    if (m[3]) for (const method of m[3].split(', ')) out.add(`${method} ${stack.join('')}`);
  }
  return out;
}

describe('the daemon\'s whole HTTP server', () => {
  test('outside the control plane it serves only the four probes (/healthz /readyz /metrics /status)', async () => {
    const http = await startHttp({ log: f.app.log, readiness: async () => ({ ready: true, checks: {} }), status: () => ({}), mount: (s) => mountControlPlane(s, { app: () => f.app }) }, '127.0.0.1', 0);
    try {
      const all = servedRoutes(http.server);
      const plane = new Set(routes.map(label));
      assert.ok(plane.size > 20 && [...plane].every((r) => all.has(r)), `the route tree lists the control plane's routes: ${[...plane].filter((r) => !all.has(r)).join(', ')}`);
      const outside = [...all].filter((r) => !plane.has(r)).sort();
      assert.deepEqual(outside, ['GET /healthz', 'GET /metrics', 'GET /readyz', 'GET /status', 'HEAD /healthz', 'HEAD /metrics', 'HEAD /readyz', 'HEAD /status'],
        'a route outside the control plane is not behind its permission hook: add it there with a permission, or here if it is a probe');
    } finally {
      await http.server.close();
    }
  });
});

describe('a route without a declared permission', () => {
  test('is refused to everyone, even the admin (fail closed); unknown URLs stay a 404', async () => {
    // A route that forgot its permission, made by taking the declaration off a real one as it is added.
    const s = Fastify({ logger: false });
    s.addHook('onRoute', (r) => {
      if (r.url === '/api/v1/monitors' && r.config) delete (r.config as { permission?: string }).permission;
    });
    try {
      await mountControlPlane(s, { app: () => f.app });
      const admin = { authorization: `Bearer ${tokens.get('admin')}` };
      const res = await s.inject({ method: 'GET', url: '/api/v1/monitors', headers: admin });
      assert.deepEqual([res.statusCode, res.json().error.code], [500, 'NO_PERMISSION_DECLARED'], res.body);
      const none = await s.inject({ method: 'GET', url: '/api/v1/monitors' });
      assert.equal(none.statusCode, 500, 'nor to a stranger');
      const other = await s.inject({ method: 'GET', url: '/api/v1/events', headers: admin });
      assert.equal(other.statusCode, 200, 'the routes that declare one are unaffected');
      const missing = await s.inject({ method: 'GET', url: '/api/v1/nothing', headers: admin });
      assert.deepEqual([missing.statusCode, missing.json().error.code], [404, 'NOT_FOUND']);
    } finally {
      await s.close();
    }
  });
});
