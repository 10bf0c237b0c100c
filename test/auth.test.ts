import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { authenticate, mayApprove, requestAuthenticator, rolesFromClaim } from '../src/auth/authenticate.ts';
import { permissionMatrix } from '../src/auth/matrix.ts';
import { identityAllows, PERMISSIONS, ROLES, type Permission, type Role } from '../src/auth/permissions.ts';
import { createToken, looksLikeToken, revoke } from '../src/auth/tokens.ts';
import type { Warehouse } from '../src/db/warehouse.ts';
import { cliActor } from '../src/state/actor.ts';
import { migrate } from '../src/state/migrate.ts';
import { useFreshWarehouse } from './helpers/pg.ts';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const noOidc = { auth: {} };

describe('identities: API tokens', () => {
  let warehouse: Warehouse;
  let keyDir: string;
  before(async () => { keyDir = await mkdtemp(path.join(tmpdir(), 'segsync-auth-keys-')); process.env.SEGSYNC_AUDIT_KEY_DIR = keyDir; });
  after(() => rm(keyDir, { recursive: true, force: true }));
  useFreshWarehouse('postgres', async (w) => { warehouse = w; await migrate(w.pool, 'segsync'); });

  test('a token has the ssk_ prefix and a checksum, is stored only as a hash, authenticates with its role and stamps its last use', async () => {
    const { token, row } = await createToken(warehouse.pool, 'segsync', { role: 'operator', name: 'ci', expiresAt: null, actor: cliActor() });
    assert.match(token, /^ssk_[0-9A-Za-z]{46}$/);
    assert.ok(looksLikeToken(token));
    assert.ok(!looksLikeToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), 'a typo fails the checksum');
    const stored = (await warehouse.pool.query(`SELECT * FROM segsync.api_tokens`)).rows;
    assert.ok(!JSON.stringify(stored).includes(token.slice(12)), 'the token itself is never stored');
    assert.equal(row.lastUsedAt, null);
    const who = await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${token}`);
    assert.deepEqual(who?.roles, ['operator']);
    assert.equal(who?.actor.type, 'api');
    assert.ok(who && identityAllows(who, 'run') && !identityAllows(who, 'approve'));
    const used = (await warehouse.pool.query(`SELECT last_used_at FROM segsync.api_tokens WHERE id = $1`, [row.id])).rows[0];
    assert.ok(used.last_used_at instanceof Date);
    assert.equal(await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${token.slice(0, -2)}xx`), null);
    const hook = requestAuthenticator(warehouse.pool, 'segsync', () => noOidc);
    assert.deepEqual((await hook({ headers: { authorization: `Bearer ${token}` } }))?.roles, ['operator']);
    assert.equal(await hook({ headers: {} }), null);
    assert.equal(await authenticate(warehouse.pool, 'segsync', noOidc, undefined), null);
    const audited = (await warehouse.pool.query(`SELECT action, subject FROM segsync.audit WHERE action LIKE 'token.%'`)).rows;
    assert.deepEqual(audited, [{ action: 'token.created', subject: `token:${row.id}` }]);
    await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${token}`);
    const logins = (await warehouse.pool.query(`SELECT actor_id, subject FROM segsync.audit WHERE action = 'auth.login'`)).rows;
    assert.deepEqual(logins, [{ actor_id: `token:${row.id}:ci`, subject: `token:${row.id}` }], 'the first use after a silence is a login; the next request is not');
  });

  test('approvalSubject names who triggered a run and who brought in its config; mayApprove refuses both', async () => {
    const { createRun } = await import('../src/state/create-run.ts');
    const { auditConfig } = await import('../src/audit/config-audit.ts');
    const { approvalSubject } = await import('../src/state/approval-subject.ts');
    const editor = { type: 'api' as const, id: 'oidc:eve' };
    const config = { root: '.', settingsFile: null, settings: { auth: {} }, mappings: [], hash: 'cfg-hash-1' } as never;
    await auditConfig(warehouse.pool, 'segsync', config, editor, 'config.reloaded');
    const runId = await createRun(warehouse.pool, 'segsync', { mapping: 'm', actor: cliActor(), configHash: 'cfg-hash-1', destination: 'd', status: 'planning' });
    const subject = await approvalSubject(warehouse.pool, 'segsync', runId);
    assert.deepEqual(subject, { actor: cliActor(), configChangedBy: [editor] });
    assert.equal(mayApprove({ actor: editor, roles: ['approver'] }, subject!).ok, false);
    assert.equal(mayApprove({ actor: { type: 'api', id: 'oidc:ann' }, roles: ['approver'] }, subject!).ok, true);
    assert.equal(await approvalSubject(warehouse.pool, 'segsync', 999999), null);
  });

  test('an expired or revoked token authenticates no one; revoking is audited', async () => {
    const expired = await createToken(warehouse.pool, 'segsync', { role: 'admin', name: 'old', expiresAt: new Date(Date.now() - 1000), actor: cliActor() });
    assert.equal(await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${expired.token}`), null);
    const live = await createToken(warehouse.pool, 'segsync', { role: 'viewer', name: 'dash', expiresAt: new Date(Date.now() + 3_600_000), actor: cliActor() });
    assert.ok(await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${live.token}`));
    await revoke(warehouse.pool, 'segsync', live.row.id, cliActor());
    assert.equal(await authenticate(warehouse.pool, 'segsync', noOidc, `Bearer ${live.token}`), null);
    await assert.rejects(revoke(warehouse.pool, 'segsync', live.row.id, cliActor()), /no live token/);
    await assert.rejects(createToken(warehouse.pool, 'segsync', { role: 'root', name: 'x', expiresAt: null, actor: cliActor() }), /not a role/);
    const actions = (await warehouse.pool.query(`SELECT action FROM segsync.audit WHERE subject = $1 ORDER BY seq`, [`token:${live.row.id}`])).rows.map((r) => r.action);
    assert.deepEqual(actions, ['token.created', 'auth.login', 'token.revoked']);
  });
});

describe('identities: OIDC bearer tokens against a local issuer\'s JWKS', () => {
  let server: Server;
  let issuer: string;
  let priv: Key;
  let otherPriv: Key;
  let settings: { auth: { oidc: { issuer: string; audience: string; jwks_url: string; roles_claim: string; role_map: Record<string, Role[]>; subject_claim: string } } };
  before(async () => {
    const kp = await generateKeyPair('ES256');
    priv = kp.privateKey;
    otherPriv = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    settings = { auth: { oidc: { issuer, audience: 'segsync', jwks_url: `${issuer}/.well-known/jwks.json`, roles_claim: 'realm.groups', role_map: { 'crm-approvers': ['approver'], 'crm-audit': ['auditor', 'viewer'] }, subject_claim: 'email' } } };
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const jwt = (claims: Record<string, unknown>, o: { key?: Key; iss?: string; aud?: string; exp?: string | number } = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(o.iss ?? issuer).setAudience(o.aud ?? 'segsync').setIssuedAt().setExpirationTime(o.exp ?? '5m').sign(o.key ?? priv);

  test('a valid token becomes an identity with the roles its claim maps to', async () => {
    const who = await authenticate(null as never, 'segsync', settings, `Bearer ${await jwt({ email: 'ann@corp.example', realm: { groups: ['crm-audit', 'staff'] } })}`);
    assert.deepEqual(who, { actor: { type: 'api', id: 'oidc:ann@corp.example' }, roles: ['auditor', 'viewer'] });
    const none = await authenticate(null as never, 'segsync', settings, `Bearer ${await jwt({ email: 'bo@corp.example', realm: { groups: ['staff'] } })}`);
    assert.deepEqual(none?.roles, []);
  });

  test('a wrong signature, issuer, audience or an expired token authenticates no one', async () => {
    const claims = { email: 'ann@corp.example', realm: { groups: ['crm-approvers'] } };
    for (const bad of [await jwt(claims, { key: otherPriv }), await jwt(claims, { iss: 'http://evil.example' }), await jwt(claims, { aud: 'other' }), await jwt(claims, { exp: Math.floor(Date.now() / 1000) - 120 })]) {
      assert.equal(await authenticate(null as never, 'segsync', settings, `Bearer ${bad}`), null);
    }
    assert.equal(await authenticate(null as never, 'segsync', noOidc, `Bearer ${await jwt(claims)}`), null, 'no OIDC configured');
  });

  test('rolesFromClaim takes arrays and space-separated strings; unknown values give nothing', () => {
    assert.deepEqual(rolesFromClaim('a b', { a: ['viewer'], b: ['operator'] }), ['operator', 'viewer']);
    assert.deepEqual(rolesFromClaim(42, { a: ['viewer'] }), []);
  });
});

describe('roles and approvals', () => {
  test('an approver never approves their own trigger or config change', () => {
    const ann = { type: 'api' as const, id: 'oidc:ann' };
    const bob = { type: 'cli' as const, id: 'bob@host' };
    assert.deepEqual(mayApprove({ actor: ann, roles: ['approver'] }, { actor: bob }), { ok: true });
    assert.equal(mayApprove({ actor: ann, roles: ['approver'] }, { actor: ann }).ok, false);
    assert.equal(mayApprove({ actor: ann, roles: ['admin'] }, { actor: bob, configChangedBy: [ann] }).ok, false);
    assert.equal(mayApprove({ actor: ann, roles: ['operator'] }, { actor: bob }).ok, false);
  });

  test('the role matrix: operator runs and silences, approver approves, auditor audits, only admin sees PII or erases', () => {
    const can = (r: Role) => (Object.keys(PERMISSIONS) as Permission[]).filter((p) => identityAllows({ actor: cliActor(), roles: [r] }, p));
    assert.deepEqual(can('operator'), ['read', 'run', 'silence']);
    assert.deepEqual(can('approver'), ['read', 'approve']);
    assert.deepEqual(can('auditor'), ['read', 'audit']);
    for (const r of Object.keys(ROLES) as Role[]) if (r !== 'admin') assert.ok(!can(r).includes('pii') && !can(r).includes('erase'), r);
  });

  test('docs/permissions.md is generated from permissions.ts and current', async () => {
    assert.equal(await readFile('docs/permissions.md', 'utf8'), permissionMatrix(), 'run: segsync tokens roles > docs/permissions.md');
  });
});
