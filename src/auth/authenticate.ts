import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { audit } from '../audit/trail.ts';
import type { Settings } from '../config/settings.ts';
import type { Actor } from '../state/actor.ts';
import { useToken } from '../state/tokens.ts';
import type { Db } from '../state/transition.ts';
import { ROLES, type Identity, type Role } from './permissions.ts';
import { looksLikeToken, tokenHash } from './tokens.ts';

type Jwks = ReturnType<typeof createRemoteJWKSet>;
const jwksCache = new Map<string, Jwks>();

function jwksFor(url: string): Jwks {
  let set = jwksCache.get(url);
  if (!set) {
    // jose caches the keys (10 min) and refetches on an unknown kid at most every 30 s.
    set = createRemoteJWKSet(new URL(url));
    jwksCache.set(url, set);
  }
  return set;
}

function claimAt(payload: JWTPayload, dotted: string): unknown {
  let v: unknown = payload;
  for (const part of dotted.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** The roles an OIDC token's claim maps to (settings auth.oidc.role_map); unknown values give none. */
export function rolesFromClaim(value: unknown, roleMap: Record<string, readonly string[]>): Role[] {
  const values = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : [];
  const roles = new Set<Role>();
  for (const v of values) for (const r of roleMap[String(v)] ?? []) if (r in ROLES) roles.add(r as Role);
  return [...roles].sort();
}

/**
 * Who an `Authorization` header says the caller is: `Bearer ssk_...` (an API token made with `segsync tokens
 * create`: live, not expired, not revoked) or `Bearer <JWT>` from the OIDC issuer in settings (signature
 * checked against its JWKS, iss, aud, exp/nbf). Null when there is no header or it does not check out; an
 * OIDC caller whose claim maps to no role gets an Identity without roles (allowed nothing).
 */
export async function authenticate(db: Db, schema: string, settings: Pick<Settings, 'auth'>, authorizationHeader: string | undefined | null): Promise<Identity | null> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorizationHeader ?? '');
  if (!m) return null;
  const credential = m[1]!;
  if (credential.startsWith('ssk_')) {
    if (!looksLikeToken(credential)) return null;
    const row = await useToken(db, schema, tokenHash(credential));
    if (!row) return null;
    const actor: Actor = { type: 'api', id: `token:${row.id}:${row.name}` };
    if (!row.previousUse || Date.now() - row.previousUse.getTime() > SESSION_MS) {
      await audit(db, schema, { actor, action: 'auth.login', subject: `token:${row.id}`, details: { method: 'token', role: row.role } });
    }
    return { actor, roles: [row.role as Role] };
  }
  const oidc = settings.auth.oidc;
  if (!oidc) return null;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(credential, jwksFor(oidc.jwks_url ?? new URL('.well-known/jwks.json', oidc.issuer.endsWith('/') ? oidc.issuer : oidc.issuer + '/').toString()), {
      issuer: oidc.issuer, audience: oidc.audience, clockTolerance: 30,
    }));
  } catch {
    return null;
  }
  const subject = claimAt(payload, oidc.subject_claim);
  if (typeof subject !== 'string' || !subject) return null;
  const identity: Identity = { actor: { type: 'api', id: `oidc:${subject}` }, roles: rolesFromClaim(claimAt(payload, oidc.roles_claim), oidc.role_map) };
  // A login per subject per hour (per process): each request is not one.
  const last = oidcSessions.get(identity.actor.id);
  if (db && (last === undefined || Date.now() - last > SESSION_MS)) {
    oidcSessions.set(identity.actor.id, Date.now());
    await audit(db, schema, { actor: identity.actor, action: 'auth.login', subject: `oidc:${oidc.issuer}`, details: { method: 'oidc', roles: identity.roles, jti: typeof payload.jti === 'string' ? payload.jti : null } });
  }
  return identity;
}

/** A caller silent this long starts a new session: its next request is audited as a login. */
const SESSION_MS = 3600_000;
const oidcSessions = new Map<string, number>();

/** What decides whether an approver may approve a held run: who triggered it, who last changed its config. */
export interface ApprovalSubject {
  actor: Actor;
  /** Who changed the mapping or settings the run was planned with, when known (config.changed audit rows). */
  configChangedBy?: Actor[];
}

const same = (a: Actor, b: Actor) => a.type === b.type && a.id === b.id;

/**
 * Four eyes: an identity with `approve` may approve or reject a held run, but never one it triggered itself
 * nor one planned with a config change it made. Returns the reason when it may not.
 */
export function mayApprove(identity: Identity, run: ApprovalSubject): { ok: true } | { ok: false; reason: string } {
  if (!identity.roles.some((r) => (ROLES[r] as readonly string[]).includes('approve'))) return { ok: false, reason: 'approving needs the approve permission (roles approver or admin)' };
  if (same(identity.actor, run.actor)) return { ok: false, reason: 'a run is never approved by who triggered it' };
  if (run.configChangedBy?.some((a) => same(identity.actor, a))) return { ok: false, reason: 'a run is never approved by who changed the config it was planned with' };
  return { ok: true };
}

/**
 * The API's one authentication hook, `authenticate(request)`, made from this module: the lead plugs
 * `requestAuthenticator(pool, schema, () => ctx.app.config.settings)` into it (settings are read per request, so a
 * reload's new OIDC settings apply at once).
 */
export function requestAuthenticator(db: Db, schema: string, settings: () => Pick<Settings, 'auth'>): (request: { headers: Record<string, string | string[] | undefined> }) => Promise<Identity | null> {
  return (request) => {
    const h = request.headers.authorization;
    return authenticate(db, schema, settings(), Array.isArray(h) ? h[0] : h);
  };
}
