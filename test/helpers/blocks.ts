import { Mapping } from '../../src/config/mapping.ts';
import type { DestinationDefinition } from '../../destinations/types.ts';

/**
 * Test mappings are built with Mapping.parse, which knows no destination-owned blocks (`tickets:`,
 * `cases:`): this splits them off, parses them with the destination's own schemas as the loader and
 * openDestination do, and keeps them beside the mapping for the test's connect helper.
 */
const blocksOf = new WeakMap<Mapping, Record<string, unknown>>();

export function mappingWithBlocks(def: DestinationDefinition<any, any>, input: Record<string, unknown>): Mapping {
  const core: Record<string, unknown> = {};
  const blocks: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const schema = def.mappingBlocks?.[key];
    if (!schema) {
      core[key] = value;
      continue;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${[key, ...i.path].join('.')}: ${i.message}`).join('; '));
    blocks[key] = parsed.data;
  }
  const mapping = Mapping.parse(core);
  blocksOf.set(mapping, blocks);
  return mapping;
}

export function blocksFor(mapping: Mapping): Record<string, unknown> {
  return blocksOf.get(mapping) ?? {};
}
