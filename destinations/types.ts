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

export type OutcomeStatus = 'delivered' | 'failed' | 'deferred';

export interface RecordOutcome {
  key: string;
  /** delivered: confirmed by the destination; failed: rejected; deferred: not attempted (budget spent, stopping). */
  status: OutcomeStatus;
  destinationId?: string | null;
  /** true when the destination created the record (HubSpot `new`, Salesforce `created`). */
  created?: boolean;
  errorCode?: string;
  errorMessage?: string;
  /** A failed record that may succeed if sent again (row lock, transient). */
  retryable?: boolean;
  /** Request or correlation id from the destination, for support tickets and audits. */
  requestId?: string;
}

/**
 * A batch call's result: one outcome per change, in any order. Throw a DestinationError only when the whole
 * batch failed (network, 5xx, 429: retryable; 401/403: not), and BudgetExhaustedError when the daily budget
 * is spent.
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
  /** `segsync setup`: create (apply=true) or list what the mapping needs on the destination side. */
  setup?(apply: boolean): Promise<SetupReport>;
  close(): Promise<void>;
}

export interface ConnectContext<C, O> {
  /** The connection block from config/segsync.yaml, `${ENV}` already interpolated and parsed. */
  connection: C;
  connectionName: string;
  mapping: Mapping;
  /** mapping.destination.options, parsed with optionsSchema. */
  options: O;
  /** Child logger with {mapping, destination} bound. */
  log: Logger;
  /** Shared across every mapping of one process: rate budgets per account live here. */
  shared: Map<string, unknown>;
  /** The run this session delivers for; absent for validate, plan, setup and reconcile. */
  runId?: number;
}

export interface DestinationDefinition<C = unknown, O = unknown> {
  type: string;
  description: string;
  connectionSchema: z.ZodType<C>;
  optionsSchema: z.ZodType<O>;
  /** Removal ops this destination supports (the mapping's on_removed must be one of them). */
  supportsRemoval: ReadonlyArray<'clear' | 'delete'>;
  connect(ctx: ConnectContext<C, O>): Promise<DestinationSession>;
}
