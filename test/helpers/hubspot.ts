import { createHash } from 'node:crypto';
import type { Mapping } from '../../src/config/mapping.ts';
import { DestinationError } from '../../src/errors.ts';
import { hubspot } from '../../destinations/hubspot/index.ts';
import { HubSpotConnection, HubSpotOptions } from '../../destinations/hubspot/config.ts';
import type { Change, DestinationSession, Payload, RecordOutcome } from '../../destinations/types.ts';
import type { HubSpotEmulator } from '../emulators/hubspot/server.ts';
import { blocksFor, mappingWithBlocks } from './blocks.ts';
import { testLog } from './pg.ts';

for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[k];

export const SEGMENT_OPTIONS = ['Champions', 'Loyal Customers', 'Potential Loyalists', 'New Customers', 'Promising', 'Need Attention', 'About to Sleep', 'Cannot Lose Them', 'At Risk', 'Hibernating'];

export function testMapping(overrides: Record<string, unknown> = {}): Mapping {
  return mappingWithBlocks(hubspot, {
    name: 'rfm-to-hubspot',
    source: { model: 'rfm_current_segments', key: 'user_id' },
    destination: { connection: 'hubspot', object: 'contacts', match_key: 'user_id', options: {} },
    fields: [
      { to: 'rfm_segment', from: 'rfm_segment' },
      { to: 'rfm_recency_score', from: 'recency_score', transform: 'integer' },
      { to: 'rfm_monetary', from: 'monetary', transform: 'number' },
    ],
    ...overrides,
  });
}

/** Defines what `segsync setup` would create, so delivery tests start from a prepared portal. */
export function prepareContacts(hs: HubSpotEmulator): void {
  hs.defineProperty('contacts', { name: 'user_id', type: 'string', hasUniqueValue: true });
  hs.defineProperty('contacts', { name: 'rfm_segment', type: 'enumeration', options: SEGMENT_OPTIONS.map((v) => ({ label: v, value: v })) });
  hs.defineProperty('contacts', { name: 'rfm_recency_score', type: 'number' });
  hs.defineProperty('contacts', { name: 'rfm_monetary', type: 'number' });
  hs.defineProperty('contacts', { name: 'rfm_segment_since', type: 'date' });
  hs.defineProperty('contacts', { name: 'segsync_last_run', type: 'string' });
}

export async function connect(hs: Pick<HubSpotEmulator, 'url' | 'token'>, mapping = testMapping(), shared = new Map<string, unknown>(), conn: Record<string, unknown> = {}): Promise<DestinationSession> {
  return hubspot.connect({
    connection: HubSpotConnection.parse({ type: 'hubspot', access_token: hs.token, base_url: hs.url, ...conn }),
    connectionName: 'hubspot', mapping, options: HubSpotOptions.parse(mapping.destination.options), blocks: blocksFor(mapping), log: testLog, shared,
  });
}

export function change(key: string, after: Payload | null, before: Payload | null = null, op?: Change['op']): Change {
  return {
    key, op: op ?? (after === null ? 'remove' : before === null ? 'create' : 'update'), before, after,
    payloadHash: createHash('md5').update(JSON.stringify(after)).digest('hex'), destinationId: null, attempt: 1,
  };
}

export function contact(i: number, segment = 'Champions'): Payload {
  return { rfm_segment: segment, rfm_recency_score: (i % 5) + 1, rfm_monetary: Number((i * 10.5).toFixed(2)) };
}

/**
 * What the engine does around deliver(): retry a whole batch on retryable DestinationErrors (waiting
 * retryAfterMs), re-send records that failed retryably, stop on anything else. Used until the engine lands.
 */
export async function deliverLikeEngine(s: DestinationSession, changes: Change[], opts: { attempts?: number } = {}): Promise<{ outcomes: RecordOutcome[]; batchRetries: number }> {
  const attempts = opts.attempts ?? 8;
  const final = new Map<string, RecordOutcome>();
  let pending = changes;
  let batchRetries = 0;
  for (let round = 1; round <= attempts && pending.length > 0; round++) {
    let result;
    for (let a = 1; ; a++) {
      try {
        result = await s.deliver(pending, new AbortController().signal);
        break;
      } catch (err) {
        if (!(err instanceof DestinationError) || !err.retryable || a >= attempts) throw err;
        batchRetries += 1;
        await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 20 * a));
      }
    }
    const again: Change[] = [];
    for (const o of result.outcomes) {
      final.set(o.key, o);
      if (o.status === 'failed' && o.retryable) again.push({ ...pending.find((c) => c.key === o.key)!, attempt: round + 1 });
    }
    pending = again;
  }
  return { outcomes: [...final.values()], batchRetries };
}

/** config/segsync.yaml for a project whose `hubspot` connection takes its token and host from the environment. */
export const HUBSPOT_SETTINGS = (url: string) => `warehouse:
  url: ${url}
connections:
  hubspot:
    type: hubspot
    access_token: \${HUBSPOT_ACCESS_TOKEN}
    base_url: \${HUBSPOT_BASE_URL:-https://api.hubapi.com}
`;

/** A mapping of the test model `segments` to HubSpot contacts by user_id; `extra` is appended as YAML. */
export const HUBSPOT_MAPPING = (name: string, extra = '') => `name: ${name}
source:
  model: segments
  key: user_id
destination:
  connection: hubspot
  object: contacts
  match_key: user_id
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: rfm_recency_score, from: recency_score }
  - { to: rfm_monetary, from: monetary, transform: number }
${extra}
`;
