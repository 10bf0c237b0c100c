import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Mapping } from '../../src/config/mapping.ts';
import { rudderstack } from '../../destinations/rudderstack/index.ts';
import { segment } from '../../destinations/segment/index.ts';
import type { Change, DestinationSession, Payload } from '../../destinations/types.ts';
import { startCdpEmulator, type CdpEmulator, type CdpFlavour } from '../emulators/cdp/server.ts';
import { testLog } from './pg.ts';

/** Test plumbing for the CDP destinations: an emulator plus a connected session, and Change builders. */

for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[v];

export const FLAVOURS: CdpFlavour[] = ['segment', 'rudderstack'];

export function testMapping(flavour: string, extra: Record<string, unknown> = {}): Mapping {
  return Mapping.parse({
    name: `rfm-to-${flavour}`,
    source: { model: 'rfm_current_segments', key: 'user_id' },
    destination: { connection: flavour, object: 'identify', match_key: 'userId', options: {} },
    fields: [{ to: 'rfm_segment', from: 'segment' }, { to: 'rfm_score', from: 'rfm_score' }],
    on_removed: 'clear',
    ...extra,
  });
}

export async function cdpSession(emu: CdpEmulator, opts: { options?: Record<string, unknown>; writeKey?: string; baseUrl?: string; mapping?: Mapping } = {}): Promise<DestinationSession> {
  const def = emu.flavour === 'segment' ? segment : rudderstack;
  const mapping = opts.mapping ?? testMapping(emu.flavour);
  return def.connect({
    connection: def.connectionSchema.parse({ type: emu.flavour, write_key: opts.writeKey ?? emu.writeKey, base_url: opts.baseUrl ?? emu.url, timeout_ms: 5000 }),
    connectionName: emu.flavour,
    mapping,
    options: def.optionsSchema.parse(opts.options ?? {}),
    log: testLog,
    shared: new Map(),
  });
}

export function hashOf(p: Payload | null): string {
  return createHash('md5').update(JSON.stringify(p)).digest('hex');
}

export function upsert(key: string, after: Payload, before: Payload | null = null, destinationId: string | null = null): Change {
  return { key, op: before ? 'update' : 'create', before, after, payloadHash: hashOf(after), destinationId, attempt: 1 };
}

export function removal(key: string, before: Payload, destinationId: string | null = null): Change {
  return { key, op: 'remove', before, after: null, payloadHash: hashOf(null), destinationId, attempt: 1 };
}

export { startCdpEmulator };

/** A URL on which nothing listens (a port just released), for connection-refused cases. */
export async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
