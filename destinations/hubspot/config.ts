import { z } from 'zod';

/**
 * What the HubSpot destination reads from config/segsync.yaml (connection), mapping.destination.options and the
 * mapping's `tickets:` block. Credentials come through `${ENV}` interpolation of the connection block only.
 */

export const DEFAULT_BASE_URL = 'https://api.hubapi.com';

/** HubSpot's published limits per tier: requests per ten seconds (per app) and per day (per account). */
export const TIERS = {
  free: { tenSecondly: 100, daily: 250_000 },
  starter: { tenSecondly: 100, daily: 250_000 },
  professional: { tenSecondly: 190, daily: 625_000 },
  enterprise: { tenSecondly: 190, daily: 1_000_000 },
} as const;

// Secrets and hosts arrive only through `${ENV}` interpolation of this block (`access_token: ${HUBSPOT_ACCESS_TOKEN}`):
// the schema never reads the environment. Numbers are coerced so that they can come from the environment too
// (`ten_secondly_limit: ${HUBSPOT_TEN_SECONDLY}`).
export const HubSpotConnection = z.strictObject({
  type: z.literal('hubspot'),
  access_token: z.string({ error: (i) => (i.input === undefined ? 'no HubSpot access token: set access_token: ${HUBSPOT_ACCESS_TOKEN} in the connection and export that variable (a private app token with crm.objects.contacts.write and crm.schemas.contacts.write)' : undefined) })
    .min(1, 'access_token is empty: is the environment variable it names exported?')
    .describe('private-app access token, written as ${HUBSPOT_ACCESS_TOKEN} (never the token itself)'),
  base_url: z.string().url().optional().describe(`API base URL (an EU proxy, a test emulator); default ${DEFAULT_BASE_URL}`),
  tier: z.enum(['free', 'starter', 'professional', 'enterprise']).default('free')
    .describe('the account tier: sets the starting rate budget until HubSpot\'s X-HubSpot-RateLimit-* headers say otherwise'),
  ten_secondly_limit: z.coerce.number().int().positive().optional().describe('override the per-ten-seconds request budget'),
  daily_limit: z.coerce.number().int().positive().optional().describe('override the per-day request budget'),
  daily_reserve: z.coerce.number().int().nonnegative().default(0)
    .describe('requests per day to leave for other integrations of the account: segsync defers the rest when only this many are left'),
  request_timeout_ms: z.coerce.number().int().positive().default(30_000).describe('a call that takes longer is abandoned; the engine retries it (in doubt)'),
}).transform((c) => {
  const tier = TIERS[c.tier];
  return {
    accessToken: c.access_token,
    baseUrl: (c.base_url || DEFAULT_BASE_URL).replace(/\/+$/, ''),
    tenSecondly: c.ten_secondly_limit ?? tier.tenSecondly,
    daily: c.daily_limit ?? tier.daily,
    dailyReserve: c.daily_reserve,
    requestTimeoutMs: c.request_timeout_ms,
  };
});
export type HubSpotConnection = z.infer<typeof HubSpotConnection>;

export const HubSpotOptions = z.strictObject({
  segment_property: z.string().min(1).default('rfm_segment')
    .describe('the property holding the segment: `setup` creates it as an enumeration of the ten segments; the provenance stamp watches it'),
  since_property: z.union([z.string().min(1), z.literal(false)]).default('rfm_segment_since')
    .describe('date property set to the day the segment last changed (false: do not stamp)'),
  run_property: z.union([z.string().min(1), z.literal(false)]).default('segsync_last_run')
    .describe('property set to the segsync run that last wrote the record (false: do not stamp)'),
  property_group: z.string().min(1).optional().describe('group for properties `setup` creates (default: the object\'s information group)'),
});
export type HubSpotOptions = z.infer<typeof HubSpotOptions>;

export const TicketsBlock = z.strictObject({
  segment_property: z.string().min(1).default('rfm_segment').describe('ticket property that receives the contact\'s segment'),
  priority_property: z.string().min(1).default('hs_ticket_priority').describe('ticket property that receives the priority'),
  priority: z.record(z.string(), z.string()).default({})
    .describe('segment value (as sent to the contact) -> priority option, e.g. {Champions: HIGH}; segments not listed leave the priority alone'),
  open_stages: z.array(z.string().min(1)).min(1).describe('hs_pipeline_stage values that count as open; only open tickets are written'),
  pipeline: z.string().min(1).optional().describe('only tickets of this pipeline (default: any)'),
});
export type TicketsBlock = z.infer<typeof TicketsBlock>;

/** The ten segments of the RFM model, in the model's own spelling (see docs/rfm-model.md). */
export const SEGMENTS = [
  'Champions', 'Loyal Customers', 'Potential Loyalists', 'New Customers', 'Promising',
  'Need Attention', 'About to Sleep', 'Cannot Lose Them', 'At Risk', 'Hibernating',
] as const;
