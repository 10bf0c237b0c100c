import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `cond` until it holds. Past `ms` the test fails, naming `what`: a wait that ends quietly would let
 * the test go on to assert against a state it never reached.
 */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, `timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
