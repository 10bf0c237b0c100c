import cron from 'node-cron';
import { z } from 'zod';
import { TRANSFORM_NAMES } from './transforms.ts';

/**
 * A mapping is one sync: which rows (source), where to (destination), which fields, and how removals and
 * failures are treated. This schema is the single source of truth: `validate`, the docs and the types come
 * from it. Unknown keys are errors, so a typo never silently turns a setting off. Blocks that belong to one
 * destination (HubSpot's `tickets:`) are declared and typed by that destination (DestinationDefinition
 * .mappingBlocks) and checked by the loader beside this schema.
 */

export const TransformName = z.enum(TRANSFORM_NAMES)
  .describe('built-in transform, applied in SQL so that the payload hash covers exactly what is sent');
export const Transform = z.union([
  TransformName,
  z.strictObject({ map: z.record(z.string(), z.string()).describe('value -> value; unmapped values pass through') }),
]);
export type Transform = z.infer<typeof Transform>;

/** What kind of personal data a field (or the key) holds: decides masking and the record of processing (docs/security.md). */
export const PII_CLASSES = ['email', 'phone', 'name', 'free_text', 'none'] as const;
export const PiiClass = z.enum(PII_CLASSES).describe('personal data it holds: email, phone, name, free_text (may quote anything) or none');
export type PiiClass = z.infer<typeof PiiClass>;

export const FieldMapping = z.strictObject({
  to: z.string().min(1).describe('destination field (property, sObject field, trait, column)'),
  from: z.string().min(1).describe('source column'),
  transform: Transform.optional(),
  pii: PiiClass.optional().describe('personal data the field holds (email, phone, name, free_text): masked wherever values are shown; listed in the record of processing'),
});
export type FieldMapping = z.infer<typeof FieldMapping>;

export const Source = z.strictObject({
  model: z.string().regex(/^[^.]+(\.[^.]+)?$/, 'a relation name: relation or schema.relation').optional().describe('a relation: table or view, optionally schema-qualified (default schema: models.schema)'),
  sql: z.string().min(1).optional().describe('one SELECT whose rows are the records, run read-only; ${VAR} in it is sent as a bind parameter, never pasted into the SQL'),
  key: z.string().min(1).describe('the column that identifies a record; must be unique, not NULL and not empty or whitespace-only'),
  key_pii: PiiClass.optional().describe('personal data the key is (e.g. email): keys are then masked wherever shown'),
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

/** A share of records: 0 to 1 (0.05 = 5%). */
const Share = z.number().min(0, 'a share from 0 to 1 (0.05 = 5%)').max(1, 'a share from 0 to 1 (0.05 = 5%)');

export const GUARDRAIL_RULES = ['removals', 'population', 'changed', 'distribution', 'anomaly'] as const;
export const GuardrailRule = z.enum(GUARDRAIL_RULES);
export type GuardrailRule = z.infer<typeof GuardrailRule>;

/**
 * Rules that hold a run for approval when its change is abnormal (docs/guardrails.md). On for every mapping
 * with these defaults; `disable: [rule]` turns one off. Every figure is computed in SQL in the plan's snapshot.
 */
export const Guardrails = z.strictObject({
  removals: z.strictObject({
    max_share: Share.default(0.05).describe('hold when the run removes (clears or deletes) more than this share of the delivered records'),
    max_count: z.number().int().min(0).optional().describe('hold when it removes more than this many records, whatever the share'),
    min_count: z.number().int().min(0).default(10).describe('fewer removals than this never hold (a handful leaving is ordinary)'),
  }).default({ max_share: 0.05, min_count: 10 }).describe('mass removal'),
  population: z.strictObject({
    min: z.number().int().min(0).default(1).describe('hold when the source has fewer records than this (an empty model always holds)'),
    max_drop: Share.default(0.2).describe('hold when the source shrank by more than this share since the last delivered run'),
    min_drop_count: z.number().int().min(0).default(10).describe('a source that shrank by fewer records than this never holds'),
  }).default({ min: 1, max_drop: 0.2, min_drop_count: 10 }).describe('an empty or shrunk model'),
  changed: z.strictObject({
    max_share: Share.default(0.7).describe('hold when more than this share of the delivered records change segment (the seed SQL\'s PARTITION BY bug moves 74%)'),
    min_count: z.number().int().min(0).default(10).describe('fewer segment changes than this never hold'),
  }).default({ max_share: 0.7, min_count: 10 }).describe('records whose segment changes (the transition matrix against the delivered state)'),
  distribution: z.strictObject({
    warn: z.number().positive().default(0.1).describe('population stability index of segment shares that warns'),
    hold: z.number().positive().default(0.25).describe('population stability index that holds'),
    min_population: z.number().int().min(0).default(100).describe('segment shares of fewer records than this are not judged (too noisy)'),
  }).default({ warn: 0.1, hold: 0.25, min_population: 100 }).refine((d) => d.warn <= d.hold, { message: 'distribution.warn must not be above distribution.hold' })
    .describe('shift of segment shares against the last delivered run (PSI)'),
  anomaly: z.strictObject({
    runs: z.number().int().min(3).max(200).default(12).describe('delivered runs the baseline is learnt from (the current run and held runs never are)'),
    min_runs: z.number().int().min(3).max(200).default(5).describe('fewer delivered runs than this: the rule waits'),
    z: z.number().positive().default(5).describe('robust z-score (median/MAD) above which a figure holds the run'),
    seasonality: z.enum(['none', 'weekday']).default('none').describe('weekday: learn from runs on the same weekday'),
    min_population: z.number().int().min(0).default(100).describe('figures of fewer delivered records than this are not judged (too noisy)'),
  }).default({ runs: 12, min_runs: 5, z: 5, seasonality: 'none', min_population: 100 }).describe('per-run figures (changed share, removals, segment shares, R/F/M cut-points) against the history'),
  hold_expires: Duration.default('72h').describe('a held run nobody approved is cancelled after this long'),
  disable: z.array(GuardrailRule).default([]).describe('rules turned off for this mapping'),
}).describe('guardrails: runs held until approved when a change is abnormal (docs/guardrails.md)');
export type Guardrails = z.infer<typeof Guardrails>;

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
  freshness: z.enum(['data', 'build']).optional()
    .describe("what max_staleness measures: data (default) = the model's as-of instant (its newest snapshot); build = the time since the last successful models build, for data whose as-of is historical"),
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
  guardrails: Guardrails.default(Guardrails.parse({})),
});
export type Mapping = z.infer<typeof Mapping>;
