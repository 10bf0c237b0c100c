import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rateBudgetUsed } from '../src/metrics.ts';
import { startHubSpotEmulator } from './emulators/hubspot/server.ts';
import { change, connect, contact, prepareContacts } from './helpers/hubspot.ts';
import { contacts, emulator as salesforceEmulator, openSession } from './helpers/salesforce.ts';

async function gauge(destination: string, window: string): Promise<number | undefined> {
  const { values } = await rateBudgetUsed.get();
  return values.find((v) => v.labels.destination === destination && v.labels.window === window)?.value;
}

test('the rate-budget gauge follows what HubSpot and Salesforce report about the account', async () => {
  const hs = await startHubSpotEmulator({ limits: { tenSecondly: 100, daily: 1000 } });
  try {
    prepareContacts(hs);
    const s = await connect(hs);
    await s.deliver(Array.from({ length: 10 }, (_, i) => change(`u${i}`, contact(i))), new AbortController().signal);
    const daily = await gauge('hubspot', 'daily');
    assert.ok(daily !== undefined && daily > 0 && daily < 0.05, `hubspot daily share used: ${daily}`);
    const window = await gauge('hubspot', 'ten_secondly');
    assert.ok(window !== undefined && window > 0 && window <= 1, `hubspot ten-secondly share used: ${window}`);
    const labels = (await rateBudgetUsed.get()).values.map((v) => String(v.labels.account));
    assert.ok(labels.every((l) => !l.includes(hs.token)), 'the account label never carries the token');
  } finally {
    await hs.close();
  }
  const sf = await salesforceEmulator({ dailyLimit: 1000 } as never);
  try {
    const s = await openSession(sf);
    await s.deliver(contacts(5), new AbortController().signal);
    const used = await gauge('salesforce', 'daily');
    assert.ok(used !== undefined && used > 0 && used < 0.1, `salesforce daily share used: ${used}`);
  } finally {
    await sf.close();
  }
});
