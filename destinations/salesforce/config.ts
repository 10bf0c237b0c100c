import { z } from 'zod';

/**
 * The `salesforce` connection block, mapping options and the mapping's `cases:` block. Secrets reach the
 * block only through `${ENV}` interpolation in the YAML (config/segsync.yaml writes every credential as
 * `${SALESFORCE_...:-}`); nothing here reads the environment.
 */

const optional = z.string().optional().transform((v) => (v === '' ? undefined : v));

export const SalesforceConnection = z.looseObject({
  type: z.literal('salesforce'),
  api_version: z.string().regex(/^\d{2}\.0$/, 'an API version such as "62.0"').default('62.0')
    .describe('REST API version, pinned (jsforce defaults to 50.0 otherwise)'),
  instance_url: optional.describe('https://yourorg.my.salesforce.com, with access_token'),
  access_token: optional.describe('a session or OAuth access token; cannot be refreshed (write it as ${SALESFORCE_ACCESS_TOKEN})'),
  login_url: optional.describe('OAuth host for client credentials / JWT (default https://login.salesforce.com; your My Domain URL)'),
  client_id: optional.describe('connected app consumer key, client credentials and JWT bearer'),
  client_secret: optional.describe('connected app consumer secret, client credentials flow (write it as ${SALESFORCE_CLIENT_SECRET})'),
  username: optional.describe('the integration user, JWT bearer flow'),
  jwt_private_key: optional.describe('PEM private key, JWT bearer flow (write it as ${SALESFORCE_JWT_PRIVATE_KEY}; \\n escapes allowed)'),
  jwt_audience: optional.describe('JWT aud claim (default the login URL)'),
  budget_share: z.number().gt(0).max(1).default(0.8)
    .describe('stop before this share of the org\'s daily API requests is used (Sforce-Limit-Info)'),
}).transform((c, ctx) => {
  const out = {
    apiVersion: c.api_version,
    instanceUrl: c.instance_url,
    accessToken: c.access_token,
    loginUrl: (c.login_url ?? 'https://login.salesforce.com').replace(/\/$/, ''),
    clientId: c.client_id,
    clientSecret: c.client_secret,
    username: c.username,
    jwtPrivateKey: c.jwt_private_key?.replace(/\\n/g, '\n'),
    jwtAudience: c.jwt_audience,
    budgetShare: c.budget_share,
  };
  const auth = out.jwtPrivateKey && out.username && out.clientId ? 'jwt' as const
    : out.clientId && out.clientSecret ? 'client_credentials' as const
      : out.accessToken && out.instanceUrl ? 'access_token' as const : null;
  if (!auth) {
    ctx.addIssue({
      code: 'custom',
      message: 'no Salesforce credentials in the connection block: give instance_url + access_token, or client_id + client_secret (client credentials), or client_id + username + jwt_private_key (JWT bearer), each as ${ENV_VAR} (config/segsync.yaml reads SALESFORCE_INSTANCE_URL, SALESFORCE_ACCESS_TOKEN, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_USERNAME, SALESFORCE_JWT_PRIVATE_KEY)',
    });
    return z.NEVER;
  }
  return { ...out, auth };
});
export type SalesforceConnection = z.output<typeof SalesforceConnection>;

export const SalesforceOptions = z.strictObject({
  bulk_threshold: z.number().int().positive().default(2000)
    .describe('a deliver() call with at least this many upserts goes through Bulk API 2.0; fewer through sObject Collections'),
  batch_size: z.number().int().positive().max(150_000).default(10_000)
    .describe('records per deliver() call (one Bulk job at most); the engine batches by this'),
  collections_concurrency: z.number().int().min(1).max(10).default(4)
    .describe('Collections calls (200 records each) in flight within one deliver()'),
  bulk_poll_interval_ms: z.number().int().positive().default(2000),
  bulk_poll_timeout_ms: z.number().int().positive().default(600_000)
    .describe('stop waiting for a Bulk job after this long: the job is aborted and its records are in doubt (resent next run)'),
}).default({
  bulk_threshold: 2000, batch_size: 10_000, collections_concurrency: 4, bulk_poll_interval_ms: 2000, bulk_poll_timeout_ms: 600_000,
});
export type SalesforceOptions = z.output<typeof SalesforceOptions>;

export const CasesConfig = z.strictObject({
  segment_from: z.string().min(1).describe('the mapped Contact field whose value is the segment (e.g. RFM_Segment__c)'),
  segment_field: z.string().min(1).describe('the Case field that receives the segment'),
  priority_field: z.string().min(1).default('Priority').describe('the Case field that receives the priority'),
  priority: z.record(z.string(), z.string()).default({}).describe('segment -> priority; segments not listed leave the priority alone'),
  open_statuses: z.array(z.string().min(1)).min(1).optional()
    .describe('Case statuses that count as open; without it, open means IsClosed = false'),
  contact_field: z.string().min(1).default('ContactId').describe('the Case field that holds the contact (a lookup to the mapped object)'),
});
export type CasesConfig = z.output<typeof CasesConfig>;
