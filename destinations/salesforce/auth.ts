import { createSign } from 'node:crypto';
import type jsforce from 'jsforce';
import { capBody, DestinationError } from '../../src/errors.ts';
import type { SalesforceConnection } from './config.ts';

/**
 * Builds an authorised jsforce Connection for one of three ways in. Client credentials and JWT bearer get
 * no refresh token from Salesforce, so jsforce is given a refreshFn that simply asks for a new token: a
 * session that expires mid-run (401) is renewed and the request replayed by jsforce.
 */

export type Connection = InstanceType<typeof jsforce.Connection>;

const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** An RS256 JWT bearer assertion, signed with node:crypto (valid 3 minutes, the most Salesforce accepts). */
export function jwtAssertion(c: { clientId: string; username: string; audience: string; privateKey: string }, now = Date.now()): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iss: c.clientId, sub: c.username, aud: c.audience, exp: Math.floor(now / 1000) + 180 })}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(c.privateKey).toString('base64url');
  return `${unsigned}.${signature}`;
}

function grantParams(c: SalesforceConnection): { grant_type: string; [name: string]: string } {
  if (c.auth === 'jwt') {
    return {
      grant_type: JWT_GRANT,
      assertion: jwtAssertion({ clientId: c.clientId!, username: c.username!, audience: c.jwtAudience ?? c.loginUrl, privateKey: c.jwtPrivateKey! }),
    };
  }
  return { grant_type: 'client_credentials' };
}

function authError(c: SalesforceConnection, err: unknown): DestinationError {
  const e = err as { name?: string; message?: string };
  return new DestinationError('AUTH_FAILED', `Salesforce ${c.auth} login at ${c.loginUrl} failed: ${e.name ?? 'error'}: ${capBody(e.message ?? '')}`.trim(), {
    cause: err, retryable: false,
  });
}

export async function openConnection(c: SalesforceConnection): Promise<Connection> {
  // Loaded on first use: processes whose mappings never go to Salesforce do not carry jsforce.
  const { default: jsforce } = await import('jsforce');
  if (c.auth === 'access_token') {
    // No refreshFn: a 401 surfaces as INVALID_SESSION_ID and the user must supply a fresh token.
    return new jsforce.Connection({ instanceUrl: c.instanceUrl!, accessToken: c.accessToken!, version: c.apiVersion });
  }
  // JWT: the consumer key goes in the assertion, not as client_id, so the oauth2 client carries only the URL.
  const oauth2 = c.auth === 'jwt' ? { loginUrl: c.loginUrl } : { loginUrl: c.loginUrl, clientId: c.clientId!, clientSecret: c.clientSecret! };
  const conn: Connection = new jsforce.Connection({
    oauth2,
    version: c.apiVersion,
    refreshFn: (self, callback) => {
      self.oauth2.requestToken(grantParams(c)).then(
        (res) => callback(null, res.access_token, res),
        (err: unknown) => callback(authError(c, err)),
      );
    },
  });
  try {
    await conn.authorize(grantParams(c));
  } catch (err) {
    throw authError(c, err);
  }
  return conn;
}
