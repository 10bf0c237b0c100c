import type { z } from 'zod';
import type { Logger } from '../src/log.ts';
import type { Mapping } from '../src/config/mapping.ts';

/**
 * The destination contract. Each `destinations/<type>/index.ts` exports one `DestinationDefinition`,
 * collected in `destinations/registry.ts`. The engine owns planning, the ledger, retries and receipts; a
 * destination only knows how to talk to one kind of system.
 */

/** A mapped payload: destination field -> value, exactly as sent (transforms already applied). */
export type Payload = Record<string, string | number | boolean | null>;

export type Op = 'create' | 'update' | 'remove';

/** One record's change. The destination gets the change, not a snapshot. */
export interface Change {
  key: string;
  op: Op;
  /** What was last confirmed delivered (null for a create). */
  before: Payload | null;
  /** What to deliver now (null for a remove). */
  after: Payload | null;
  /** md5 of the mapped payload; stable for the same values. Use it for idempotency / dedup ids. */
  payloadHash: string;
  /** The destination's own id from an earlier delivery, when known. */
  destinationId: string | null;
  /** 1 for the first try of this change in this run. */
  attempt: number;
}

/**
 * delivered: confirmed by the destination. failed: rejected (with `retryable` when sending again may help).
 * deferred: not attempted (budget spent, stopping). in_doubt: the request left and no answer came back (a
 * timeout, a connection reset after sending, a Bulk job still running at the poll deadline): the destination
 * may or may not hold it. The engine resends in-doubt records next run, counts them as resends, and never
 * counts them towards dead_after.
 */
export type OutcomeStatus = 'delivered' | 'failed' | 'deferred' | 'in_doubt';

export interface RecordOutcome {
  key: string;
  /** delivered: confirmed by the destination; failed: rejected; deferred: not attempted (budget spent, stopping). */
  status: OutcomeStatus;
  destinationId?: string | null;
  /** true when the destination created the record (HubSpot `new`, Salesforce `created`). */
  created?: boolean;
  errorCode?: string;
  errorMessage?: string;
  /** A failed record that may succeed if sent again (row lock, transient). The engine decides when. */
  retryable?: boolean;
  /** With retryable: the destination said how long to wait (Retry-After). */
  retryAfterMs?: number;
  /** Request or correlation id from the destination, for support tickets and audits. */
  requestId?: string;
}

/**
 * A batch call's result: one outcome per change, in any order. Throw a DestinationError only when the whole
 * batch failed (network, 5xx, 429: retryable; 401/403: not; `inDoubt` when the request may have been applied),
 * and BudgetExhaustedError when the daily budget is spent. A batch sent as several requests reports each
 * request's records by that request's answer: records of an accepted request are delivered even when a later
 * request of the batch fails. Connectors never retry: they classify, the engine retries (src/sync/retry.ts).
 */
export interface BatchResult {
  outcomes: RecordOutcome[];
}

export interface DestinationLimits {
  /** Records per deliver() call, at most. */
  maxBatchSize: number;
  /**
   * Records per deliver() call when the mapping sets no batch_size (default: maxBatchSize). Lower than the
   * maximum where a smaller batch costs nothing in throughput but holds fewer records in memory at once.
   */
  defaultBatchSize?: number;
  /** Concurrent deliver() calls, at most, and the default when the mapping says nothing. */
  maxConcurrency: number;
  defaultConcurrency: number;
  /** Records per readBack() call, at most. */
  readBackBatchSize: number;
}

export interface FieldDescription {
  name: string;
  type: string;
  writable: boolean;
  /** For enumerations / picklists: the allowed values. */
  options?: string[];
  unique?: boolean;
  required?: boolean;
}

export interface ReadBackRequest {
  key: string;
  /** The payload as delivered (from the ledger). */
  expected: Payload;
  destinationId: string | null;
}

export type ReconcileStatus = 'verified' | 'drifted' | 'missing' | 'unverifiable';

export interface ReadBackResult {
  key: string;
  status: ReconcileStatus;
  /** The destination's current values of the mapped fields (when it could read them). */
  actual?: Payload;
  /** Fields whose value differs (drifted). */
  driftedFields?: string[];
  destinationId?: string | null;
  detail?: string;
}

export interface SetupReport {
  /** What exists, what was created, what an admin must create by hand. */
  lines: string[];
}

/**
 * Follow-up work of a record that lives on other objects of the destination: the segment and priority on a
 * contact's open HubSpot tickets or Salesforce Cases. It has its own outcome and its own pending state in the
 * ledger (state.followups): a contact whose follow-up failed or was deferred stays delivered, and only the
 * follow-up is retried next run, inside the same rate budget.
 */
export interface FollowUpItem {
  key: string;
  /** The destination id of the record (contact) the follow-up belongs to. */
  destinationId: string;
  /** The record's payload as confirmed delivered; null for a removed record (the follow-up clears). */
  payload: Payload | null;
}

export interface FollowUpOutcome {
  key: string;
  /** done: written or nothing to write; failed: rejected; deferred: not attempted (budget, stopping). */
  status: 'done' | 'failed' | 'deferred';
  errorCode?: string;
  errorMessage?: string;
  retryable?: boolean;
}

export interface FollowUps {
  /** What the follow-up writes, for receipts and logs: 'tickets', 'cases'. */
  readonly kind: string;
  /** Applies the follow-up of these records; one outcome per item. Throws like deliver() for whole-call failures. */
  apply(items: FollowUpItem[], signal: AbortSignal): Promise<FollowUpOutcome[]>;
  /**
   * Destination ids of records (contacts) that have follow-up objects (open tickets, Cases) created or changed
   * at or after `since`: the engine stamps them from the ledger even when the record itself did not change.
   */
  changedSince(since: Date, signal: AbortSignal): Promise<string[]>;
}

export interface DestinationSession {
  readonly limits: DestinationLimits;
  /** Reachable and authorised; throws a DestinationError saying what is wrong. */
  check(): Promise<void>;
  /** Fields of the mapped object, fetched once per session. */
  describeFields(): Promise<FieldDescription[]>;
  /** Problems with the mapping against the destination's schema (empty when fine). */
  validateMapping(): Promise<string[]>;
  deliver(changes: Change[], signal: AbortSignal): Promise<BatchResult>;
  readBack(records: ReadBackRequest[], signal: AbortSignal): Promise<ReadBackResult[]>;
  /** Follow-up work (tickets, Cases) when the mapping asks for it; absent or null otherwise. */
  readonly followUps?: FollowUps | null;
  /** `segsync setup`: create (apply=true) or list what the mapping needs on the destination side. */
  setup?(apply: boolean): Promise<SetupReport>;
  close(): Promise<void>;
}

/** Top-level mapping blocks a destination owns, by name, each typed by the destination's own schema. */
export type MappingBlocks = Record<string, z.ZodType>;

/** The parsed values of the blocks a mapping uses (a block the mapping leaves out is absent). */
export type MappingBlockValues<B extends MappingBlocks> = { readonly [K in keyof B]?: z.output<B[K]> };

export interface ConnectContext<C, O, B extends MappingBlocks = MappingBlocks> {
  /** The connection block from config/segsync.yaml, `${ENV}` already interpolated and parsed. */
  connection: C;
  connectionName: string;
  mapping: Mapping;
  /** mapping.destination.options, parsed with optionsSchema. */
  options: O;
  /**
   * The destination-owned blocks the mapping uses, parsed with mappingBlocks (checked at load, with
   * positions); absent when it uses none.
   */
  blocks?: MappingBlockValues<B>;
  /** Child logger with {mapping, destination} bound. */
  log: Logger;
  /** Shared across every mapping of one process: rate budgets per account live here. */
  shared: Map<string, unknown>;
  /** The run this session delivers for; absent for validate, plan, setup and reconcile. */
  runId?: number;
  /**
   * The ledger's identity: made once when the state schema is created, so that output written by two ledgers
   * (a new embedded database, a switch to a server) can be told apart. Absent where no state is open.
   */
  ledgerId?: string;
}

export interface DestinationDefinition<C = unknown, O = unknown, B extends MappingBlocks = MappingBlocks> {
  type: string;
  description: string;
  connectionSchema: z.ZodType<C>;
  optionsSchema: z.ZodType<O>;
  /**
   * Top-level blocks of a mapping that this destination owns (HubSpot: `tickets:`), typed by its own schemas.
   * The loader checks them with file:line:column when the project is loaded, refuses them on a mapping of
   * another destination type, and the docs list them under the destination.
   */
  mappingBlocks?: B;
  /** Removal ops this destination supports (the mapping's on_removed must be one of them). */
  supportsRemoval: ReadonlyArray<'clear' | 'delete'>;
  connect(ctx: ConnectContext<C, O, B>): Promise<DestinationSession>;
}
