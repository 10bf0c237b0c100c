import { z } from 'zod';
import { DestinationError } from '../../src/errors.ts';
import type { DestinationDefinition } from '../types.ts';
import type { CdpFlavour } from './flavours.ts';
import { CdpSession } from './session.ts';

/** Builds the Segment or RudderStack destination from its flavour; the two differ only in CdpFlavour. */

export function cdpConnectionSchema(flavour: CdpFlavour) {
  return z.strictObject({
    type: z.literal(flavour.type).optional(),
    write_key: z.string().optional()
      .describe(`the source's write key; default: the ${flavour.writeKeyEnv} environment variable (never write the key itself here)`),
    base_url: z.string().optional()
      .describe(`API base URL; default: ${flavour.baseUrlEnv}${flavour.defaultBaseUrl ? `, then ${flavour.defaultBaseUrl}` : ' (required: your data plane URL)'}`),
    timeout_ms: z.number().int().positive().default(30_000).describe('per-request timeout'),
  });
}
export type CdpConnection = z.infer<ReturnType<typeof cdpConnectionSchema>>;

export const CdpOptions = z.strictObject({
  removal: z.enum(['clear_traits', 'track', 'both']).default('clear_traits')
    .describe('what a removal sends: an identify with the mapped traits set to null, a track event, or both'),
  removal_event: z.string().min(1).max(200).default('Segment Exited')
    .describe('name of the track event a removal sends (its properties are the previous traits)'),
});
export type CdpOptions = z.infer<typeof CdpOptions>;

function resolveUrl(flavour: CdpFlavour, configured: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = configured || env[flavour.baseUrlEnv] || flavour.defaultBaseUrl;
  if (!raw) {
    throw new DestinationError('CONFIG_INVALID', `${flavour.label}: no endpoint: set base_url on the connection or ${flavour.baseUrlEnv} (your data plane URL, e.g. https://<workspace>.dataplane.rudderstack.com)`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DestinationError('CONFIG_INVALID', `${flavour.label}: base_url is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationError('CONFIG_INVALID', `${flavour.label}: base_url must be http(s)`);
  return url.toString();
}

export function makeCdpDestination(flavour: CdpFlavour, description: string, env: NodeJS.ProcessEnv = process.env): DestinationDefinition<CdpConnection, CdpOptions> {
  return {
    type: flavour.type,
    description,
    connectionSchema: cdpConnectionSchema(flavour),
    optionsSchema: CdpOptions,
    supportsRemoval: ['clear'],
    async connect(ctx) {
      const writeKey = ctx.connection.write_key || env[flavour.writeKeyEnv];
      if (!writeKey) {
        throw new DestinationError('CONFIG_INVALID', `${flavour.label}: no write key for connection '${ctx.connectionName}': export ${flavour.writeKeyEnv}`);
      }
      return new CdpSession({
        flavour,
        baseUrl: resolveUrl(flavour, ctx.connection.base_url, env),
        writeKey,
        timeoutMs: ctx.connection.timeout_ms,
        mapping: ctx.mapping.name,
        mappingObject: ctx.mapping.destination.object,
        mode: ctx.mapping.mode,
        matchKey: ctx.mapping.destination.match_key,
        traits: ctx.mapping.fields.map((f) => f.to),
        removal: ctx.options.removal,
        removalEvent: ctx.options.removal_event,
        log: ctx.log,
      });
    },
  };
}
