import { z } from 'zod';
import { DestinationError } from '../../src/errors.ts';
import type { DestinationDefinition } from '../types.ts';
import { WebhookSession } from './session.ts';

const HttpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}, 'an http(s) URL');

export const WebhookConnection = z.strictObject({
  type: z.literal('webhook').optional(),
  url: HttpUrl.describe('where change batches are POSTed'),
  secret: z.string().describe('HMAC-SHA256 signing secret, from an environment variable: secret: ${WEBHOOK_SECRET}'),
  read_back_url: HttpUrl.optional().describe('optional: POST {mapping, keys} here to read current values back for reconcile'),
  timeout_ms: z.number().int().positive().default(30_000),
  headers: z.record(z.string(), z.string()).default({}).describe('extra static headers (e.g. an API gateway key via ${ENV})'),
});
export type WebhookConnection = z.infer<typeof WebhookConnection>;

export const WebhookOptions = z.strictObject({});
export type WebhookOptions = z.infer<typeof WebhookOptions>;

export const webhook: DestinationDefinition<WebhookConnection, WebhookOptions> = {
  type: 'webhook',
  description: 'POSTs signed JSON batches of changes to any URL; per-record outcomes when the receiver reports them',
  connectionSchema: WebhookConnection,
  optionsSchema: WebhookOptions,
  // The receiver decides what a removal means; the body says which one the mapping asked for.
  supportsRemoval: ['clear', 'delete'],
  async connect(ctx) {
    if (ctx.connection.secret.length < 16) {
      throw new DestinationError('CONFIG_INVALID', `webhook connection '${ctx.connectionName}': the secret must be at least 16 characters (e.g. openssl rand -hex 32)`);
    }
    return new WebhookSession({
      url: ctx.connection.url,
      secret: ctx.connection.secret,
      readBackUrl: ctx.connection.read_back_url,
      timeoutMs: ctx.connection.timeout_ms,
      headers: ctx.connection.headers,
      mapping: ctx.mapping.name,
      runId: ctx.runId,
      onRemoved: ctx.mapping.on_removed,
      fields: ctx.mapping.fields.map((f) => f.to),
      log: ctx.log,
    });
  },
};
