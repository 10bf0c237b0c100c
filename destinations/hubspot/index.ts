import { DestinationError } from '../../src/errors.ts';
import type { DestinationDefinition, DestinationSession } from '../types.ts';
import { budgetFor, HubSpotApi, searchBudgetFor } from './api.ts';
import { HubSpotConnection, HubSpotOptions, TicketsBlock } from './config.ts';
import type { PropertyInfo, SessionContext } from './context.ts';
import { deliver, MAX_INPUTS } from './deliver.ts';
import { readBack } from './readback.ts';
import { describeFields, schemaProblems, setup, validateMapping } from './schema.ts';
import { ticketFollowUps } from './tickets.ts';

/**
 * HubSpot CRM (contacts, companies or a custom object) through @hubspot/api-client: batch upserts by a
 * unique-value property, one rate budget per account, read-back by idProperty, segments on open tickets as
 * follow-up work (session.followUps, when the mapping has a `tickets:` block).
 * See docs/destinations/hubspot.md.
 */

interface SdkProperty {
  name: string; type: string; fieldType: string; groupName: string; hasUniqueValue?: boolean; calculated?: boolean;
  options?: Array<{ value: string; hidden?: boolean }>; modificationMetadata?: { readOnlyValue?: boolean };
}

export const hubspot: DestinationDefinition<HubSpotConnection, HubSpotOptions, { tickets: typeof TicketsBlock }> = {
  type: 'hubspot',
  description: 'HubSpot CRM v3: contacts, companies or a custom object, matched by a unique property',
  connectionSchema: HubSpotConnection,
  optionsSchema: HubSpotOptions,
  mappingBlocks: { tickets: TicketsBlock },
  supportsRemoval: ['clear', 'delete'],

  async connect(c): Promise<DestinationSession> {
    const tickets = c.blocks?.tickets;
    const api = await HubSpotApi.open(c.connection, budgetFor(c.shared, c.connection), searchBudgetFor(c.shared, c.connection));
    const cache = new Map<string, Promise<Map<string, PropertyInfo>>>();
    const ctx: SessionContext = {
      api, tickets, log: c.log,
      objectType: c.mapping.destination.object,
      idProperty: c.mapping.destination.match_key,
      mapping: c.mapping,
      options: c.options,
      runStamp: c.runId !== undefined ? String(c.runId) : new Date().toISOString(),
      properties(objectType, signal) {
        let p = cache.get(objectType);
        if (!p) {
          p = api.call(`${objectType} properties`, (cl) => cl.crm.properties.coreApi.getAllWithHttpInfo(objectType), signal).then((info) => {
            const out = new Map<string, PropertyInfo>();
            for (const raw of (info.data as unknown as { results: SdkProperty[] }).results) {
              out.set(raw.name, {
                name: raw.name, type: raw.type, fieldType: raw.fieldType, groupName: raw.groupName, unique: raw.hasUniqueValue === true,
                writable: raw.calculated !== true && raw.modificationMetadata?.readOnlyValue !== true,
                options: (raw.options ?? []).filter((o) => o.hidden !== true).map((o) => o.value),
              });
            }
            return out;
          });
          p.catch(() => cache.delete(objectType));
          cache.set(objectType, p);
        }
        return p;
      },
      forgetProperties: (objectType) => cache.delete(objectType),
    };
    return {
      limits: { maxBatchSize: MAX_INPUTS, maxConcurrency: 10, defaultConcurrency: 4, readBackBatchSize: MAX_INPUTS },
      async check() {
        // Proves the token and the object type, and refuses to start a run that could only fail: a missing,
        // read-only or non-unique property would reject every batch. `validate` lists the softer problems too.
        const blocking = (await schemaProblems(ctx)).filter((p) => p.blocking).map((p) => p.message);
        if (blocking.length > 0) {
          throw new DestinationError('HUBSPOT_SCHEMA', `HubSpot schema does not fit mapping ${ctx.mapping.name}:\n  - ${blocking.join('\n  - ')}`);
        }
      },
      describeFields: () => describeFields(ctx),
      validateMapping: () => validateMapping(ctx),
      deliver: (changes, signal) => deliver(ctx, changes, signal),
      readBack: (records, signal) => readBack(ctx, records, signal),
      followUps: tickets ? ticketFollowUps(ctx, tickets) : null,
      setup: (apply) => setup(ctx, apply),
      async close() {
        cache.clear();
      },
    };
  },
};
