import { z } from 'zod';
import { destinations } from '../../destinations/registry.ts';
import type { DestinationDefinition, Payload, RecordOutcome } from '../../destinations/types.ts';
import { compareToExpected } from '../../destinations/compare.ts';
import { DestinationError } from '../../src/errors.ts';

/**
 * An in-process destination for engine tests: it really holds records, and can be told to reject keys or to
 * die after accepting a batch (the record is stored, then the call fails as a dropped connection would).
 */
export interface MemoryStore {
  records: Map<string, Payload>;
  calls: number;
  rejectKeys: Set<string>;
  /** The error text for rejected keys (default `value rejected for <key>`). */
  rejectMessage?: string;
  /** Calls that store the batch and then throw a retryable network error. */
  dieAfterAccepting: number;
  /** The size of each readBack() call, in order. */
  readBacks: number[];
}

export const memoryStores = new Map<string, MemoryStore>();

export function memoryStore(name: string): MemoryStore {
  let s = memoryStores.get(name);
  if (!s) memoryStores.set(name, (s = { records: new Map(), calls: 0, rejectKeys: new Set(), dieAfterAccepting: 0, readBacks: [] }));
  return s;
}

const memoryDestination = {
  type: 'memory',
  description: 'in-process test destination',
  connectionSchema: z.looseObject({ type: z.literal('memory'), store: z.string() }),
  optionsSchema: z.object({}),
  supportsRemoval: ['clear', 'delete'],
  async connect(ctx) {
    const store = memoryStore(ctx.connection.store);
    return {
      limits: { maxBatchSize: 5, maxConcurrency: 2, defaultConcurrency: 2, readBackBatchSize: 50 },
      async check() {},
      async describeFields() { return []; },
      async validateMapping() { return []; },
      async deliver(changes) {
        store.calls++;
        const outcomes: RecordOutcome[] = [];
        for (const c of changes) {
          if (store.rejectKeys.has(c.key)) {
            outcomes.push({ key: c.key, status: 'failed', errorCode: 'INVALID_VALUE', errorMessage: store.rejectMessage ?? `value rejected for ${c.key}` });
            continue;
          }
          if (c.op === 'remove') store.records.delete(c.key);
          else store.records.set(c.key, { ...c.after });
          outcomes.push({ key: c.key, status: 'delivered', destinationId: `mem-${c.key}` });
        }
        if (store.dieAfterAccepting > 0) {
          store.dieAfterAccepting--;
          throw new DestinationError('ECONNRESET', 'connection reset after the batch was sent', { retryable: true });
        }
        return { outcomes };
      },
      async readBack(requests) {
        store.readBacks.push(requests.length);
        return requests.map((r) => {
          const actual = store.records.get(r.key);
          return actual ? { key: r.key, ...compareToExpected(r.expected, actual) } : { key: r.key, status: 'missing' as const };
        });
      },
      async close() {},
    };
  },
} satisfies DestinationDefinition<{ type: 'memory'; store: string }, Record<string, never>>;

(destinations as Record<string, DestinationDefinition<any, any>>).memory = memoryDestination;
