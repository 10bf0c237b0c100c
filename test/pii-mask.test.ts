import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskClassified, maskDeep, maskRecord, maskText } from '../src/pii/mask.ts';
import { maskDeep as fromLog, maskEmails } from '../src/log.ts';
import { describeError, SegsyncError } from '../src/errors.ts';

test('database text quoting values is masked; identifiers are kept', () => {
  assert.equal(maskText('invalid input syntax for type integer: "alice@example.com"'), 'invalid input syntax for type integer: "a***@e***.com"');
  assert.equal(maskText('invalid input syntax for type numeric: "Alice Smith"'), 'invalid input syntax for type numeric: "Al***th"');
  assert.equal(maskText('duplicate key value violates unique constraint "contacts_email_key"'), 'duplicate key value violates unique constraint "contacts_email_key"');
  assert.equal(maskText('Key (email)=(bob@example.org) already exists.'), 'Key (email)=(b***@e***.org) already exists.');
  assert.equal(maskText('column "email" does not exist'), 'column "email" does not exist');
  assert.equal(maskText('call +44 20 7946 0958 now'), 'call +4***58 now');
  assert.equal(describeError(new SegsyncError('X', 'value "carol@example.net" is out of range')), 'value "c***@e***.net" is out of range');
});

test('classified fields are masked by class; free text is never shown', () => {
  assert.equal(maskClassified('dave@example.com', 'email'), 'd***@e***.com');
  assert.equal(maskClassified('Dave Jones', 'name'), 'Da***es');
  assert.equal(maskClassified('called about dave@example.com', 'free_text'), '[text, 29 chars]');
  assert.deepEqual(maskRecord({ who: 'Dave Jones', seg: 'Champions', note: 'x' }, { who: 'name', seg: 'none', note: 'free_text' }), { who: 'Da***es', seg: 'Champions', note: '[text, 1 chars]' });
});

test('one masking module: log.ts re-exports it, masking at any depth', () => {
  assert.equal(fromLog, maskDeep);
  assert.equal(maskEmails('to eve@example.com'), 'to e***@e***.com');
  const deep = maskDeep({ email: 'x@y.com', a: { b: { c: [{ note: 'write to frank@example.com or +1 415 555 0100' }] } }, token: 'abc' }) as any;
  assert.equal(deep.email, 'x***@y***.com');
  assert.equal(deep.a.b.c[0].note, 'write to f***@e***.com or +1***00');
  assert.equal(deep.token, '[redacted]');
});
