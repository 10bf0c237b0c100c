import { z } from 'zod';

/**
 * The `salesforce` connection block, mapping options and the mapping's `cases:` block. Credentials default
 * from the documented SALESFORCE_* environment variables when the block leaves them out, so the YAML never
 * has to hold a secret.
 */

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
};

const optional = z.string().optional().transform((v) => (v === '' ? undefined : v));

export const SalesforceConnection = z.looseObject({
  type: z.literal('salesforce'),
  api_version: z.string().regex(/^\d{2}\.0$/, 'an API version such as "62.0"').default('62.0')
    .describe('REST API version, pinned (jsforce defaults to 50.0 otherwise)'),
  instance_url: optional.describe('https://yourorg.my.salesforce.com (env SALESFORCE_INSTANCE_URL)'),
  access_token: optional.describe('a session or OAuth access token (env SALESFORCE_ACCESS_TOKEN); cannot be refreshed'),
  login_url: optional.describe('OAuth host for client credentials / JWT (env SALESFORCE_LOGIN_URL, default https://login.salesforce.com)'),
  client_id: optional.describe('connected app consumer key (env SALESFORCE_CLIENT_ID)'),
  client_secret: optional.describe('connected app consumer secret, client credentials flow (env SALESFORCE_CLIENT_SECRET)'),
  username: optional.describe('the integration user, JWT bearer flow (env SALESFORCE_USERNAME)'),
  jwt_private_key: optional.describe('PEM private key, JWT bearer flow (env SALESFORCE_JWT_PRIVATE_KEY)'),
  jwt_audience: optional.describe('JWT aud claim (env SALESFORCE_JWT_AUDIENCE, default the login URL)'),
  budget_share: z.number().gt(0).max(1).default(0.8)
    .describe('stop before this share of the org\'s daily API requests is used (Sforce-Limit-Info)'),
}).transform((c, ctx) => {
  const out = {
    apiVersion: c.api_version,
    instanceUrl: c.instance_url ?? env('SALESFORCE_INSTANCE_URL'),
    accessToken: c.access_token ?? env('SALESFORCE_ACCESS_TOKEN'),
    loginUrl: (c.login_url ?? env('SALESFORCE_LOGIN_URL') ?? 'https://login.salesforce.com').replace(/\/$/, ''),
    clientId: c.client_id ?? env('SALESFORCE_CLIENT_ID'),
    clientSecret: c.client_secret ?? env('SALESFORCE_CLIENT_SECRET'),
    username: c.username ?? env('SALESFORCE_USERNAME'),
    jwtPrivateKey: (c.jwt_private_key ?? env('SALESFORCE_JWT_PRIVATE_KEY'))?.replace(/\\n/g, '\n'),
    jwtAudience: c.jwt_audience ?? env('SALESFORCE_JWT_AUDIENCE'),
    budgetShare: c.budget_share,
  };
  const auth = out.jwtPrivateKey && out.username && out.clientId ? 'jwt' as const
    : out.clientId && out.clientSecret ? 'client_credentials' as const
      : out.accessToken && out.instanceUrl ? 'access_token' as const : null;
  if (!auth) {
    ctx.addIssue({
      code: 'custom',
      message: 'no Salesforce credentials: set SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN, or SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET (client credentials), or SALESFORCE_CLIENT_ID + SALESFORCE_USERNAME + SALESFORCE_JWT_PRIVATE_KEY (JWT bearer)',
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
    .describe('give up waiting for a Bulk job after this long; its records are failed as retryable'),
  lock_retries: z.number().int().min(0).max(5).default(2)
    .describe('re-sends of records that hit UNABLE_TO_LOCK_ROW within one deliver() before the engine retries them'),
  retry_base_ms: z.number().int().min(0).default(500).describe('first backoff for network errors and 5xx on writes'),
}).default({
  bulk_threshold: 2000, batch_size: 10_000, collections_concurrency: 4, bulk_poll_interval_ms: 2000, bulk_poll_timeout_ms: 600_000,
  lock_retries: 2, retry_base_ms: 500,
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
