import { fileDestination } from './file/index.ts';
import { hubspot } from './hubspot/index.ts';
import { rudderstack } from './rudderstack/index.ts';
import { salesforce } from './salesforce/index.ts';
import { segment } from './segment/index.ts';
import type { MappingBlockDeclaration } from '../src/config/load.ts';
import type { DestinationDefinition } from './types.ts';
import { webhook } from './webhook/index.ts';

/**
 * Every destination segsync knows, registered explicitly (no loading by guessed file names). The key is the
 * `type` a connection names in config/segsync.yaml.
 */
export const destinations = {
  file: fileDestination,
  hubspot,
  segment,
  rudderstack,
  webhook,
  salesforce,
} satisfies Record<string, DestinationDefinition<any, any>>;

export type DestinationType = keyof typeof destinations;

/** The mapping blocks every destination owns, for the loader (loadProject's `mappingBlocks`) and the docs. */
export function mappingBlockDeclarations(): MappingBlockDeclaration[] {
  return Object.values(destinations as Record<string, DestinationDefinition<unknown, unknown>>).flatMap((def) =>
    Object.entries(def.mappingBlocks ?? {}).map(([name, schema]) => ({ name, owner: def.type, schema })));
}
