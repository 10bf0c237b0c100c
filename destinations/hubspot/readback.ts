import { compareRecord } from '../compare.ts';
import type { ReadBackRequest, ReadBackResult } from '../types.ts';
import type { SessionContext } from './context.ts';
import { kindOf, normaliseValue } from './values.ts';

/**
 * Reconciliation: read delivered records back by idProperty and compare each mapped property by its HubSpot
 * type (numbers come back as strings, dates as YYYY-MM-DD) with the shared comparer: verified, drifted (with
 * the fields) or missing.
 */

interface ReadData {
  results: Array<{ id: string; properties: Record<string, string | null> }>;
}

export async function readBack(ctx: SessionContext, requests: ReadBackRequest[], signal: AbortSignal): Promise<ReadBackResult[]> {
  const types = await ctx.properties(ctx.objectType, signal);
  const out: ReadBackResult[] = [];
  for (let i = 0; i < requests.length; i += 100) {
    const part = requests.slice(i, i + 100);
    const fields = [...new Set([...part.flatMap((r) => Object.keys(r.expected)), ...ctx.mapping.fields.map((f) => f.to)])].filter((f) => f !== ctx.idProperty);
    const info = await ctx.api.call(`${ctx.objectType} batch read`, (c) => c.crm.objects.batchApi.readWithHttpInfo(ctx.objectType, { idProperty: ctx.idProperty, inputs: part.map((r) => ({ id: r.key })), properties: [ctx.idProperty, ...fields], propertiesWithHistory: [] }), signal);
    const byKey = new Map<string, { id: string; properties: Record<string, string | null> }>();
    for (const r of (info.data as unknown as ReadData).results ?? []) {
      const key = r.properties[ctx.idProperty];
      if (key) byKey.set(key, r);
    }
    for (const req of part) {
      const found = byKey.get(req.key);
      if (!found) {
        out.push({ key: req.key, status: 'missing', destinationId: req.destinationId, detail: `no ${ctx.objectType} with this ${ctx.idProperty} (deleted or archived in HubSpot)` });
        continue;
      }
      const { actual, driftedFields: drifted } = compareRecord(req.expected, found.properties, {
        kindOf: (field) => kindOf(types.get(field)?.type),
        normalise: (field, value) => normaliseValue(types.get(field)?.fieldType, value),
      }, (field) => field === ctx.idProperty);
      out.push(drifted.length === 0
        ? { key: req.key, status: 'verified', actual, destinationId: found.id }
        : { key: req.key, status: 'drifted', actual, driftedFields: drifted, destinationId: found.id, detail: `changed in HubSpot: ${drifted.join(', ')}` });
    }
  }
  return out;
}
