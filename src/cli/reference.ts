import { z } from 'zod';
import { destinations } from '../../destinations/registry.ts';
import type { DestinationDefinition } from '../../destinations/types.ts';
import { Mapping } from '../config/mapping.ts';
import { Settings } from '../config/settings.ts';

/**
 * The configuration reference, generated from the zod schemas (the single source of truth): JSON Schema for
 * editors (yaml-language-server), Markdown for docs/configuration.md. A test keeps the committed doc equal to
 * this output.
 */
type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  pattern?: string;
  additionalProperties?: boolean | JsonSchema;
};

const definitions = (): Array<[string, DestinationDefinition<unknown, unknown>]> =>
  Object.entries(destinations as Record<string, DestinationDefinition<unknown, unknown>>);

const toJson = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/**
 * `mapping` is the generic schema plus every destination-owned block as an optional property (an editor
 * cannot know the connection's type); `block.<type>.<name>` is each block alone.
 */
export function jsonSchemas(): Record<string, unknown> {
  const mapping = toJson(Mapping);
  const out: Record<string, unknown> = { mapping, settings: toJson(Settings) };
  for (const [type, def] of definitions()) {
    out[`connection.${type}`] = toJson(def.connectionSchema);
    out[`options.${type}`] = toJson(def.optionsSchema);
    for (const [name, schema] of Object.entries(def.mappingBlocks ?? {})) {
      const block = toJson(schema);
      out[`block.${type}.${name}`] = block;
      const { $schema: _, ...inline } = block as JsonSchema & { $schema?: string };
      mapping.properties = { ...mapping.properties, [name]: { ...inline, description: `${type} mappings only: see block.${type}.${name}` } };
    }
  }
  return out;
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${String(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (Array.isArray(s.type)) return s.type.join(' or ');
  return s.type ?? 'any';
}

function rows(s: JsonSchema, prefix: string, out: string[]): void {
  const required = new Set(s.required ?? []);
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    const dflt = prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``;
    const desc = (prop.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    out.push(`| \`${path}\` | ${typeOf(prop).replace(/\n/g, ' ')} | ${required.has(name) && prop.default === undefined ? 'yes' : ''} | ${dflt} | ${desc} |`);
    if (prop.properties) rows(prop, path, out);
    if (prop.type === 'array' && prop.items?.properties) rows(prop.items, `${path}[]`, out);
  }
}

function table(s: JsonSchema): string {
  const out = ['| key | type | required | default | meaning |', '| --- | --- | --- | --- | --- |'];
  rows(s, '', out);
  return out.join('\n');
}

export function markdownReference(): string {
  const js = jsonSchemas() as Record<string, JsonSchema>;
  const parts = [
    '# Configuration reference',
    '',
    'Generated from the zod schemas by `segsync config-schema --format markdown` (a test keeps this file equal',
    'to that output). `segsync config-schema --format json` prints the same as JSON Schema, for editors.',
    'Any string may use `${VAR}` or `${VAR:-default}`: secrets come only from the environment.',
    '',
    '## config/segsync.yaml',
    '',
    table(js.settings!),
    '',
    '## mappings/*.yaml',
    '',
    table(toJson(Mapping)), // the generic keys only: each block is documented with its destination below
    '',
    '## Destinations',
    '',
    'A connection in `config/segsync.yaml` names its `type`; a mapping\'s `destination.options` are checked by',
    'that type. Some destinations own a top-level block of the mapping (HubSpot `tickets:`): it is checked',
    'against that destination\'s schema when the project is loaded, and refused on a mapping of another type.',
  ];
  for (const [type, def] of definitions()) {
    parts.push('', `### ${type}`, '', def.description, '', `Removal (\`on_removed\`): keep${def.supportsRemoval.map((r) => `, ${r}`).join('')}.`, '',
      'Connection:', '', table(js[`connection.${type}`]!), '', 'Mapping `destination.options`:', '', table(js[`options.${type}`]!));
    for (const name of Object.keys(def.mappingBlocks ?? {})) {
      parts.push('', `Mapping \`${name}:\` block (${type} mappings only):`, '', table(js[`block.${type}.${name}`] as JsonSchema));
    }
  }
  return parts.join('\n') + '\n';
}
