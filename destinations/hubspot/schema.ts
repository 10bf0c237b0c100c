import type { FieldDescription, SetupReport } from '../types.ts';
import { DestinationError } from '../../src/errors.ts';
import { SEGMENTS } from './config.ts';
import { segmentField, type PropertyInfo, type SessionContext } from './context.ts';
import { applyTransform } from './values.ts';

/**
 * The mapping against HubSpot's property schema: what `validate`/`plan` report and what `setup` creates.
 */

interface Need {
  objectType: string;
  name: string;
  type: 'string' | 'number' | 'date' | 'datetime' | 'enumeration';
  /** Enumeration values the mapping will send (all must be options). */
  values?: string[];
  unique?: boolean;
  why: string;
}

const INFO_GROUP: Record<string, string> = { contacts: 'contactinformation', companies: 'companyinformation', tickets: 'ticketinformation' };

function kindOf(from: string, transform: unknown): Need['type'] {
  if (transform === 'number' || transform === 'integer') return 'number';
  if (transform === 'date') return 'date';
  if (transform === 'datetime' || transform === 'epoch_ms') return 'datetime';
  if (/(^|_)(score|recency|frequency|monetary|percentile|days)(_|$)/.test(from)) return 'number';
  return 'string';
}

export function segmentValues(ctx: SessionContext): string[] {
  const f = segmentField(ctx);
  return SEGMENTS.map((s) => applyTransform(s, f?.transform));
}

/** Every property the mapping writes, with the type `setup` would give it. */
export function needs(ctx: SessionContext): Need[] {
  const out: Need[] = [{ objectType: ctx.objectType, name: ctx.idProperty, type: 'string', unique: true, why: 'match_key (idProperty)' }];
  const seg = segmentField(ctx);
  for (const f of ctx.mapping.fields) {
    if (f === seg) out.push({ objectType: ctx.objectType, name: f.to, type: 'enumeration', values: segmentValues(ctx), why: `segment <- ${f.from}` });
    else {
      const values = typeof f.transform === 'object' ? [...new Set(Object.values(f.transform.map))] : undefined;
      out.push({ objectType: ctx.objectType, name: f.to, type: kindOf(f.from, f.transform), ...(values ? { values } : {}), why: `field <- ${f.from}` });
    }
  }
  if (ctx.options.since_property) out.push({ objectType: ctx.objectType, name: ctx.options.since_property, type: 'date', why: 'provenance: day the segment last changed' });
  if (ctx.options.run_property) out.push({ objectType: ctx.objectType, name: ctx.options.run_property, type: 'string', why: 'provenance: last segsync run' });
  if (ctx.tickets) {
    out.push({ objectType: 'tickets', name: ctx.tickets.segment_property, type: 'enumeration', values: segmentValues(ctx), why: 'tickets: segment' });
    out.push({ objectType: 'tickets', name: ctx.tickets.priority_property, type: 'enumeration', values: [...new Set(Object.values(ctx.tickets.priority))], why: 'tickets: priority' });
  }
  return out;
}

export async function describeFields(ctx: SessionContext): Promise<FieldDescription[]> {
  const props = await ctx.properties(ctx.objectType);
  return [...props.values()].map((p) => ({ name: p.name, type: p.type, writable: p.writable, unique: p.unique, ...(p.type === 'enumeration' ? { options: p.options } : {}) }));
}

function isIdProperty(ctx: SessionContext, p: PropertyInfo): boolean {
  return p.unique || (p.name === 'email' && ['contacts', '0-1'].includes(ctx.objectType));
}

export interface SchemaProblem {
  message: string;
  /** Every record would fail (or a batch would be rejected): a run must not start. */
  blocking: boolean;
}

/** Everything wrong with the mapping against HubSpot's schema, each problem once, all at once. */
export async function schemaProblems(ctx: SessionContext, signal?: AbortSignal): Promise<SchemaProblem[]> {
  const problems: SchemaProblem[] = [];
  const hint = `create it with \`segsync setup ${ctx.mapping.name} --apply\``;
  if (ctx.tickets && !['contacts', '0-1'].includes(ctx.objectType)) problems.push({ blocking: true, message: `tickets: only a mapping to contacts can write tickets (this one writes ${ctx.objectType})` });
  for (const need of needs(ctx)) {
    const props = await ctx.properties(need.objectType, signal);
    const where = `${need.objectType}.${need.name} (${need.why})`;
    const p = props.get(need.name);
    if (!p) {
      problems.push({ blocking: true, message: `${where} does not exist in HubSpot; ${hint}` });
      continue;
    }
    if (need.unique) {
      if (!isIdProperty(ctx, p)) problems.push({ blocking: true, message: `${where} must have unique values (hasUniqueValue) to be an idProperty; pick another match_key or create a unique property` });
      continue;
    }
    if (!p.writable) problems.push({ blocking: true, message: `${where} is read-only or calculated in HubSpot; map another property` });
    if (need.values && p.type === 'enumeration') {
      // Not blocking: records with other values still go; those with a missing option fail one by one.
      const bad = need.values.filter((v) => !p.options.includes(v));
      if (bad.length > 0) problems.push({ blocking: false, message: `${where} is an enumeration without the option(s) ${bad.map((v) => JSON.stringify(v)).join(', ')}; add them in HubSpot (Settings > Properties) or change the mapping's transform` });
    }
  }
  if (ctx.tickets) {
    const segs = segmentValues(ctx);
    const unknown = Object.keys(ctx.tickets.priority).filter((k) => !segs.includes(k));
    if (unknown.length > 0) problems.push({ blocking: false, message: `tickets.priority: ${unknown.map((v) => JSON.stringify(v)).join(', ')} never occur: the segment values sent are ${segs.map((v) => JSON.stringify(v)).join(', ')}` });
  }
  return problems;
}

export async function validateMapping(ctx: SessionContext, signal?: AbortSignal): Promise<string[]> {
  return (await schemaProblems(ctx, signal)).map((p) => p.message);
}

function definition(ctx: SessionContext, need: Need, group: string): Record<string, unknown> {
  const fieldType = { string: 'text', number: 'number', date: 'date', datetime: 'date', enumeration: 'select' }[need.type];
  const label = need.name.replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
  return {
    name: need.name, label, type: need.type, fieldType, groupName: group, hasUniqueValue: need.unique === true,
    description: `Written by segsync (mapping ${ctx.mapping.name}): ${need.why}`,
    ...(need.type === 'enumeration' ? { options: (need.values ?? []).map((v, i) => ({ label: v, value: v, displayOrder: i, hidden: false })) } : {}),
  };
}

export async function setup(ctx: SessionContext, apply: boolean, signal?: AbortSignal): Promise<SetupReport> {
  const lines: string[] = [];
  for (const need of needs(ctx)) {
    const props = await ctx.properties(need.objectType, signal);
    const p = props.get(need.name);
    const label = `${need.objectType}.${need.name}`;
    if (p) {
      const missing = need.values && p.type === 'enumeration' ? need.values.filter((v) => !p.options.includes(v)) : [];
      if (missing.length > 0) lines.push(`by hand: ${label} exists but lacks option(s) ${missing.join(', ')} (HubSpot: Settings > Properties)`);
      else if (need.unique && !isIdProperty(ctx, p)) lines.push(`by hand: ${label} exists but does not have unique values; it cannot be the idProperty`);
      else lines.push(`exists: ${label} (${p.type})`);
      continue;
    }
    if (need.type === 'enumeration' && (need.values ?? []).length === 0) {
      lines.push(`by hand: ${label} is needed but the mapping gives no values for its options`);
      continue;
    }
    const group = ctx.options.property_group ?? INFO_GROUP[need.objectType] ?? props.values().next().value?.groupName ?? 'segsync';
    if (!apply) {
      lines.push(`would create: ${label} (${need.type}${need.unique ? ', unique' : ''}) for ${need.why}`);
      continue;
    }
    const def = definition(ctx, need, group);
    try {
      await ctx.api.call(`create property ${label}`, (c) => c.crm.properties.coreApi.createWithHttpInfo(need.objectType, def as never), signal);
    } catch (err) {
      // 409: it exists after all. The engine retries setup like delivery, and a create whose answer was lost
      // (in doubt) did land: the retry must not fail on it.
      if (!(err instanceof DestinationError && err.status === 409)) throw err;
      ctx.forgetProperties(need.objectType);
      lines.push(`exists: ${label} (created by an earlier attempt or meanwhile)`);
      continue;
    }
    ctx.forgetProperties(need.objectType);
    lines.push(`created: ${label} (${need.type}${need.unique ? ', unique' : ''}) for ${need.why}`);
  }
  return { lines };
}
