import { fileDestination } from './file/index.ts';
import type { DestinationDefinition } from './types.ts';

/**
 * Every destination segsync knows, registered explicitly (no loading by guessed file names). The key is the
 * `type` a connection names in config/segsync.yaml.
 */
export const destinations = {
  file: fileDestination,
} satisfies Record<string, DestinationDefinition<any, any>>;

export type DestinationType = keyof typeof destinations;
