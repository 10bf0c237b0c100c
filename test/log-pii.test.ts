import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { DestinationError } from '../src/errors.ts';
import { createRootLogger, maskDeep } from '../src/log.ts';

/** What a log line carries of an e-mail address, wherever it sits. */
function capture(): { stream: Writable; lines: () => string } {
  let out = '';
  const stream = new Writable({ write(chunk, _e, cb) { out += String(chunk); cb(); } });
  return { stream, lines: () => out };
}

test('PII is masked at any depth of a log line and in its message; secrets are blanked at any depth', async () => {
  const { stream, lines } = capture();
  const log = createRootLogger({ level: 'info', pretty: false, destination: stream });
  const err = new DestinationError('HTTP_400', 'value "alice@example.com" is not valid for property email', { status: 400 });
  log.info({ email: 'alice@example.com', details: { record: { contact: { Email: 'bob@example.org', phone: '+44 20 7946 0000' } }, body: 'rejected carol@example.net' }, err, token: 'tok-123', nested: { deeper: { client_secret: 's3cr3t' } } },
    'could not deliver dave@example.com');
  await new Promise((r) => setImmediate(r));
  const text = lines();
  for (const pii of ['alice@example.com', 'bob@example.org', 'carol@example.net', 'dave@example.com', '7946 0000', 'tok-123', 's3cr3t']) {
    assert.ok(!text.includes(pii), `${pii} leaked: ${text}`);
  }
  assert.match(text, /a\*\*\*@e\*\*\*\.com/, 'masked, still correlatable');
  assert.match(text, /HTTP_400|is not valid for property email/, 'the error is kept, masked');
});

test('maskDeep keeps structure, dates and numbers; cycles are cut', () => {
  const cyclic: Record<string, unknown> = { at: new Date(0), n: 3, list: ['x@y.io', 2] };
  cyclic.self = cyclic;
  const masked = maskDeep(cyclic) as Record<string, unknown>;
  assert.equal(masked.n, 3);
  assert.ok(masked.at instanceof Date);
  assert.deepEqual(masked.list, ['x***@y***.io', 2]);
  assert.equal(masked.self, '[…]');
});
