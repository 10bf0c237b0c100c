import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createRootLogger } from '../src/log.ts';
import { logStream, setActiveBar } from '../src/cli/terminal.ts';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';
import { startCli } from './helpers/cli-process.ts';
import { waitFor } from './helpers/wait.ts';

/** Without SEGSYNC_LOG_JSON: what a person or a script gets on stderr. */
const plain = { SEGSYNC_LOG_JSON: '', SEGSYNC_LOG_LEVEL: '' };

test('without a terminal: readable log lines, not JSON; --log-format json gives JSON; --quiet keeps warnings; --verbose adds debug', async () => {
  await withMappingProject(FILE_MAPPING(), async (project) => {
    await project.app((app) => seedSegments(app.warehouse.pool, 3));
    const text = await project.cli(['run', 'seg-to-file'], { env: plain });
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stderr, /^\{"level"/m, 'no raw JSON mixed with the summary');
    assert.match(text.stdout, /^run 1 of seg-to-file: succeeded/);

    const verbose = await project.cli(['--verbose', 'plan', 'seg-to-file'], { env: plain });
    assert.match(verbose.stderr, /DEBUG.*warehouse open/);
    const json = await project.cli(['--verbose', '--log-format', 'json', 'plan', 'seg-to-file'], { env: plain });
    const lines = json.stderr.trim().split('\n').filter(Boolean);
    assert.ok(lines.length > 0 && lines.every((l) => JSON.parse(l).level !== undefined), json.stderr);

    // A warning (a broken mapping file is one) is shown even with --quiet; info lines are not.
    await project.write('mappings/broken.yaml', 'name: [\n');
    const quiet = await project.cli(['--quiet', 'plan', 'seg-to-file'], { env: plain });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stderr, /warning: mapping broken/);
    assert.doesNotMatch(quiet.stderr, /INFO/);
    assert.equal((await project.cli(['--quiet', '--verbose', 'runs'], { env: plain })).code, 2);
    assert.equal((await project.cli(['--log-format', 'xml', 'runs'], { env: plain })).code, 2);
  });
});

test('on a terminal a log line is written above the progress bar, which is drawn again; PII stays masked', () => {
  const written: string[] = [];
  const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
  const write = process.stderr.write;
  let redraws = 0;
  Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const logger = createRootLogger({ level: 'info', pretty: false, destination: logStream('text', false) });
    setActiveBar({ render: () => { redraws++; } });
    logger.warn({ err: { body: 'customer ann@example.com refused' } }, 'batch for bob@example.org failed');
    setActiveBar(null);
    logger.info('after the bar');
  } finally {
    process.stderr.write = write;
    if (tty) Object.defineProperty(process.stderr, 'isTTY', tty); else delete (process.stderr as { isTTY?: boolean }).isTTY;
  }
  assert.equal(redraws, 1, 'the bar is drawn again after the line');
  assert.match(written[0]!, /^\r\x1b\[2KWARN: batch for b\*\*\*@e\*\*\*\.org failed/);
  assert.doesNotMatch(written.join(''), /ann@example\.com|bob@example\.org/);
  assert.match(written[1]!, /^INFO: after the bar\n$/);
  assert.ok(pino.levels.values.warn);
});

test('the daemon without a terminal logs JSON lines by default (for log shippers)', async () => {
  await withMappingProject(FILE_MAPPING(), async (project) => {
    await project.write('config/segsync.yaml', (await import('node:fs')).readFileSync(`${project.dir}/config/segsync.yaml`, 'utf8') + 'daemon: {port: 0, host: 127.0.0.1}\n');
    const d = startCli(['--data-dir', `${project.dir}/.segsync/pgdata`, 'daemon'], { cwd: project.dir, env: { SEGSYNC_LOG_JSON: '', SEGSYNC_LOG_LEVEL: 'info' } });
    let err = '';
    d.child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    try {
      await waitFor('the daemon to start', () => /daemon started/.test(err) || !d.running(), 60_000);
      const started = err.split('\n').find((l) => l.includes('daemon started'))!;
      assert.equal(JSON.parse(started).msg, 'daemon started');
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
});
