import { z } from 'zod';
import { CronExpression, Duration, MappingSla } from './mapping.ts';

/** config/segsync.yaml: where the data is, where state lives, defaults, and named destination connections. */
export const Settings = z.strictObject({
  warehouse: z.strictObject({
    url: z.string().nullish().transform((v) => v || undefined).describe('postgres:// URL; SEGSYNC_DATABASE_URL wins; neither = embedded PGlite under .segsync/'),
  }).default({ url: undefined }).describe('where the payments and models live (and segsync\'s state)'),
  state: z.strictObject({
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('segsync').describe('schema for segsync\'s own tables (state, runs, receipts)'),
  }).default({ schema: 'segsync' }).describe('segsync\'s own tables'),
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
    port: z.number().int().min(0).max(65535).default(9464).describe('HTTP port for /healthz, /readyz, /metrics, /status'),
    host: z.string().default('0.0.0.0').describe('address the HTTP server binds'),
    timezone: z.string().default('UTC').describe('IANA time zone the cron schedules are read in'),
    drain_timeout: Duration.default('30s').describe('on SIGTERM, how long in-flight runs get to finish their batch'),
    catch_up: z.boolean().default(true).describe('at start, run once whatever missed its last scheduled time'),
  }).default({ port: 9464, host: '0.0.0.0', timezone: 'UTC', drain_timeout: '30s', catch_up: true }).describe('segsync daemon (docs/daemon.md)'),
  connections: z.record(z.string(), z.looseObject({ type: z.string().min(1) })).default({})
    .describe('named destination connections: {type, ...settings}; secrets as ${ENV_VAR}'),
});
export type Settings = z.infer<typeof Settings>;
