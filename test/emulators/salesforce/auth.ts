import { createHash, randomBytes, verify } from 'node:crypto';

/**
 * The OAuth token endpoint: client credentials and the JWT bearer grant (RS256 assertion verified against
 * the connected app's certificate). Neither grant returns a refresh token, as in a real org.
 */

export interface AuthConfig {
  clientId: string;
  clientSecret: string;
  /** PEM public key of the connected app's certificate (JWT bearer). */
  jwtPublicKey?: string;
  /** The username a JWT's `sub` must name. */
  username: string;
  /** Accepted `aud` values (login.salesforce.com, test.salesforce.com, or the emulator's own URL). */
  audiences: string[];
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
  token?: string;
}

function b64urlJson(part: string): Record<string, unknown> | null {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function verifyJwt(cfg: AuthConfig, assertion: string): string | null {
  if (!cfg.jwtPublicKey) return 'JWT bearer is not enabled for this connected app';
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'invalid assertion';
  const [h, p, s] = parts as [string, string, string];
  const header = b64urlJson(h);
  const claims = b64urlJson(p);
  if (!header || !claims || header.alg !== 'RS256') return 'invalid assertion';
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), cfg.jwtPublicKey, Buffer.from(s, 'base64url'));
  if (!ok) return 'invalid assertion';
  if (claims.iss !== cfg.clientId) return 'invalid client_id';
  if (claims.sub !== cfg.username) return 'user hasn\'t approved this consumer';
  if (!cfg.audiences.includes(String(claims.aud))) return 'audience is invalid';
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp < now || claims.exp > now + 300) return 'expired authorization code';
  return null;
}

export function tokenEndpoint(cfg: AuthConfig, form: URLSearchParams, baseUrl: string): TokenReply {
  const grant = form.get('grant_type');
  if (grant === 'client_credentials') {
    if (form.get('client_id') !== cfg.clientId || form.get('client_secret') !== cfg.clientSecret) {
      return { status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
    }
  } else if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    const why = verifyJwt(cfg, form.get('assertion') ?? '');
    if (why) return { status: 400, body: { error: 'invalid_grant', error_description: why } };
  } else {
    return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant type not supported' } };
  }
  const token = `00D000000000001!${randomBytes(24).toString('base64url')}`;
  const issuedAt = String(Date.now());
  return {
    status: 200,
    token,
    body: {
      access_token: token, instance_url: baseUrl, id: `${baseUrl}/id/00D000000000001AAA/005000000000001AAA`,
      token_type: 'Bearer', issued_at: issuedAt, scope: 'api',
      signature: createHash('sha256').update(`${issuedAt}${token}`).digest('base64'),
    },
  };
}
