import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, testMapping } from './helpers/hubspot.ts';

/**
 * Against a real HubSpot portal, read-only (schema calls, no writes): runs only with HUBSPOT_LIVE_ACCESS_TOKEN
 * set (a private app token of a test portal), and says so when skipped.
 */
const token = process.env.HUBSPOT_LIVE_ACCESS_TOKEN;

test('live HubSpot: the token is accepted and the contact schema can be read and checked', { skip: token ? false : 'HUBSPOT_LIVE_ACCESS_TOKEN is not set: live HubSpot test skipped' }, async () => {
  const base = process.env.HUBSPOT_LIVE_BASE_URL ?? 'https://api.hubapi.com';
  const s = await connect({ url: base, token: token! }, testMapping(), new Map());
  const fields = await s.describeFields();
  assert.ok(fields.some((f) => f.name === 'email'));
  const problems = await s.validateMapping();
  assert.ok(Array.isArray(problems));
});
