import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { Transform } from '../src/config/mapping.ts';
import { TRANSFORM_NAMES, transformSql, transformValue, type TransformedValue } from '../src/config/transforms.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';

/**
 * The transforms are defined once (src/config/transforms.ts) with a SQL and a JavaScript side: both must give
 * the same value for the same input. Each sample runs through PostgreSQL (as the engine runs it: in a jsonb
 * payload, session in UTC) and through the JavaScript side.
 */

const SAMPLES: Record<string, Array<string | null>> = {
  text: ['At Risk', '  Champions\t', '\n Loyal Customers \r\n', '\u00a0nbsp\u00a0', 'Cannot Lose Them!', '__x__', 'Ünïcode Straße', 'İstanbul ǅ', 'MiXeD 42', '', ' ', null],
  number: ['0', '7.50', '-2.5', '2.5', '  12 ', '1e3', '.5', '-0.49', '123456789.125', 'abc', '', null],
  timestamp: ['2024-03-01', '2024-03-01 10:11:12+00', '2024-03-01T23:30:00-05:00', '2024-03-01 10:11:12.345678+00', '2024-02-29T00:00:00Z', '1969-12-31 23:59:59.999+00', '2024-03-01 10:11', 'not a date', null],
};

const INPUTS: Record<(typeof TRANSFORM_NAMES)[number], string[]> = {
  string: ['text', 'number'], lowercase: ['text'], uppercase: ['text'], slug: ['text'], trim: ['text'],
  number: ['number'], integer: ['number'], date: ['timestamp'], datetime: ['timestamp'], epoch_ms: ['timestamp'],
};

let db: TestDatabase;
let client: pg.Client;
before(async () => {
  db = await createTestDatabase('segsync_transforms');
  client = new pg.Client({ connectionString: db.url, options: '-c TimeZone=UTC' });
  await client.connect();
});
after(async () => {
  await client.end();
  await db.drop();
});

type Outcome = { value: TransformedValue } | { error: true };

async function viaSql(input: string | null, t: Transform): Promise<Outcome> {
  try {
    const r = await client.query(`SELECT jsonb_build_object('v', ${transformSql('c', t)}) AS out FROM (VALUES ($1::text)) src(c)`, [input]);
    return { value: (r.rows[0].out as { v: TransformedValue }).v };
  } catch {
    return { error: true };
  }
}

function viaJs(input: string | null, t: Transform): Outcome {
  try {
    return { value: transformValue(input, t) };
  } catch {
    return { error: true };
  }
}

test('every transform has samples', () => {
  assert.deepEqual(Object.keys(INPUTS).sort(), [...TRANSFORM_NAMES].sort());
});

for (const name of TRANSFORM_NAMES) {
  test(`${name}: SQL and JavaScript agree on every sample`, async () => {
    for (const input of INPUTS[name].flatMap((kind) => SAMPLES[kind]!)) {
      assert.deepEqual(viaJs(input, name), await viaSql(input, name), `${name}(${JSON.stringify(input)})`);
    }
  });
}

test('map: SQL and JavaScript agree, unmapped values and NULL pass through', async () => {
  const t: Transform = { map: { 'At Risk': 'at-risk', "O'Brien": 'quoted', constructor: 'own key' } };
  for (const input of ['At Risk', "O'Brien", 'constructor', 'toString', 'Champions', '', null]) {
    assert.deepEqual(viaJs(input, t), await viaSql(input, t), `map(${JSON.stringify(input)})`);
  }
});

test('trim strips ASCII whitespace at both ends only (tabs and newlines too, not a no-break space)', async () => {
  assert.equal(transformValue('\t a b \n', 'trim'), 'a b');
  assert.equal(transformValue('\u00a0a\u00a0', 'trim'), '\u00a0a\u00a0');
  assert.deepEqual(await viaSql('\t a b \n', 'trim'), { value: 'a b' });
});
