import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { jsonSchemas, markdownReference } from '../src/cli/reference.ts';
import { REPO_ROOT } from './helpers/project.ts';

test('docs/configuration.md is exactly what the schemas generate (regenerate: segsync config-schema --format markdown)', async () => {
  const committed = await readFile(path.join(REPO_ROOT, 'docs/configuration.md'), 'utf8');
  assert.equal(committed, markdownReference());
});

test('the JSON Schema covers settings, mappings and every destination, and marks required keys', () => {
  const js = jsonSchemas() as Record<string, { required?: string[]; properties?: Record<string, unknown> }>;
  assert.deepEqual(js.mapping?.required?.sort(), ['destination', 'fields', 'name', 'source']);
  for (const type of ['file', 'hubspot', 'salesforce', 'segment', 'rudderstack', 'webhook']) {
    assert.ok(js[`connection.${type}`], `connection schema for ${type}`);
    assert.ok(js[`options.${type}`], `options schema for ${type}`);
  }
});
