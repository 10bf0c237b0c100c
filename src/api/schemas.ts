import { z } from 'zod';
import { RUN_STATES } from '../state/machine.ts';

/**
 * The API's requests and responses as zod schemas: routes validate requests with them, and the OpenAPI
 * document (/api/v1/openapi.json) is generated from them (z.toJSONSchema), so the two never disagree.
 * Times are ISO 8601 strings; everything is masked as the logs are.
 */

const Time = z.iso.datetime({ offset: true }).describe('ISO 8601 time');
const NullableTime = Time.nullable();
const Json = z.unknown();
const Counts = z.record(z.string(), z.unknown());

export const ErrorBody = z.object({
  error: z.looseObject({
    code: z.string().describe('stable code: NOT_FOUND, BAD_REQUEST, BAD_FILTER, BAD_CURSOR, UNAUTHENTICATED, FORBIDDEN, API_DISABLED, CONFLICT, ALREADY_DECIDED, LOCKED, ...'),
    message: z.string(),
  }),
}).meta({ id: 'Error' });

export const IdParam = z.object({ id: z.string().regex(/^[1-9][0-9]{0,17}$/, 'a run id: a positive integer') });
export const NameParam = z.object({ name: z.string().min(1) });
export const RecordParams = z.object({ mapping: z.string().min(1), key: z.string().min(1).describe('the record key, or its sealed reference (ref) from a run item or a timeline: keeps the key out of the URL') });

const Limit = z.string().regex(/^[0-9]+$/, 'a whole number').optional().describe('page size, 1-500 (default 50)');
const Cursor = z.string().optional().describe('nextCursor of the previous page');

export const RunsQuery = z.strictObject({
  mapping: z.string().optional().describe('only this mapping'),
  status: z.string().optional().describe(`comma-separated run states: ${RUN_STATES.join(', ')}`),
  since: Time.optional().describe('only runs started at or after this time'),
  limit: Limit,
  cursor: Cursor,
});

export const ItemsQuery = z.strictObject({
  op: z.enum(['create', 'update', 'remove']).optional(),
  limit: Limit,
  cursor: Cursor,
});

export const EventsQuery = z.strictObject({
  mapping: z.string().optional(),
  severity: z.string().optional().describe('comma-separated: info, warning, error, critical'),
  kind: z.string().optional(),
  run: z.string().regex(/^[1-9][0-9]*$/).optional().describe('only events of this run'),
  limit: Limit,
  cursor: Cursor,
});

export const SegmentsQuery = z.strictObject({
  mapping: z.string().optional().describe('the mapping whose changed share per run is shown (default: the first)'),
  snapshots: z.string().regex(/^[0-9]+$/).optional().describe('how many snapshots (default 36)'),
});

export const TriggerBody = z.strictObject({
  dryRun: z.boolean().default(false).describe('plan only: what a run would send and how the guardrails judge it; nothing is written or sent'),
}).default({ dryRun: false });

export const ReasonBody = z.strictObject({ reason: z.string().trim().min(1, 'a reason is required').max(2000) });
export const ApproveBody = ReasonBody.extend({ deliver: z.boolean().default(true).describe('deliver the approved plan right away (default); false: the next run delivers it') });

export const Verdict = z.looseObject({ rule: z.string(), verdict: z.string(), value: z.number().nullable(), threshold: z.number().nullable(), baseline: z.number().nullable(), detail: z.string() });

export const RunSummary = z.object({
  id: z.number().int(),
  mapping: z.string(),
  status: z.enum(RUN_STATES),
  actor: z.string(),
  destination: z.string(),
  configHash: z.string(),
  planned: Counts,
  outcome: Counts,
  error: z.string().nullable(),
  reason: z.string().nullable(),
  startedAt: Time,
  plannedAt: NullableTime,
  finishedAt: NullableTime,
  statusAt: Time,
  snapshotAt: NullableTime,
  links: z.object({ self: z.string(), dashboard: z.string() }),
}).meta({ id: 'RunSummary' });

export const RunList = z.object({ runs: z.array(RunSummary), nextCursor: z.string().nullable() });

export const RunDetail = RunSummary.extend({
  guardrails: z.object({ verdicts: z.array(Verdict), figures: Json, examples: Json, allowed: Json }).nullable(),
  items: z.array(z.object({ op: z.string(), n: z.number().int() })),
  outcomes: z.array(z.object({ op: z.string(), status: z.string(), n: z.number().int() })),
  errors: z.array(z.object({ code: z.string(), n: z.number().int(), example: z.string().nullable() })),
  transitions: z.array(z.object({ from: z.string(), to: z.string(), count: z.number().int() })),
  transitionField: z.string().nullable(),
  history: z.array(z.object({ at: Time, from: z.string().nullable(), to: z.string(), actor: z.string(), reason: z.string().nullable() })),
  actions: z.array(z.enum(['approve', 'reject', 'cancel'])).describe('what may be done to the run now'),
}).meta({ id: 'RunDetail' });

export const ItemList = z.object({
  items: z.array(z.object({ key: z.string(), ref: z.string().describe('sealed reference to the key for URLs: GET /records/{mapping}/{ref}'), op: z.string(), status: z.string(), before: Json, after: Json, errorCode: z.string().nullable(), requestId: z.string().nullable() })),
  nextCursor: z.string().nullable(),
});

export const MappingSummary = z.object({
  name: z.string(),
  description: z.string().nullable(),
  source: z.object({ model: z.string().nullable(), key: z.string() }),
  destination: z.object({ connection: z.string(), object: z.string().nullable(), matchKey: z.string() }),
  mode: z.string(),
  fields: z.array(z.object({ to: z.string(), from: z.string().nullable() })),
  schedule: z.string().nullable(),
  nextRun: NullableTime.describe('next scheduled time (the daemon runs it; `segsync ui` schedules nothing)'),
  maxStaleness: z.string().nullable(),
  freshness: z.object({ at: NullableTime, source: z.string().nullable(), stale: z.boolean().nullable(), problem: z.string().nullable() }),
  lastRun: RunSummary.nullable(),
  waiting: z.object({ id: z.number().int(), status: z.string(), since: Time, reason: z.string().nullable() }).nullable().describe('a run held for approval, or approved and waiting for delivery'),
}).meta({ id: 'MappingSummary' });

export const MappingList = z.object({ mappings: z.array(MappingSummary) });

export const TriggerAccepted = z.object({ runId: z.number().int(), mapping: z.string(), status: z.string(), links: z.object({ self: z.string(), dashboard: z.string() }) });

export const DryRun = z.object({
  mapping: z.string(),
  counts: Counts,
  samples: z.array(z.object({ key: z.string(), op: z.string(), before: Json, after: Json })),
  transitions: z.array(z.object({ from: z.string(), to: z.string(), count: z.number().int() })),
  transitionField: z.string().nullable(),
  guardrails: z.array(Verdict),
});

export const Decision = z.object({ runId: z.number().int(), mapping: z.string(), status: z.string(), by: z.string(), delivering: z.boolean() });

export const RecordTimeline = z.object({
  mapping: z.string(),
  key: z.string(),
  ref: z.string().describe('sealed reference to this key, for links that must not carry it'),
  delivered: z.object({
    payload: Json, destinationId: z.string().nullable(), deliveredAt: NullableTime, lastRunId: z.number().int().nullable(), removedAt: NullableTime,
    failCount: z.number().int(), lastErrorCode: z.string().nullable(), dead: z.boolean(), reconcileStatus: z.string().nullable(), reconciledAt: NullableTime,
  }).nullable(),
  runs: z.array(z.object({
    runId: z.number().int(), runStatus: z.string(), startedAt: Time, actor: z.string(), op: z.string().nullable(), before: Json, after: Json,
    receipt: z.object({
      status: z.string(), attempt: z.number().int(), requestId: z.string().nullable(), destinationId: z.string().nullable(), created: z.boolean().nullable(),
      errorCode: z.string().nullable(), errorMessage: z.string().nullable(), sentAt: NullableTime, recordedAt: Time,
    }).nullable(),
  })),
  readBacks: z.array(z.object({ at: Time, status: z.string(), driftedFields: z.array(z.string()).nullable(), actual: Json, detail: z.string().nullable() })),
  segments: z.array(z.object({ snapshotAt: Time, segment: z.string(), recency: z.number().nullable(), frequency: z.number().nullable(), monetary: z.number().nullable() }))
    .nullable().describe('the customer\'s segment per snapshot from rfm_segments_hist (null without that model)'),
}).meta({ id: 'RecordTimeline' });

export const EventList = z.object({
  events: z.array(z.object({ id: z.number().int(), at: Time, kind: z.string(), severity: z.string(), mapping: z.string().nullable(), runId: z.number().int().nullable(), message: z.string(), details: Json, dedupKey: z.string().nullable() })),
  nextCursor: z.string().nullable(),
});

export const MonitorList = z.object({
  monitors: z.array(z.object({
    monitor: z.string(), type: z.string(), severity: z.string(), value: z.number().nullable(), baseline: z.number().nullable(), threshold: z.number().nullable(),
    detail: z.string(), evidence: Json, at: Time, ackedAt: NullableTime, ackedBy: z.string().nullable(), ackReason: z.string().nullable(),
  })),
});

export const Segments = z.object({
  sizes: z.object({ snapshots: z.array(Time), segments: z.record(z.string(), z.array(z.number().int())) }).nullable(),
  flows: z.object({ from: Time, to: Time, flows: z.array(z.object({ from: z.string(), to: z.string(), count: z.number().int() })) }).nullable(),
  changed: z.object({ mapping: z.string(), runs: z.array(z.object({ runId: z.number().int(), at: Time, status: z.string(), changed: z.number().int(), total: z.number().int() })) }).nullable(),
});

export const RECEIPT_STATUSES = ['delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'] as const;

export const ReceiptsQuery = z.strictObject({
  mapping: z.string().optional(),
  key: z.string().optional(),
  run: z.string().regex(/^[1-9][0-9]*$/).optional(),
  status: z.enum(RECEIPT_STATUSES).optional(),
  limit: Limit,
});

export const ReceiptList = z.object({
  receipts: z.array(z.looseObject({
    run_id: z.number().int(), mapping: z.string(), key: z.string(), op: z.string(), status: z.string(), attempt: z.number().int(),
    destination_id: z.string().nullable(), request_id: z.string().nullable(), error_code: z.string().nullable(), reconcile_status: z.string().nullable(),
  })).describe('the ledger\'s receipt rows, newest run first, as `segsync receipts --format json` prints them'),
});
