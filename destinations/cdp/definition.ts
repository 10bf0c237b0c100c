import { z } from 'zod';
import { DestinationError } from '../../src/errors.ts';
import type { DestinationDefinition } from '../types.ts';
import type { CdpFlavour } from './flavours.ts';
import { CdpSession } from './session.ts';

/** Builds the Segment or RudderStack destination from its flavour; the two differ only in CdpFlavour. */

/**
 * Secrets come only through `${ENV}` interpolation of the connection block (one path for every destination):
 * nothing here reads process.env.
 */
export function cdpConnectionSchema(flavour: CdpFlavour) {
  const example = `write_key: \${${flavour.writeKeyEnv}}`;
  return z.strictObject({
    type: z.literal(flavour.type).optional(),
    write_key: z.string({ error: `missing write_key: take it from the environment (${example})` })
      .min(1, `write_key is empty: take it from the environment (${example})`)
      .describe(`the source's write key, from the environment: ${example} (never write the key itself here)`),
    base_url: flavour.defaultBaseUrl
      ? z.string().default(flavour.defaultBaseUrl).describe(`API base URL (segsync appends /v1/batch); e.g. base_url: \${${flavour.baseUrlEnv}:-${flavour.defaultBaseUrl}}`)
      : z.string({ error: `missing base_url: your data plane URL, e.g. base_url: \${${flavour.baseUrlEnv}}` })
        .describe(`your data plane URL (segsync appends /v1/batch), e.g. base_url: \${${flavour.baseUrlEnv}}`),
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

function resolveUrl(flavour: CdpFlavour, connectionName: string, raw: string): string {
  if (!raw.trim()) {
    throw new DestinationError('CONFIG_INVALID', `${flavour.label} connection '${connectionName}': base_url is empty (your data plane URL, e.g. https://<workspace>.dataplane.rudderstack.com)`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DestinationError('CONFIG_INVALID', `${flavour.label} connection '${connectionName}': base_url is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationError('CONFIG_INVALID', `${flavour.label} connection '${connectionName}': base_url must be http(s)`);
  return url.toString();
}

export function makeCdpDestination(flavour: CdpFlavour, description: string): DestinationDefinition<CdpConnection, CdpOptions> {
  return {
    type: flavour.type,
    description,
    connectionSchema: cdpConnectionSchema(flavour),
    optionsSchema: CdpOptions,
    supportsRemoval: ['clear'],
    async connect(ctx) {
      return new CdpSession({
        flavour,
        baseUrl: resolveUrl(flavour, ctx.connectionName, ctx.connection.base_url),
        writeKey: ctx.connection.write_key,
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
