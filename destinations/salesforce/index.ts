import type { DestinationDefinition } from '../types.ts';
import { SfApi, sharedBudget } from './api.ts';
import { openConnection } from './auth.ts';
import { CasesConfig, SalesforceConnection, SalesforceOptions } from './config.ts';
import { SalesforceSession } from './session.ts';

/**
 * Salesforce through jsforce 3: any sObject (Contact by default) upserted by an external ID field, over
 * sObject Collections or Bulk API 2.0, within a share of the org's daily API budget; read-back by SOQL; the
 * segment onto open Cases as follow-up work (session.followUps) when the mapping has a `cases:` block. See
 * docs/destinations/salesforce.md.
 */
export const salesforce = {
  type: 'salesforce',
  description: 'Salesforce sObjects (Contact by default) by external ID: Collections or Bulk API 2.0, read-back by SOQL, segments on open Cases',
  connectionSchema: SalesforceConnection,
  optionsSchema: SalesforceOptions,
  mappingBlocks: { cases: CasesConfig },
  supportsRemoval: ['clear', 'delete'],
  async connect(ctx) {
    const cases = ctx.blocks?.cases ?? null;
    const c = ctx.connection;
    const conn = await openConnection(c);
    const credential = c.auth === 'access_token' ? c.accessToken! : `${c.clientId ?? ''}:${c.username ?? ''}`;
    const budget = sharedBudget(ctx.shared, conn.instanceUrl, credential);
    const api = new SfApi(conn, budget, c.budgetShare, ctx.log);
    ctx.log.debug({ auth: c.auth, apiVersion: c.apiVersion, object: ctx.mapping.destination.object }, 'salesforce connected');
    return new SalesforceSession(api, ctx.mapping, ctx.options, cases, ctx.log);
  },
} satisfies DestinationDefinition<SalesforceConnection, SalesforceOptions, { cases: typeof CasesConfig }>;

