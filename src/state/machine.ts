/**
 * The run's state machine: every state a run can be in and every transition it may make. The write path
 * (transition.ts) refuses anything not listed here; docs/sync.md's diagram is generated from this table
 * (`segsync state-diagram`, kept equal by test/state-machine.test.ts).
 */

export const RUN_STATES = [
  'planning', 'planned', 'held', 'approved', 'rejected', 'delivering',
  'succeeded', 'partial', 'failed', 'deferred', 'interrupted', 'blocked', 'cancelled',
] as const;
export type RunState = (typeof RUN_STATES)[number];

/** A run in one of these is over: nothing moves it again. */
export const FINAL_STATES = ['succeeded', 'partial', 'failed', 'deferred', 'interrupted', 'blocked', 'cancelled', 'rejected'] as const satisfies readonly RunState[];
export type FinalState = (typeof FINAL_STATES)[number];

/**
 * Runs a crash can leave behind: a process was planning or delivering them. Recovery (with the mapping's run
 * lock held, which proves no live process has them) closes them as interrupted. Held and approved runs wait
 * for a person or the next run, so they survive restarts and are never closed as abandoned.
 */
export const ABANDONABLE_STATES = ['planning', 'planned', 'delivering'] as const satisfies readonly RunState[];

/** Where a run starts: planned normally; blocked or failed when it could not even be planned (a visible row). */
export const INITIAL_STATES = ['planning', 'blocked', 'failed'] as const satisfies readonly RunState[];

/** Allowed transitions, with what each means (the diagram's labels). */
export const RUN_TRANSITIONS: Record<RunState, Partial<Record<RunState, string>>> = {
  planning: {
    planned: 'intent written',
    held: 'a guardrail tripped',
    failed: 'source, keys or destination unusable',
    interrupted: 'process stopped',
    cancelled: 'cancelled',
  },
  planned: {
    delivering: 'sending starts',
    held: 'a guardrail tripped',
    failed: 'pre-flight check failed',
    deferred: 'budget spent before sending',
    interrupted: 'process stopped',
    cancelled: 'cancelled',
  },
  held: {
    approved: 'approved',
    rejected: 'rejected',
    cancelled: 'expired or cancelled',
  },
  approved: {
    planning: 'model changed: re-plan',
    delivering: 'sending the held plan',
    failed: 'pre-flight check failed',
    interrupted: 'process stopped',
    cancelled: 'cancelled',
  },
  delivering: {
    succeeded: 'all confirmed',
    partial: 'some failed or in doubt',
    failed: 'nothing confirmed',
    deferred: 'budget spent',
    interrupted: 'stopped or crashed',
    cancelled: 'cancelled',
  },
  rejected: {},
  succeeded: {},
  partial: {},
  failed: {},
  deferred: {},
  interrupted: {},
  blocked: {},
  cancelled: {},
};

/** The states a run may be in for a transition to `to`. */
export function sourcesOf(to: RunState): RunState[] {
  return RUN_STATES.filter((s) => to in RUN_TRANSITIONS[s]);
}

export function isFinal(s: RunState): s is FinalState {
  return (FINAL_STATES as readonly string[]).includes(s);
}

/**
 * Items (one per planned record) move per batch: planned -> sending (recorded before the request leaves) ->
 * delivered | failed | deferred | in_doubt. An item of a batch whose answer never came is in_doubt; an item
 * never sent when the run stopped is deferred (receipt status interrupted after a stop, deferred after a
 * spent budget).
 */
export const ITEM_STATES = ['planned', 'sending', 'delivered', 'failed', 'deferred', 'in_doubt'] as const;
export type ItemState = (typeof ITEM_STATES)[number];

export const ITEM_TRANSITIONS: Record<ItemState, Partial<Record<ItemState, string>>> = {
  planned: { sending: 'batch request leaves', deferred: 'run stopped or budget spent' },
  sending: { delivered: 'confirmed', failed: 'rejected', deferred: 'not attempted', in_doubt: 'no answer (timeout, reset, crash)' },
  delivered: {},
  failed: {},
  deferred: {},
  in_doubt: {},
};

/** The diagram as Mermaid, from the tables above: docs/sync.md embeds it between markers. */
export function stateDiagram(): string {
  const lines = ['```mermaid', 'stateDiagram-v2', '  %% runs (generated from src/state/machine.ts)'];
  for (const s of INITIAL_STATES) lines.push(`  [*] --> ${s}`);
  for (const from of RUN_STATES) {
    for (const [to, label] of Object.entries(RUN_TRANSITIONS[from])) lines.push(`  ${from} --> ${to}: ${label}`);
  }
  for (const s of FINAL_STATES) lines.push(`  ${s} --> [*]`);
  lines.push('```', '', '```mermaid', 'stateDiagram-v2', '  %% items, per batch (generated from src/state/machine.ts)', '  [*] --> planned');
  for (const from of ITEM_STATES) {
    for (const [to, label] of Object.entries(ITEM_TRANSITIONS[from])) lines.push(`  ${from} --> ${to}: ${label}`);
  }
  for (const s of ITEM_STATES) if (Object.keys(ITEM_TRANSITIONS[s]).length === 0) lines.push(`  ${s} --> [*]`);
  lines.push('```');
  return lines.join('\n') + '\n';
}
