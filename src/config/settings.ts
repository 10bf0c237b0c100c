import { z } from 'zod';
import { Duration } from './mapping.ts';

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
    schedule: z.string().optional().describe('cron expression for the daemon\'s model rebuilds'),
    freshness_sql: z.string().optional().describe('SQL returning one timestamptz: when the model data was last current'),
  }).default({ schema: 'public', payments: 'fact_payments' }).describe('the RFM models and their input'),
  defaults: z.strictObject({
    dead_after: z.number().int().positive().default(5).describe('a record failing this many runs in a row is parked as dead (mappings may override)'),
    max_staleness: Duration.optional().describe('default for mappings: a newer model than this is required to sync'),
  }).default({ dead_after: 5 }).describe('defaults for every mapping'),
  connections: z.record(z.string(), z.looseObject({ type: z.string().min(1) })).default({})
    .describe('named destination connections: {type, ...settings}; secrets as ${ENV_VAR}'),
});
export type Settings = z.infer<typeof Settings>;
