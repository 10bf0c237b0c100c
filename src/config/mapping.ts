import cron from 'node-cron';
import { z } from 'zod';

/**
 * A mapping is one sync: which rows (source), where to (destination), which fields, and how removals and
 * failures are treated. This schema is the single source of truth: `validate`, the docs and the types come
 * from it. Unknown keys are errors, so a typo never silently turns a setting off.
 */

export const TransformName = z.enum(['string', 'number', 'integer', 'lowercase', 'uppercase', 'slug', 'trim', 'date', 'datetime', 'epoch_ms'])
  .describe('built-in transform, applied in SQL so that the payload hash covers exactly what is sent');
export const Transform = z.union([
  TransformName,
  z.strictObject({ map: z.record(z.string(), z.string()).describe('value -> value; unmapped values pass through') }),
]);
export type Transform = z.infer<typeof Transform>;

export const FieldMapping = z.strictObject({
  to: z.string().min(1).describe('destination field (property, sObject field, trait, column)'),
  from: z.string().min(1).describe('source column'),
  transform: Transform.optional(),
});
export type FieldMapping = z.infer<typeof FieldMapping>;

export const Source = z.strictObject({
  model: z.string().regex(/^[^.]+(\.[^.]+)?$/, 'a relation name: relation or schema.relation').optional().describe('a relation: table or view, optionally schema-qualified (default schema: models.schema)'),
  sql: z.string().min(1).optional().describe('one SELECT whose rows are the records, run read-only; ${VAR} in it is sent as a bind parameter, never pasted into the SQL'),
  key: z.string().min(1).describe('the column that identifies a record; must be unique, not NULL and not empty or whitespace-only'),
}).refine((s) => (s.model === undefined) !== (s.sql === undefined), { message: 'give exactly one of source.model or source.sql' });
export type Source = z.infer<typeof Source>;

export const Duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as 90s, 15m, 26h or 2d');

/** A node-cron expression: five fields, or six with seconds first. Checked here so `validate` catches it too. */
export const CronExpression = z.string().superRefine((value, ctx) => {
  const v = cron.validateDetailed(value);
  if (!v.valid) {
    const why = v.errors.map((e) => `${e.field}${e.value === undefined ? '' : ` '${e.value}'`}: ${e.message}`).join('; ');
    ctx.addIssue({ code: 'custom', message: `invalid cron expression '${value}'${why ? `: ${why}` : ''} (five fields, or six with seconds first, e.g. "0 */2 * * *" or "*/30 * * * * *")` });
  }
});

/** Time limits per stage; a run that takes longer is not stopped, but a breach event is recorded (docs/daemon.md). */
export const MappingSla = z.strictObject({
  run: Duration.optional().describe('the whole run, from start to the last receipt'),
  plan: Duration.optional().describe('computing the changes against the delivered state'),
  deliver: Duration.optional().describe('sending the changes to the destination'),
  reconcile: Duration.optional().describe('reading delivered records back'),
});
export type MappingSla = z.infer<typeof MappingSla>;

export const Mapping = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _').describe('unique name; the state and receipts are kept per name'),
  description: z.string().optional().describe('free text for people reading the mapping'),
  source: Source.describe('where the records come from'),
  destination: z.strictObject({
    connection: z.string().min(1).describe('a connection named in config/segsync.yaml'),
    object: z.string().min(1).describe('what records become: contacts, Contact, a file stem, identify'),
    match_key: z.string().min(1).describe('the destination field that holds the source key (HubSpot idProperty, Salesforce external ID, file column, CDP userId)'),
    options: z.record(z.string(), z.unknown()).default({}).describe('destination-specific settings, checked by the destination'),
  }),
  fields: z.array(FieldMapping).min(1).describe('destination field <- source column'),
  mode: z.enum(['upsert', 'update', 'mirror']).default('upsert')
    .describe('upsert: create and update; update: only records the destination already has; mirror: upsert and remove what left the model'),
  on_removed: z.enum(['keep', 'clear', 'delete']).default('keep')
    .describe('a key that left the model: keep it as is, clear the mapped fields, or delete/archive it (an explicit opt-in)'),
  schedule: CronExpression.optional().describe('cron expression for the daemon (seconds field allowed)'),
  after: z.array(z.literal('models', { error: "the daemon can wait for: models" })).optional().describe('run only after these succeeded and are fresh: [models]'),
  max_staleness: Duration.optional().describe('newest snapshot older than this blocks the sync'),
  reconcile: z.strictObject({
    schedule: CronExpression.describe('when the daemon reads delivered records back'),
    sample: z.number().int().positive().default(100).describe('records checked per read-back (random sample)'),
    all: z.boolean().default(false).describe('check every delivered record instead of a sample'),
    repair: z.boolean().default(false).describe('queue drifted and missing records so the next run sends them again'),
  }).optional().describe('for the daemon: scheduled read-back reconciliation (docs/daemon.md)'),
  sla: MappingSla.optional().describe('time limits per stage, e.g. {run: 15m, deliver: 10m}; a breach records an event'),
  batch_size: z.number().int().positive().optional().describe('records per destination call (default: the destination\'s own, 5,000 for file; capped by its limit)'),
  concurrency: z.number().int().positive().optional().describe('destination calls in flight (capped by the destination limit)'),
  dead_after: z.number().int().positive().optional().describe('a record that failed this many runs in a row is marked dead'),
  tickets: z.record(z.string(), z.unknown()).optional().describe('HubSpot: write the segment onto open tickets (see docs/destinations/hubspot.md)'),
  cases: z.record(z.string(), z.unknown()).optional().describe('Salesforce: write the segment onto open Cases (see docs/destinations/salesforce.md)'),
});
export type Mapping = z.infer<typeof Mapping>;
