import { z } from 'zod';
import { PERMISSIONS } from '../auth/permissions.ts';
import { API_PREFIX, ROUTES } from './routes.ts';
import { ErrorBody } from './schemas.ts';

/** The OpenAPI 3.1 document of the API, generated from the route table and its zod schemas. */

function schema(s: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return rest;
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const parameters: unknown[] = [];
    for (const [where, obj] of [['path', r.params], ['query', r.query]] as const) {
      if (!obj) continue;
      const js = schema(obj, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [name, p] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: p, ...(p.description ? { description: p.description } : {}) });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, s] of Object.entries(r.responses)) {
      responses[status] = { description: status.startsWith('2') ? 'success' : 'error: { error: { code, message, ... } }', content: { 'application/json': { schema: schema(s, 'output') } } };
    }
    if ((r.params || r.query || r.body) && !responses['400']) responses['400'] = { description: 'bad input: which parameter, what is wrong', content: { 'application/json': { schema: schema(ErrorBody, 'output') } } };
    responses['401'] = { description: 'no or wrong credentials (UNAUTHENTICATED)' };
    responses['403'] ??= { description: `the identity lacks the permission ${r.permission} (FORBIDDEN), or no token is configured (API_DISABLED)` };
    (paths[API_PREFIX + r.path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${r.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^a-zA-Z0-9]+(.)/g, (_m, c: string) => c.toUpperCase())}`,
      'x-permission': r.permission,
      description: `Needs the permission \`${r.permission}\`: ${PERMISSIONS[r.permission]}.`,
      parameters,
      ...(r.body ? { requestBody: { required: false, content: { 'application/json': { schema: schema(r.body, 'input') } } } } : {}),
      responses,
      security: [{ bearer: [] }],
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'segsync API', version: '1', description: 'Runs, held plans, records and segments of a segsync project. Everything is masked as the logs are. docs/api.md' },
    servers: [{ url: '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'SEGSYNC_API_TOKEN (until tokens and roles land)' } } },
    paths,
  };
}
