import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { createProject } from './helpers/project.ts';

/** Destination-owned mapping blocks (HubSpot tickets:, Salesforce cases:) are checked when the project loads. */

const SETTINGS = `connections:
  hubspot:
    type: hubspot
  salesforce:
    type: salesforce
`;

const mapping = (connection: string, block: string) => `name: m
source: { model: segments, key: user_id }
destination:
  connection: ${connection}
  object: contacts
  match_key: user_id
fields:
  - { to: rfm_segment, from: rfm_segment }
${block}`;

async function validateOffline(text: string): Promise<{ code: number | null; stderr: string }> {
  const project = await createProject({ settings: SETTINGS });
  try {
    await project.write('mappings/m.yaml', text);
    return await project.cli(['validate', '--offline']);
  } finally {
    await project.cleanup();
  }
}

test('validate --offline refuses a HubSpot tickets block its schema does not accept, with each position and reason', async () => {
  const r = await validateOffline(mapping('hubspot', 'tickets: {open_stages: "1", priority: 7, colour: red}\n'));
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /mappings\/m\.yaml:9:24 \(tickets\.open_stages\): Invalid input: expected array, received string/);
  assert.match(r.stderr, /mappings\/m\.yaml:9:39 \(tickets\.priority\): Invalid input: expected record, received number/);
  assert.match(r.stderr, /mappings\/m\.yaml:9:42 \(tickets\): unknown key 'colour'/);
});

test('validate --offline refuses a Salesforce cases block on a HubSpot mapping, at the block', async () => {
  const r = await validateOffline(mapping('hubspot', 'cases:\n  segment_from: RFM_Segment__c\n  segment_field: RFM_Segment__c\n'));
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /mappings\/m\.yaml:9:1 \(cases\): 'cases' is a block of salesforce mappings; this mapping's connection 'hubspot' is of type hubspot/);
});

test('a block no destination owns is an unknown key, as before', async () => {
  const r = await validateOffline(mapping('salesforce', 'ticket: {open_stages: ["1"]}\n'));
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /mappings\/m\.yaml:9:1: unknown key 'ticket'/);
});

test('well-formed blocks on their own destination pass, and the shipped example mappings pass validate --offline', async () => {
  const hs = await validateOffline(mapping('hubspot', 'tickets: {open_stages: ["1"], priority: {Champions: HIGH}}\n'));
  assert.equal(hs.code, 0, hs.stderr);
  const sf = await validateOffline(mapping('salesforce', 'cases: {segment_from: rfm_segment, segment_field: RFM_Segment__c}\n'));
  assert.equal(sf.code, 0, sf.stderr);
  const shipped = await runCli(['validate', '--offline'], {});
  assert.equal(shipped.code, 0, shipped.stderr);
  assert.match(shipped.stdout, /ok: 6 mapping\(s\) \(files only\)/);
});
