import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { latestByKey } from './helpers/files.ts';
import { createProject, REPO_ROOT } from './helpers/project.ts';

test('segsync demo on the embedded database: everything delivered, a rerun delivers nothing, a new month only what changed', async () => {
  const project = await createProject();
  await copyFile(path.join(REPO_ROOT, 'mappings/rfm-to-file.yaml'), path.join(project.dir, 'mappings/rfm-to-file.yaml'));
  try {
    const first = await project.cli(['demo', '--users', '300', '--months', '6', '--seed', '3']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /warehouse: embedded PGlite/);
    // The demo data ends three months before this month, so --next-month never writes a payment after today.
    const now = new Date();
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 3, 1)).toISOString().slice(0, 10);
    assert.match(first.stdout, new RegExp(`6 months to ${end}\n`));
    assert.match(first.stdout, new RegExp(`models \\(full, as of ${end}T00:00:00\\.000Z\\)`));
    const customers = Number(/models \(full, as of [^)]+\): ([\d,]+) customers/.exec(first.stdout)?.[1]?.replace(/,/g, ''));
    assert.ok(customers > 100 && customers <= 300, first.stdout);
    assert.match(first.stdout, new RegExp(`succeeded: ${customers} created, 0 updated, 0 removed, 0 unchanged -> ${customers} delivered, 0 failed`));
    // The README's sample output is what the demo prints: each sample line, numbers and dates aside.
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const sample = /```\n(warehouse: embedded PGlite[\s\S]*?)```/.exec(readme)![1]!.split('\n').filter((l) => l.trim() && l.trim() !== '...');
    const shape = (l: string) => l.replace(/\d[\d,.:TZ-]*/g, 'N').replace(/\s+/g, ' ').trim();
    const printed = new Set(first.stdout.split('\n').map(shape));
    for (const line of sample) {
      if (/^ {3}[A-Z][a-z]+( [A-Z][a-z]+)? +\d+$/.test(line)) continue; // a segment row: which ones depends on the data
      assert.ok(printed.has(shape(line)), `README sample line not printed by the demo: ${line}`);
    }
    const files = await latestByKey(path.join(project.outDir, 'rfm-to-file'));
    assert.equal(files.size, customers);
    const segments = new Set([...files.values()].map((r) => r.rfm_segment));
    assert.ok(segments.size >= 5, `several segments delivered: ${[...segments].join(', ')}`);

    const again = await project.cli(['demo']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /demo data: already loaded/);
    assert.match(again.stdout, new RegExp(`0 created, 0 updated, 0 removed, ${customers} unchanged -> 0 delivered`));

    const next = await project.cli(['demo', '--next-month', '--users', '300', '--seed', '3']);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /models \(incremental/);
    const m = /(\d+) created, (\d+) updated, 0 removed, (\d+) unchanged -> (\d+) delivered, 0 failed/.exec(next.stdout);
    assert.ok(m, next.stdout);
    const [created, updated, unchanged, delivered] = m.slice(1).map(Number) as [number, number, number, number];
    assert.equal(delivered, created + updated);
    assert.ok(updated > 0 && unchanged > 0, 'a month later some customers changed and some did not');
    assert.equal(created + updated + unchanged, Number(/models \(incremental[^)]*\): ([\d,]+) customers/.exec(next.stdout)?.[1]?.replace(/,/g, '')));

    // Each demo run was sealed into the audit trail as it ended: an auditor's verify right after sees all three
    // runs' receipts, with nothing left waiting for a later action to seal it.
    const verify = await project.cli(['audit', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^ok: \d+ row\(s\) chained, 3 run\(s\)' receipts match/);
  } finally {
    await project.cleanup();
  }
});
