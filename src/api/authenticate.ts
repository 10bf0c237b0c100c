import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { authenticate as authenticateCredential } from '../auth/authenticate.ts';
import type { Identity } from '../auth/permissions.ts';
import { TOKEN_PREFIX, tokenHash } from '../auth/tokens.ts';
import { hasLiveTokens, useToken } from '../state/tokens.ts';

/**
 * Who is calling the API or the dashboard: an API token made with `segsync tokens create` (its role), an OIDC
 * bearer token from the issuer in settings `auth.oidc` (roles from its claim), both checked by src/auth; or
 * the bootstrap admin token from the environment, `SEGSYNC_API_TOKEN`. Each is sent as `Authorization: Bearer
 * <token>` or exchanged at the dashboard's login form for a session cookie (OIDC: bearer only). No credential
 * of any kind configured: the API and the dashboard refuse everything.
 */

export const SESSION_COOKIE = 'segsync_session';
const SESSION_MS = 12 * 3600_000;

/** Whether any credential can succeed at all (else the API answers 403 API_DISABLED). */
export async function credentialsConfigured(app: App): Promise<boolean> {
  if (process.env.SEGSYNC_API_TOKEN?.trim() || app.config.settings.auth.oidc) return true;
  return hasLiveTokens(app.warehouse.pool, app.config.settings.state.schema);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The identity a bearer token stands for, or null. The bootstrap token is compared in constant time; no token is ever logged. */
export async function verifyToken(token: string, app: App): Promise<Identity | null> {
  if (!token) return null;
  const expected = process.env.SEGSYNC_API_TOKEN?.trim();
  if (expected && timingSafeEqual(digest(token), digest(expected))) return { actor: { type: 'api', id: 'admin-token' }, roles: ['admin'] };
  return authenticateCredential(app.warehouse.pool, app.config.settings.state.schema, app.config.settings, `Bearer ${token}`);
}

/**
 * Dashboard sessions, in memory (a restart logs everyone out). Only a hash of the session id is kept. A session
 * lasts only as long as the credential it was made with: each request checks that credential again (an API
 * token revoked or expired, a bootstrap token changed, an OIDC token past its exp ends the session).
 */
type SessionCredential = { hash: string } | { jwt: string };
const sessions = new Map<string, { identity: Identity; expires: number; credential: SessionCredential }>();

/** `token` is the credential `identity` was verified from (verifyToken); the session ends when it stops verifying. */
export function createSession(identity: Identity, token: string): { id: string; maxAgeS: number } {
  const id = randomBytes(32).toString('base64url');
  const now = Date.now();
  for (const [k, s] of sessions) if (s.expires < now) sessions.delete(k);
  const bootstrap = identity.actor.type === 'api' && identity.actor.id === 'admin-token';
  const credential: SessionCredential = bootstrap || token.startsWith(TOKEN_PREFIX) ? { hash: tokenHash(token) } : { jwt: token };
  sessions.set(digest(id).toString('hex'), { identity, expires: now + SESSION_MS, credential });
  return { id, maxAgeS: SESSION_MS / 1000 };
}

/** Whether the credential a session was made with still verifies now. */
async function credentialLive(c: SessionCredential, app: App): Promise<boolean> {
  if ('jwt' in c) return (await verifyToken(c.jwt, app)) !== null;
  const expected = process.env.SEGSYNC_API_TOKEN?.trim();
  if (expected && timingSafeEqual(Buffer.from(tokenHash(expected), 'hex'), Buffer.from(c.hash, 'hex'))) return true;
  return (await useToken(app.warehouse.pool, app.config.settings.state.schema, c.hash)) !== null;
}

export function endSession(id: string): void {
  sessions.delete(digest(id).toString('hex'));
}

export function sessionCookie(request: FastifyRequest): string | null {
  const header = request.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SESSION_COOKIE) return v.join('=') || null;
  }
  return null;
}

/** How the request proved who it is: a bearer token or a session cookie (the latter needs CSRF care on POST). */
export type Via = 'bearer' | 'session';

/** The caller's identity from a bearer token or a session cookie, or null when neither holds. */
export async function authenticate(request: FastifyRequest, app: App): Promise<(Identity & { via: Via }) | null> {
  const auth = request.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    const identity = m ? await verifyToken(m[1]!, app) : null;
    return identity ? { ...identity, via: 'bearer' } : null;
  }
  const sid = sessionCookie(request);
  if (sid) {
    const s = sessions.get(digest(sid).toString('hex'));
    if (s && s.expires > Date.now()) {
      if (await credentialLive(s.credential, app)) return { ...s.identity, via: 'session' };
      endSession(sid);
    }
  }
  return null;
}
