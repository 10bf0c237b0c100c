import { generateKeyPairSync } from 'node:crypto';
import { after } from 'node:test';
import { salesforce } from '../../destinations/salesforce/index.ts';
import { SalesforceConnection, SalesforceOptions } from '../../destinations/salesforce/config.ts';
import type { Change, DestinationSession, Payload } from '../../destinations/types.ts';
import type { Mapping } from '../../src/config/mapping.ts';
import { startSalesforceEmulator, type EmulatorOptions, type SalesforceEmulator } from '../emulators/salesforce/index.ts';
import { blocksFor, mappingWithBlocks } from './blocks.ts';
import { testLog } from './pg.ts';

/** jsforce uses undici's fetch, which honours proxy variables: the emulator is local. */
for (const v of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete process.env[v];
for (const v of Object.keys(process.env)) if (v.startsWith('SALESFORCE_')) delete process.env[v];

export const { publicKey: JWT_PUBLIC_KEY, privateKey: JWT_PRIVATE_KEY } = generateKeyPairSync('rsa', {
  modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

export async function emulator(opts: EmulatorOptions = {}): Promise<SalesforceEmulator> {
  return startSalesforceEmulator({ bulkProcessingMs: 5, ...opts, auth: { jwtPublicKey: JWT_PUBLIC_KEY, ...opts.auth } });
}

/** An emulator starter for one test file: every org it starts is closed after the file's tests. */
export function useOrgs(): (opts?: EmulatorOptions) => Promise<SalesforceEmulator> {
  const started: SalesforceEmulator[] = [];
  after(async () => { await Promise.all(started.map((e) => e.close())); });
  return async (opts = {}) => {
    const sf = await emulator(opts);
    started.push(sf);
    return sf;
  };
}

export function contactMapping(over: Record<string, unknown> = {}): Mapping {
  return mappingWithBlocks(salesforce, {
    name: 'rfm-to-salesforce',
    source: { model: 'segments', key: 'user_id' },
    destination: { connection: 'salesforce', object: 'Contact', match_key: 'Customer_Id__c', options: {} },
    fields: [
      { to: 'LastName', from: 'last_name' },
      { to: 'RFM_Segment__c', from: 'rfm_segment' },
      { to: 'RFM_Recency_Days__c', from: 'recency_days', transform: 'number' },
      { to: 'RFM_Monetary__c', from: 'monetary', transform: 'number' },
    ],
    ...over,
  });
}

export type AuthKind = 'client_credentials' | 'jwt' | 'access_token';

export function connectionFor(sf: SalesforceEmulator, auth: AuthKind = 'client_credentials', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = { type: 'salesforce', api_version: '62.0', login_url: sf.url, ...extra };
  if (auth === 'client_credentials') return { ...base, client_id: sf.auth.clientId, client_secret: sf.auth.clientSecret };
  if (auth === 'jwt') return { ...base, client_id: sf.auth.clientId, username: sf.auth.username, jwt_private_key: JWT_PRIVATE_KEY };
  return { ...base, instance_url: sf.url, access_token: sf.issueToken() };
}

export async function openSession(sf: SalesforceEmulator, o: {
  auth?: AuthKind; mapping?: Mapping; options?: Record<string, unknown>; connection?: Record<string, unknown>; shared?: Map<string, unknown>;
} = {}): Promise<DestinationSession> {
  const mapping = o.mapping ?? contactMapping();
  return salesforce.connect({
    connection: SalesforceConnection.parse(connectionFor(sf, o.auth, o.connection)),
    connectionName: 'salesforce',
    mapping,
    options: SalesforceOptions.parse({ bulk_poll_interval_ms: 20, ...o.options }),
    blocks: blocksFor(mapping),
    log: testLog,
    shared: o.shared ?? new Map(),
  });
}

let hashSeq = 0;
export function upsert(key: string, after: Payload, before: Payload | null = null): Change {
  return { key, op: before ? 'update' : 'create', before, after, payloadHash: String(++hashSeq), destinationId: null, attempt: 1 };
}

export function remove(key: string, before: Payload): Change {
  return { key, op: 'remove', before, after: null, payloadHash: String(++hashSeq), destinationId: null, attempt: 1 };
}

export const SEGMENTS = ['Champions', 'Loyal Customers', 'At Risk', 'Hibernating', 'Lost'];

export function contacts(n: number, from = 1, segmentOf = (i: number) => SEGMENTS[i % SEGMENTS.length]!): Change[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return upsert(`C-${String(i).padStart(6, '0')}`, { LastName: `Person ${i}`, RFM_Segment__c: segmentOf(i), RFM_Recency_Days__c: i % 365, RFM_Monetary__c: Math.round(i * 1.37 * 100) / 100 });
  });
}
