import { z } from 'zod';
import { destinations } from '../../destinations/registry.ts';
import type { BatchResult, Change, DestinationDefinition, FollowUpItem, FollowUpOutcome, Payload } from '../../destinations/types.ts';

/**
 * An in-process destination whose behaviour each test scripts: what deliver() answers and when, what the
 * pre-flight check does, and optional follow-up work. It really holds what it accepted, so a test can compare
 * the destination with the ledger.
 */
export interface Script {
  records: Map<string, Payload>;
  /** Every deliver() call's keys, in order. */
  calls: string[][];
  /** Default: accept every change. Return the outcomes; `accept` stores a change. */
  deliver?: (changes: Change[], call: number, accept: (c: Change) => void) => Promise<BatchResult>;
  check?: (call: number) => Promise<void>;
  checks: number;
  followUps?: {
    apply: (items: FollowUpItem[], call: number) => Promise<FollowUpOutcome[]>;
    changedSince?: (since: Date) => Promise<string[]>;
    applied: FollowUpItem[][];
    sweeps: Date[];
  };
  batchSize: number;
  concurrency: number;
}

const scripts = new Map<string, Script>();

export function script(name: string, s: Partial<Script> = {}): Script {
  const full: Script = { records: new Map(), calls: [], checks: 0, batchSize: 5, concurrency: 1, ...s };
  scripts.set(name, full);
  return full;
}

function acceptAll(changes: Change[], accept: (c: Change) => void): BatchResult {
  for (const c of changes) accept(c);
  return { outcomes: changes.map((c) => ({ key: c.key, status: 'delivered' as const, destinationId: `id-${c.key}` })) };
}

const scripted = {
  type: 'scripted',
  description: 'in-process test destination scripted by each test',
  connectionSchema: z.looseObject({ type: z.literal('scripted'), script: z.string() }),
  optionsSchema: z.object({}),
  supportsRemoval: ['clear', 'delete'],
  async connect(ctx) {
    const s = scripts.get(ctx.connection.script);
    if (!s) throw new Error(`no script named ${ctx.connection.script}`);
    const accept = (c: Change) => (c.op === 'remove' ? s.records.delete(c.key) : s.records.set(c.key, { ...c.after! }));
    const f = s.followUps;
    return {
      limits: { maxBatchSize: s.batchSize, maxConcurrency: s.concurrency, defaultConcurrency: s.concurrency, readBackBatchSize: 50 },
      async check() {
        s.checks++;
        await s.check?.(s.checks);
      },
      async describeFields() { return []; },
      async validateMapping() { return []; },
      async deliver(changes) {
        s.calls.push(changes.map((c) => c.key));
        return s.deliver ? s.deliver(changes, s.calls.length, accept) : acceptAll(changes, accept);
      },
      async readBack(requests) {
        return requests.map((r) => ({ key: r.key, status: s.records.has(r.key) ? 'verified' as const : 'missing' as const }));
      },
      followUps: f ? {
        kind: 'tickets',
        async apply(items) {
          f.applied.push(items);
          return f.apply(items, f.applied.length);
        },
        async changedSince(since) {
          f.sweeps.push(since);
          return f.changedSince ? f.changedSince(since) : [];
        },
      } : null,
      async close() {},
    };
  },
} satisfies DestinationDefinition<{ type: 'scripted'; script: string }, Record<string, never>>;

(destinations as Record<string, DestinationDefinition<any, any>>).scripted = scripted;

/** A project config with a `scripted` connection named `dest` driven by script `name`. */
export function scriptedSettings(url: string, name: string): string {
  return `warehouse:\n  url: ${url}\nconnections:\n  dest:\n    type: scripted\n    script: ${name}\n`;
}

export const SCRIPTED_MAPPING = (name = 'seg', extra = '') => `name: ${name}
source:
  model: segments
  key: user_id
destination:
  connection: dest
  object: contacts
  match_key: user_id
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: monetary, from: monetary, transform: number }
${extra}
`;
