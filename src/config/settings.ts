import { z } from 'zod';
import { Alerts } from './alerts.ts';
import { CronExpression, Duration, MappingSla } from './mapping.ts';

const Share = z.number().min(0, 'a share from 0 to 1').max(1, 'a share from 0 to 1');
const ident = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a column name: lower-case letters, digits and _');

/** Data-quality monitors on the warehouse (docs/monitors.md): each measures one thing and says ok, warning or critical. */
export const Monitor = z.discriminatedUnion('type', [
  z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).describe('unique name; blocks read "blocked: monitor <name>"'),
    type: z.literal('latency').describe('data latency: the age of the newest payment at the models\' as-of instant, and (with loaded_at) payment time to arrival'),
    warning: Duration.describe('newest payment older than this: warning'),
    critical: Duration.describe('older than this: critical'),
    loaded_at: ident.optional().describe('a column holding when each payment arrived: the p95 of arrival minus payment time is judged too'),
  }),
  z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
    type: z.literal('completeness').describe('payments per day against the median of the same weekday in the weeks before'),
    days: z.number().int().min(1).max(31).default(1).describe('complete days checked, the last before the as-of instant'),
    baseline_weeks: z.number().int().min(2).max(52).default(4).describe('same weekdays the baseline is the median of'),
    warning: Share.default(0.3).describe('a day this share below its baseline: warning'),
    critical: Share.default(0.6).describe('this share below: critical'),
    dimension: ident.optional().describe('a column of the payments (channel, country): each value is judged against its own baseline'),
  }),
  z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
    type: z.literal('model').describe('the current snapshot of the RFM model against the one before: segment shares (PSI), cut-points, metrics zeroed in a large segment'),
    warning: z.number().positive().default(0.1).describe('PSI of segment shares: warning'),
    critical: z.number().positive().default(0.25).describe('PSI: critical'),
    cut_point_change: Share.default(0.5).describe('a recency/frequency/monetary cut-point (p20..p80) moving by more than this share: warning'),
    large_segment: Share.default(0.05).describe('a segment at least this large whose frequency or monetary sums to zero: critical'),
  }),
]);
export type Monitor = z.infer<typeof Monitor>;

/** config/segsync.yaml: where the data is, where state lives, defaults, and named destination connections. */
export const Settings = z.strictObject({
  warehouse: z.strictObject({
    url: z.string().nullish().transform((v) => v || undefined).describe('postgres:// URL; SEGSYNC_DATABASE_URL wins; neither = embedded PGlite under .segsync/'),
  }).default({ url: undefined }).describe('where the payments and models live (and segsync\'s state)'),
  state: z.strictObject({
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('segsync').describe('schema for segsync\'s own tables (state, runs, receipts)'),
    receipts_retention_months: z.number().int().min(1).default(25).describe('months receipts are kept after their month ends (monthly partitions, dropped whole); 25 keeps a whole fiscal year for an audit held the year after'),
  }).default({ schema: 'segsync', receipts_retention_months: 25 }).describe('segsync\'s own tables'),
  models: z.strictObject({
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('public').describe('schema of the RFM models and the payments relation'),
    payments: z.string().regex(/^[a-z_][a-z0-9_.]*$/).default('fact_payments').describe('payments relation (user_id, payment_id, payment_date, payment_amount)'),
    schedule: CronExpression.optional().describe('cron expression for the daemon\'s model rebuilds'),
    freshness_sql: z.string().optional().describe('SQL returning one timestamptz: when the model data was last current'),
    dbt_run_results: z.string().optional().describe('path to a dbt target/run_results.json: the models are as fresh as its last all-successful run'),
  }).default({ schema: 'public', payments: 'fact_payments' }).describe('the RFM models and their input'),
  defaults: z.strictObject({
    dead_after: z.number().int().positive().default(5).describe('a record failing this many runs in a row is parked as dead (mappings may override)'),
    max_staleness: Duration.optional().describe('default for mappings: a newer model than this is required to sync'),
    sla: MappingSla.extend({ build: Duration.optional().describe('a model rebuild') }).default({})
      .describe('time limits per stage for every mapping (a mapping\'s own sla: wins) and for model builds'),
  }).default({ dead_after: 5, sla: {} }).describe('defaults for every mapping'),
  daemon: z.strictObject({
    port: z.number().int().min(0).max(65535).default(9464).describe('HTTP port for /healthz, /readyz, /metrics, /status, the API (/api/v1) and the dashboard'),
    host: z.string().default('127.0.0.1').describe('address the HTTP server binds (default: this machine only; 0.0.0.0 for every interface, behind SEGSYNC_API_TOKEN and TLS)'),
    timezone: z.string().default('UTC').describe('IANA time zone the cron schedules are read in'),
    drain_timeout: Duration.default('30s').describe('on SIGTERM, how long in-flight runs get to finish their batch'),
    catch_up: z.boolean().default(true).describe('at start, run once whatever missed its last scheduled time'),
  }).default({ port: 9464, host: '127.0.0.1', timezone: 'UTC', drain_timeout: '30s', catch_up: true }).describe('segsync daemon (docs/daemon.md)'),
  monitors: z.array(Monitor).default([]).superRefine((ms, ctx) => {
    const seen = new Set<string>();
    ms.forEach((m, i) => {
      if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `a second monitor named '${m.name}'` });
      seen.add(m.name);
      if ('warning' in m && 'critical' in m && typeof m.warning === 'number' && typeof m.critical === 'number' && m.warning > m.critical) {
        ctx.addIssue({ code: 'custom', path: [i, 'warning'], message: 'warning must not be above critical' });
      }
    });
  }).describe('data-quality monitors run after each models build; one at critical blocks the mappings with after: [models] (docs/monitors.md)'),
  public_url: z.string().url('a URL such as https://segsync.example.com').optional().describe('the dashboard\'s base URL: alerts link to <public_url>/runs/<id> and <public_url>/mappings/<name>'),
  alerts: Alerts.default(Alerts.parse({})).describe('alerts to people: channels, routes, grouping, silences, quiet hours, inhibition (docs/alerts.md)'),
  auth: z.strictObject({
    oidc: z.strictObject({
      issuer: z.string().url().describe('the OpenID provider\'s issuer URL (the iss claim)'),
      audience: z.string().min(1).describe('the aud claim segsync\'s tokens carry'),
      jwks_url: z.string().url().optional().describe('its JSON Web Key Set (default: <issuer>/.well-known/jwks.json)'),
      roles_claim: z.string().min(1).default('groups').describe('the claim holding the caller\'s groups or roles (a dotted path for nested claims)'),
      role_map: z.record(z.string(), z.array(z.enum(['viewer', 'operator', 'approver', 'editor', 'auditor', 'admin']))).default({})
        .describe('claim value -> segsync roles; a caller with none of these values has no access'),
      subject_claim: z.string().min(1).default('sub').describe('the claim recorded as the actor (sub, email, preferred_username)'),
    }).optional().describe('OIDC bearer tokens (docs/security.md)'),
  }).default({}).describe('who may call the API (API tokens are made with segsync tokens create)'),
  privacy: z.strictObject({
    controller: z.string().optional().describe('the controller named in the record of processing (Art. 30 GDPR)'),
    purposes: z.array(z.string()).default(['customer segmentation (RFM) shared with the CRM and marketing tools named as recipients'])
      .describe('purposes of the processing'),
    data_subjects: z.array(z.string()).default(['customers']).describe('categories of data subjects'),
    retention: z.string().default('while the person is a customer; ledger payloads until erased (segsync forget)').describe('time limits for erasure'),
    erasure_sla: Duration.default('30d').describe('an erasure not finished in every destination within this raises an event'),
    erasure_schedule: CronExpression.default('0 * * * *').describe('when the daemon retries open erasures (cron)'),
    erasure: z.record(z.string(), z.strictObject({
      api_url: z.string().url().describe('the regulation API: https://api.segmentapis.com (Segment Public API) or https://api.rudderstack.com (RudderStack)'),
      token: z.string().min(1).describe('its token, from an environment variable: ${SEGMENT_PUBLIC_API_TOKEN}'),
    })).default({}).describe('per CDP connection name: where segsync forget files its suppression-and-deletion regulation'),
  }).default({ erasure: {}, erasure_schedule: '0 * * * *', purposes: ['customer segmentation (RFM) shared with the CRM and marketing tools named as recipients'], data_subjects: ['customers'], retention: 'while the person is a customer; ledger payloads until erased (segsync forget)', erasure_sla: '30d' })
    .describe('the record of processing and erasure (docs/security.md)'),
  connections: z.record(z.string(), z.looseObject({ type: z.string().min(1) })).default({})
    .describe('named destination connections: {type, ...settings}; secrets as ${ENV_VAR}'),
});
export type Settings = z.infer<typeof Settings>;
