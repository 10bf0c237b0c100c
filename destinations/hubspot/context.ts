import type { Mapping } from '../../src/config/mapping.ts';
import type { Logger } from '../../src/log.ts';
import type { HubSpotApi } from './api.ts';
import type { HubSpotOptions, TicketsBlock } from './config.ts';

/** What every part of a HubSpot session shares: the API, the mapping, and per-session caches. */

export interface PropertyInfo {
  name: string;
  type: string;
  fieldType: string;
  options: string[];
  unique: boolean;
  writable: boolean;
  groupName: string;
}

export interface SessionContext {
  api: HubSpotApi;
  /** The object type as the mapping names it (contacts, companies, 2-1234567, p_loyalty). */
  objectType: string;
  idProperty: string;
  mapping: Mapping;
  options: HubSpotOptions;
  tickets: TicketsBlock | undefined;
  log: Logger;
  /** Written to options.run_property: the engine's run id when it passes one, else this session's start. */
  runStamp: string;
  /** Properties of an object type, fetched once per session. */
  properties(objectType: string, signal?: AbortSignal): Promise<Map<string, PropertyInfo>>;
  forgetProperties(objectType: string): void;
}

/** The payload field that carries the segment, if the mapping sends one. */
export function segmentField(ctx: Pick<SessionContext, 'mapping' | 'options'>): Mapping['fields'][number] | undefined {
  return ctx.mapping.fields.find((f) => f.to === ctx.options.segment_property) ?? ctx.mapping.fields.find((f) => f.from === 'rfm_segment');
}
