import { createSign } from 'node:crypto';
import type jsforce from 'jsforce';
import { capBody, DestinationError } from '../../src/errors.ts';
import { classify } from './api.ts';
import type { SalesforceConnection } from './config.ts';

/**
 * Builds an authorised jsforce Connection for one of three ways in. Client credentials and JWT bearer get
 * no refresh token from Salesforce, so jsforce is given a refreshFn that simply asks for a new token: a
 * session that expires mid-run (401) is renewed and the request replayed by jsforce (request bodies must be
 * strings or buffers for that: a consumed stream cannot be sent twice). jsforce's own retries of
 * GET/PUT/DELETE are switched off: the engine alone retries, from the classified error.
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

/**
 * A failed token request. The token endpoint answering 5xx or 429, or not reachable, may work in a moment
 * (retryable); a refused grant (invalid_client, invalid_grant) will not. A token request changes nothing in
 * the org, so it is never in doubt.
 */
function authError(c: SalesforceConnection, err: unknown): DestinationError {
  const e = err as { name?: string; message?: string };
  const transient = /^ERROR_HTTP_(5\d\d|429)$/.test(e.name ?? '') || classify(err, 'login').code === 'NETWORK';
  return new DestinationError('AUTH_FAILED', `Salesforce ${c.auth} login at ${c.loginUrl} failed: ${e.name ?? 'error'}: ${capBody(e.message ?? '')}`.trim(), {
    cause: err, retryable: transient,
  });
}

/** Every request of `conn` goes out once: jsforce would otherwise retry GET/PUT/DELETE up to 5 times on 5xx. */
function withoutTransportRetries(conn: Connection): Connection {
  const transport = conn._transport;
  const httpRequest = transport.httpRequest.bind(transport);
  transport.httpRequest = (req, options = {}) => httpRequest(req, { ...options, retry: { ...options.retry, methods: [] } });
  return conn;
}

export async function openConnection(c: SalesforceConnection): Promise<Connection> {
  // Loaded on first use: processes whose mappings never go to Salesforce do not carry jsforce.
  const { default: jsforce } = await import('jsforce');
  if (c.auth === 'access_token') {
    // No refreshFn: a 401 surfaces as INVALID_SESSION_ID and the user must supply a fresh token.
    return withoutTransportRetries(new jsforce.Connection({ instanceUrl: c.instanceUrl!, accessToken: c.accessToken!, version: c.apiVersion }));
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
  withoutTransportRetries(conn);
  try {
    await conn.authorize(grantParams(c));
  } catch (err) {
    throw authError(c, err);
  }
  return conn;
}
