import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { startHubSpotEmulator, type HubSpotEmulator, type LoggedRequest } from './emulators/hubspot/server.ts';
import { startCli, type CliExit } from './helpers/cli-process.ts';
import { HUBSPOT_MAPPING, HUBSPOT_SETTINGS, prepareContacts, SEGMENT_OPTIONS } from './helpers/hubspot.ts';
import { createTestDatabase } from './helpers/pg.ts';
import { prng } from './helpers/prng.ts';
import { createProject, seedSegments } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The crash test (issue 11): `segsync run` is killed with SIGKILL at seeded random moments while HubSpot answers
 * some requests with 502s, connection resets (before and after applying the write) and ten-secondly 429s. After
 * every kill the ledger must not be ahead of HubSpot; the last run converges, a rerun sends nothing, and the
 * records sent again because of the kills stay within one page of in-flight batches per kill.
 *
 * Kills land in startup, in planning (the test holds the model table locked until the run waits for it),
 * right after the schema read before delivery, inside a write request (HubSpot applied it, the answer never
 * left) and just after one (while its outcome is recorded or the next batch leaves). Twice during the kills
 * some delivered records change in the model, so that a ledger ahead of HubSpot would show as different
 * values, not only as missing records.
 *
 * It only uses what survives a rewrite of the engine: the CLI, the state table `delivered` (key, payload,
 * payload_hash, removed_at) and the emulator's store and request log. SEGSYNC_CRASH_SEED picks another schedule.
 */

const RECORDS = 3000;
const BATCH = 20;
const CONCURRENCY = 2;
const KILLS = 12;
const MAX_RUNS = 30;
/** Between kills some delivered records change in the model, so that "different at the destination" can happen. */
const WAVE_AT_KILLS = new Set([4, 8]);
const WAVE_SIZE = 600;
const SEED = Number(process.env.SEGSYNC_CRASH_SEED ?? 1311);
const FAULTS = { seed: SEED, serverError: 0.03, reset: 0.04, rateLimit: 0.02 };
const STATE = 'segsync';
const MAPPING = 'crash-to-hubspot';
const TEST_APP = 'segsync-crash-test';
const WRITE = /^\/crm\/v3\/objects\/contacts\/batch\/(upsert|update|create)$/;

const SETTINGS = HUBSPOT_SETTINGS;
// The model-change waves move up to half the delivered records at once, far past what the guardrails let
// through unasked (changed share 70%, segment distribution, anomaly): this test is about the ledger under
// kills, so the change-size rules are off here; the guardrails tests hold such runs.
const MAPPING_YAML = HUBSPOT_MAPPING(MAPPING, `batch_size: ${BATCH}\nconcurrency: ${CONCURRENCY}\nguardrails:\n  disable: [changed, distribution, anomaly]`);

/** One record's mapped values, as the model has them at one time (a "version" of the record). */
interface Values { rfm_segment: string; rfm_recency_score: number; rfm_monetary: number }

type Moment =
  | { kind: 'delay'; ms: number }
  | { kind: 'planning'; ms: number }
  | { kind: 'pre-flight'; ms: number }
  | { kind: 'in-write'; n: number }
  | { kind: 'after-write'; n: number; ms: number };

/**
 * The kill moments: the first KILLS cover every kind (a seeded shuffle), runs beyond that (when a run ended by
 * itself) draw a kind at random. Delays reach into planning and delivery alike; the progress-triggered kinds
 * land inside a write request (HubSpot applied it, the answer never reaches segsync) or just after one, while
 * its outcome is recorded or the next batch is on its way.
 */
function killSchedule(rnd: () => number): Moment[] {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const make = (kind: Moment['kind']): Moment => {
    switch (kind) {
      case 'delay': return { kind, ms: int(500, 3500) };
      case 'planning': return { kind, ms: int(0, 60) };
      case 'pre-flight': return { kind, ms: int(0, 40) };
      case 'in-write': return { kind, n: int(1, 25) };
      case 'after-write': return { kind, n: int(1, 25), ms: int(0, 60) };
    }
  };
  const kinds: Moment['kind'][] = ['delay', 'delay', 'delay', 'planning', 'planning', 'planning', 'pre-flight', 'in-write', 'in-write', 'in-write', 'after-write', 'after-write'];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const all: Moment['kind'][] = ['delay', 'planning', 'pre-flight', 'in-write', 'after-write'];
  while (kinds.length < MAX_RUNS) kinds.push(all[Math.floor(rnd() * all.length)]!);
  return kinds.map(make);
}

const filled = (v: unknown): v is string | number => (typeof v === 'string' && v !== '') || typeof v === 'number';

/** HubSpot holds strings: a number property reads back as its decimal text. */
function destinationHas(props: Record<string, string | null | undefined>, v: Values): boolean {
  return props.rfm_segment === v.rfm_segment
    && filled(props.rfm_recency_score) && Number(props.rfm_recency_score) === v.rfm_recency_score
    && filled(props.rfm_monetary) && Number(props.rfm_monetary) === v.rfm_monetary;
}

function ledgerHas(payload: Record<string, unknown> | null, v: Values): boolean {
  return payload !== null && payload.rfm_segment === v.rfm_segment
    && filled(payload.rfm_recency_score) && Number(payload.rfm_recency_score) === v.rfm_recency_score
    && filled(payload.rfm_monetary) && Number(payload.rfm_monetary) === v.rfm_monetary;
}

interface LedgerRow { key: string; payload: Record<string, unknown> | null; payload_hash: string }

interface RunStats {
  n: number;
  /** Where the kill landed (empty when the run ended by itself). */
  landed: string;
  exit: CliExit;
  ms: number;
  /** Inputs of write requests HubSpot answered (200/207). */
  answered: number;
  /** Inputs of write requests that met a fault (5xx, 429, reset before or after applying). */
  faulted: number;
  /** Records whose delivered state this run advanced (new or other payload_hash). */
  recorded: number;
}

test('SIGKILL at seeded random moments during `segsync run` against a faulty HubSpot: the ledger is never ahead of HubSpot, the last run converges, a rerun sends nothing, resends stay bounded', { timeout: 300_000 }, async (t) => {
  const rnd = prng(SEED);
  const hs: HubSpotEmulator = await startHubSpotEmulator({ limits: { tenSecondly: 100, timeScale: 50 }, faults: FAULTS });
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url, settings: SETTINGS(db.url) });
  const pool = new pg.Pool({ connectionString: db.url, application_name: TEST_APP, max: 2 });
  const env = { HUBSPOT_ACCESS_TOKEN: hs.token, HUBSPOT_BASE_URL: hs.url };
  try {
    await project.write('mappings/m.yaml', MAPPING_YAML);
    await seedSegments(pool, RECORDS);
    prepareContacts(hs);

    // Every version each record has had in the model, oldest first: a destination may be at a newer version
    // than the ledger (sent, unconfirmed), never at an older one.
    const versions = new Map<string, Values[]>();
    const modelValues = async (): Promise<Map<string, Values>> => {
      const { rows } = await pool.query<{ user_id: string; rfm_segment: string; recency_score: number; monetary: number }>(
        'SELECT user_id, rfm_segment, recency_score, monetary::float8 AS monetary FROM segments');
      return new Map(rows.map((r) => [r.user_id, { rfm_segment: r.rfm_segment, rfm_recency_score: r.recency_score, rfm_monetary: r.monetary }]));
    };
    for (const [k, v] of await modelValues()) versions.set(k, [v]);
    const versionOf = (key: string, has: (v: Values) => boolean) => (versions.get(key) ?? []).findIndex(has);

    // Before the first run got far enough to create the state tables, the ledger is empty.
    const readLedger = async (): Promise<LedgerRow[]> => {
      if ((await pool.query(`SELECT to_regclass($1) AS t`, [`${STATE}.delivered`])).rows[0].t === null) return [];
      return (await pool.query<LedgerRow>(`SELECT key, payload, payload_hash FROM ${STATE}.delivered WHERE payload_hash IS NOT NULL AND removed_at IS NULL`)).rows;
    };

    /** The killed process's connections are gone: its requests are applied or dropped, its transactions ended. */
    const settle = () => waitFor('the run\'s connections to HubSpot and PostgreSQL to close', async () => {
      if (!(await hs.idle())) return false;
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1`, [TEST_APP]);
      return rows[0]!.n === 0;
    }, 20_000);

    /** Nothing the ledger calls delivered is missing at HubSpot or at an older version there. */
    const checkLedger = async (when: string): Promise<LedgerRow[]> => {
      const ledger = await readLedger();
      const held = new Map(hs.records('contacts').map((r) => [r.properties.user_id!, r.properties]));
      const problems: string[] = [];
      for (const row of ledger) {
        const confirmed = versionOf(row.key, (v) => ledgerHas(row.payload, v));
        const there = held.get(row.key);
        const at = there ? versionOf(row.key, (v) => destinationHas(there, v)) : -1;
        if (confirmed < 0) problems.push(`${row.key}: the ledger's payload ${JSON.stringify(row.payload)} was never the model's`);
        else if (!there) problems.push(`${row.key}: delivered in the ledger, missing at HubSpot`);
        else if (at < confirmed) problems.push(`${row.key}: the ledger has ${JSON.stringify(row.payload)}, HubSpot ${JSON.stringify({ rfm_segment: there.rfm_segment, rfm_recency_score: there.rfm_recency_score, rfm_monetary: there.rfm_monetary })}`);
      }
      assert.deepEqual(problems.slice(0, 5), [], `${when}: ${problems.length} record(s) the ledger calls delivered are missing or different at HubSpot`);
      return ledger;
    };

    const isWrite = (r: LoggedRequest) => r.method === 'POST' && WRITE.test(r.path);
    const answeredOk = (r: LoggedRequest) => r.status === 200 || r.status === 207;
    const runs: RunStats[] = [];
    let ledger = await readLedger();

    const runOnce = async (moment: Moment | null): Promise<RunStats> => {
      const from = hs.requests.length;
      const before = new Map(ledger.map((r) => [r.key, r.payload_hash]));
      const started = Date.now();
      let landed = '';
      let timer: NodeJS.Timeout | undefined;
      const kill = (where: string) => {
        if (!proc.running() || landed) return;
        landed = where;
        proc.child.kill('SIGKILL');
      };
      const killIn = (ms: number, where: string) => {
        if (!landed && timer === undefined) timer = setTimeout(() => kill(where), ms);
      };
      let writes = 0;
      // Any engine reads the model to plan: the test holds the model table locked until the run's first statement
      // on it waits, then lets it go and kills the run a few milliseconds into its plan.
      let modelLock: pg.PoolClient | undefined;
      const unlockModel = async () => {
        const c = modelLock;
        modelLock = undefined;
        if (c) await c.query('COMMIT').finally(() => c.release());
      };
      if (moment?.kind === 'planning') {
        modelLock = await pool.connect();
        await modelLock.query('BEGIN');
        await modelLock.query('LOCK TABLE segments IN ACCESS EXCLUSIVE MODE');
      }
      const proc = startCli(['run', MAPPING], { cwd: project.dir, env });
      if (moment?.kind === 'delay') killIn(moment.ms, `${moment.ms} ms after start`);
      hs.onRequest = (r) => {
        if (!moment) return;
        if (hs.requests.length === from + 1) {
          if (moment.kind === 'pre-flight') killIn(moment.ms, `${moment.ms} ms after its first HubSpot call (the schema read before delivery)`);
        }
        if (!isWrite(r)) return;
        writes += 1;
        // Called as the request is logged, before its answer is sent: HubSpot has applied it (unless faulted).
        if (moment.kind === 'in-write' && writes === moment.n) kill(`at write ${writes} (${r.fault === 'none' ? 'applied' : r.fault}), before its answer left`);
        if (moment.kind === 'after-write' && writes === moment.n) killIn(moment.ms, `${moment.ms} ms after write ${writes} was answered`);
      };
      let exit: CliExit;
      try {
        if (moment?.kind === 'planning') {
          await waitFor('the run to wait for the model table', async () => !proc.running() || (await pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name <> $1 AND wait_event_type = 'Lock' AND query ~* '\\msegments\\M'`,
            [TEST_APP])).rows[0]!.n > 0, 60_000);
          await unlockModel();
          killIn(moment.ms, `${moment.ms} ms into its plan (its first statement on the model had waited for the test's lock)`);
        }
        exit = await proc.exited;
      } finally {
        clearTimeout(timer);
        hs.onRequest = undefined;
        await unlockModel();
      }
      await settle();
      ledger = await checkLedger(`after run ${runs.length + 1} (${exit.signal === 'SIGKILL' ? `killed ${landed}` : `ended by itself, exit ${exit.code}`})`);
      const sent = hs.requests.slice(from).filter(isWrite);
      const stats: RunStats = {
        n: runs.length + 1, landed, exit, ms: Date.now() - started,
        answered: sent.filter(answeredOk).reduce((s, r) => s + r.inputs, 0),
        faulted: sent.filter((r) => !answeredOk(r)).reduce((s, r) => s + r.inputs, 0),
        recorded: ledger.filter((r) => before.get(r.key) !== r.payload_hash).length,
      };
      runs.push(stats);
      return stats;
    };

    /** Records confirmed at their newest version change in the model: the next runs have updates to send. */
    const wave = async () => {
      const current = ledger.filter((r) => { const vs = versions.get(r.key)!; return ledgerHas(r.payload, vs[vs.length - 1]!); }).map((r) => r.key).sort();
      for (let i = current.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [current[i], current[j]] = [current[j]!, current[i]!];
      }
      const keys = current.slice(0, Math.min(WAVE_SIZE, Math.ceil(current.length / 2)));
      if (!keys.length) return 0;
      const segments = keys.map((k) => {
        const vs = versions.get(k)!;
        const now = SEGMENT_OPTIONS.indexOf(vs[vs.length - 1]!.rfm_segment);
        return SEGMENT_OPTIONS[(now + 1 + Math.floor(rnd() * (SEGMENT_OPTIONS.length - 1))) % SEGMENT_OPTIONS.length]!;
      });
      await pool.query(`UPDATE segments s SET rfm_segment = u.seg, monetary = s.monetary + 1000 FROM unnest($1::text[], $2::text[]) AS u(key, seg) WHERE s.user_id = u.key`, [keys, segments]);
      const model = await modelValues();
      for (const k of keys) versions.get(k)!.push(model.get(k)!);
      t.diagnostic(`model change: ${keys.length} delivered records get new values`);
      return keys.length;
    };

    // The killed runs.
    const schedule = killSchedule(rnd);
    let kills = 0;
    let changed = 0;
    const waved = new Set<number>();
    for (let i = 0; kills < KILLS && i < MAX_RUNS; i++) {
      const last = runs[runs.length - 1];
      // A run that ended by itself with success left nothing to send: give the next one something to be killed in.
      if ((WAVE_AT_KILLS.has(kills) && !waved.has(kills)) || last?.exit.code === 0) {
        waved.add(kills);
        changed += await wave();
      }
      const s = await runOnce(schedule[i]!);
      if (s.exit.signal === 'SIGKILL') kills += 1;
    }
    assert.ok(kills >= KILLS, `only ${kills} of ${runs.length} runs were killed before they ended by themselves`);

    // The last run, without kill and without faults: today a fault on the schema read before delivery fails the
    // run (issue 11, defect 6), and convergence is what this run is about; the killed runs had the faults.
    // The faults stay on: transient errors before sending (the schema read) are retried like delivery now.
    const final = await runOnce(null);
    assert.equal(final.exit.code, 0, `the last run: ${final.exit.stdout}${final.exit.stderr}`);
    assert.match(final.exit.stdout, /succeeded/);
    const model = await modelValues();
    const held = hs.records('contacts');
    assert.equal(held.length, RECORDS, 'HubSpot holds each model record once');
    assert.equal(new Set(held.map((r) => r.properties.user_id)).size, RECORDS);
    const byKey = new Map(held.map((r) => [r.properties.user_id!, r.properties]));
    const wrong = [...model].filter(([k, v]) => !destinationHas(byKey.get(k) ?? {}, v)).map(([k]) => k);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} model record(s) missing or different at HubSpot after the last run`);
    const confirmed = new Map(ledger.map((r) => [r.key, r.payload]));
    const stale = [...model].filter(([k, v]) => !ledgerHas(confirmed.get(k) ?? null, v));
    assert.equal(stale.length, 0, 'the ledger holds every model record at its current values');

    const writesBefore = hs.requests.filter(isWrite).length;
    const rerun = await runOnce(null);
    assert.equal(rerun.exit.code, 0, `the rerun: ${rerun.exit.stdout}${rerun.exit.stderr}`);
    assert.match(rerun.exit.stdout, /\b0 create, 0 update\b/);
    assert.equal(hs.requests.filter(isWrite).length, writesBefore, 'the rerun sent no write');

    // The resend cost. Sent = inputs over every write request HubSpot received; distinct = the record versions
    // that had to go out once each (every model record, plus every change made while the ledger had its older
    // version, so each version was sent at least once). Two causes may send a record again:
    // - a fault: a write answered with a 5xx or 429, or reset before or after HubSpot applied it, is sent again
    //   whole (a retry, or the next run after a kill): at most its inputs once per faulted request (F);
    // - a kill: what HubSpot answered that the ledger did not record yet is sent again by the next run. A run
    //   has at most `concurrency` batches in flight of at most `batch_size` records, so at most B x C per kill.
    // Hence sent - distinct <= F + kills x B x C, and per run: answered - recorded <= B x C when killed, 0 else.
    const sent = hs.requests.filter(isWrite).reduce((s, r) => s + r.inputs, 0);
    const distinct = RECORDS + changed;
    const faulted = runs.reduce((s, r) => s + r.faulted, 0);
    const killed = runs.filter((r) => r.exit.signal === 'SIGKILL');
    for (const r of runs) {
      const lost = r.answered - r.recorded;
      t.diagnostic(`run ${r.n} ${r.exit.signal === 'SIGKILL' ? `killed ${r.landed}` : `ended by itself (exit ${r.exit.code})`} after ${r.ms} ms: `
        + `${r.answered} answered, ${r.recorded} recorded, ${lost} to send again (bound ${r.exit.signal === 'SIGKILL' ? BATCH * CONCURRENCY : 0}), ${r.faulted} in faulted writes`);
    }
    const resent = sent - distinct;
    const bound = faulted + killed.length * BATCH * CONCURRENCY;
    t.diagnostic(`resend cost: ${sent} records sent for ${distinct} record versions: ${resent} sent more than once `
      + `(${faulted} in faulted writes; ${resent - faulted} after ${killed.length} kills, ${((resent - faulted) / killed.length).toFixed(1)} per kill); bound ${bound}`);
    for (const r of runs) {
      const lost = r.answered - r.recorded;
      assert.ok(lost >= 0, `run ${r.n} recorded ${r.recorded} records but HubSpot answered only ${r.answered}`);
      assert.ok(lost <= (r.exit.signal === 'SIGKILL' ? BATCH * CONCURRENCY : 0), `run ${r.n}: ${lost} answered records not recorded`);
    }
    assert.ok(resent <= bound, `${resent} records sent more than once, bound ${bound}`);
  } finally {
    hs.onRequest = undefined;
    await pool.end();
    await hs.close();
    await project.cleanup();
    await db.drop();
  }
});
