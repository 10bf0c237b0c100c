import type { FastifyInstance } from 'fastify';
import type { App } from '../app.ts';
import { auditConfig } from '../audit/config-audit.ts';
import { daemonActor } from '../state/actor.ts';
import { mountControlPlane } from '../api/server.ts';
import type { ProjectConfig } from '../config/load.ts';
import { ConfigError, describeError } from '../errors.ts';
import { enableProcessMetrics } from '../metrics.ts';
import { startAlerts } from './alerts.ts';
import { catchUp } from './catch-up.ts';
import { MODELS_JOB, setStatus, type DaemonContext } from './context.ts';
import { durationMs } from './duration.ts';
import type { SyncEngine } from './sync-port.ts';
import { eventLog } from './events.ts';
import { startHttp, type Readiness } from './http.ts';
import { mappingJob } from './mapping-job.ts';
import { modelsJob } from './models-job.ts';
import { erasureJob } from './erasure-job.ts';
import { reconcileJob, reconcileJobName } from './reconcile-job.ts';
import { checkDaemonConfig } from './config-check.ts';
import { mappingsWithoutCredentials } from './credentials.ts';
import { Scheduler, type Job } from './scheduler.ts';
import { startWatchdog } from './watchdog.ts';

export interface DaemonOptions {
  app: App;
  engine: SyncEngine;
  /** Reads and validates the configuration again (SIGHUP). */
  loadConfig(): Promise<ProjectConfig>;
  /** Overrides daemon.port (the --port flag). */
  port?: number;
  /** How often overdue schedules are looked for (default 60 s). */
  watchdogMs?: number;
}

/**
 * The daemon's lifecycle: start (migrate, mark interrupted runs, serve HTTP, schedule, catch up), reload
 * (all or nothing), stop (stop scheduling, abort runs after their current batch, drain within the bound).
 */
export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #abort = new AbortController();
  readonly #ctx: DaemonContext;
  #http: FastifyInstance | null = null;
  #stopping: Promise<boolean> | null = null;
  #reloading: Promise<boolean> = Promise.resolve(true);
  #catchUp: Promise<void> = Promise.resolve();
  #starting: Promise<void> | null = null;
  #stopWatchdog: () => void = () => {};
  #alerts: { stop(): Promise<void> } | null = null;
  port = 0;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    const { app } = opts;
    this.#ctx = {
      app,
      engine: opts.engine,
      events: eventLog(app.warehouse.pool, app.config.settings.state.schema, app.log.child({ component: 'events' })),
      scheduler: new Scheduler({ timezone: app.config.settings.daemon.timezone, log: app.log.child({ component: 'scheduler' }) }),
      signal: this.#abort.signal,
      shared: new Map(),
      lastBuild: null,
      status: new Map(),
    };
  }

  get context(): DaemonContext {
    return this.#ctx;
  }

  /** Starts everything; a stop() that arrives meanwhile wins (nothing is scheduled after it). */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { app, engine } = this.#ctx;
    checkDaemonConfig(app.config);
    enableProcessMetrics();
    await engine.migrate(app);
    const interrupted = await engine.markInterrupted(app);
    if (interrupted.length) app.log.warn({ mappings: interrupted }, 'runs left by a stopped process were marked interrupted; they resume now');
    // A broken mapping file leaves that mapping out (reported here and as an event); the others run.
    for (const b of app.config.broken ?? []) {
      await this.#ctx.events.record({
        kind: 'mapping_broken', severity: 'error', mapping: b.name,
        message: `mapping ${b.name} (${b.file}) is not scheduled: its file has ${b.problems.length} problem(s); fix it and reload (segsync validate shows them)`,
        details: { file: b.file, problems: b.problems }, dedupKey: `mapping_broken:${b.name}`,
      });
    }
    const { daemon } = app.config.settings;
    const ctx = this.#ctx;
    const mount = (server: FastifyInstance) => mountControlPlane(server, { app: () => ctx.app, nextRun: (name) => ctx.scheduler.nextRun(name), shared: ctx.shared, signal: ctx.signal });
    const http = await startHttp({ log: app.log, readiness: () => this.readiness(), status: () => this.status(), mount }, daemon.host, this.#opts.port ?? daemon.port);
    this.#http = http.server;
    this.port = http.port;
    if (this.#stopping) return;
    this.#ctx.scheduler.set(this.#jobs(app.config));
    for (const [name, status] of this.#ctx.status) {
      if (status.state !== 'disabled') continue;
      await this.#ctx.events.record({
        kind: 'mapping_disabled', severity: 'warning', mapping: name,
        message: `${name} is not scheduled: ${status.reason?.replace(/^disabled: /, '')}; export the variable(s) and reload (SIGHUP)`,
        details: {}, dedupKey: `mapping_disabled:${name}`,
      });
    }
    this.#stopWatchdog = startWatchdog(this.#ctx, this.#opts.watchdogMs ?? 60_000, new Date());
    this.#alerts = startAlerts(this.#ctx);
    app.log.info({ mappings: app.config.mappings.map((m) => m.value.name), models: app.config.settings.models.schedule ?? null, timezone: daemon.timezone }, 'daemon started');
    if (daemon.catch_up) {
      this.#catchUp = catchUp(this.#ctx, new Set(interrupted)).catch((err: unknown) => {
        app.log.error({ err: describeError(err) }, 'catch-up failed; jobs run on their next tick');
      });
    }
  }

  #jobs(config: ProjectConfig): Job[] {
    // A mapping whose credentials are missing is disabled: shown in /status with what is missing, not scheduled.
    const disabled = mappingsWithoutCredentials(config);
    for (const [name, missing] of disabled) setStatus(this.#ctx, name, { state: 'disabled', reason: `disabled: credentials missing: ${missing}` });
    for (const m of config.mappings) if (!disabled.has(m.value.name) && this.#ctx.status.get(m.value.name)?.state === 'disabled') this.#ctx.status.delete(m.value.name);
    const enabled = config.mappings.filter((m) => !disabled.has(m.value.name));
    const jobs: Job[] = enabled.map((m) => mappingJob(this.#ctx, m.value));
    for (const m of enabled) {
      const rj = reconcileJob(this.#ctx, m.value);
      if (rj) jobs.push(rj);
    }
    if (config.settings.models.schedule) jobs.push(modelsJob(this.#ctx));
    jobs.push(erasureJob(this.#ctx)); // open erasures retried until done (docs/security.md)
    return jobs;
  }

  /** Applies a new configuration if it is entirely valid; otherwise logs every problem and keeps the old one. */
  reload(): Promise<boolean> {
    this.#reloading = this.#reloading.then(() => this.#reload());
    return this.#reloading;
  }

  async #reload(): Promise<boolean> {
    const ctx = this.#ctx;
    // A reload before start finished applies nothing: start reads the files itself.
    if (!this.#starting || this.#stopping) return false;
    try {
      await this.#starting;
    } catch {
      return false;
    }
    if (this.#stopping) return false;
    const log = ctx.app.log.child({ component: 'reload' });
    let next: ProjectConfig;
    try {
      next = await this.#opts.loadConfig();
      checkDaemonConfig(next);
      const old = ctx.app.config.settings;
      const fixed = [
        ['warehouse.url', old.warehouse.url, next.settings.warehouse.url],
        ['state.schema', old.state.schema, next.settings.state.schema],
        ['daemon.timezone', old.daemon.timezone, next.settings.daemon.timezone],
      ].filter(([, a, b]) => a !== b).map(([k]) => k);
      if (fixed.length) throw new Error(`${fixed.join(', ')} changed: that takes a restart, not a reload`);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : undefined;
      await ctx.events.record({
        kind: 'config_rejected', severity: 'error',
        message: `configuration reload rejected; the previous configuration keeps running: ${describeError(err)}`,
        details: problems ? { problems } : { error: describeError(err) },
        dedupKey: 'config_rejected',
      });
      return false;
    }
    if (next.settings.daemon.port !== ctx.app.config.settings.daemon.port && this.#opts.port === undefined) {
      log.warn({ port: this.port }, 'daemon.port changed: the HTTP server keeps its port until a restart');
    }
    const before = new Set(ctx.app.config.mappings.map((m) => m.value.name));
    const after = new Set(next.mappings.map((m) => m.value.name));
    ctx.app = { ...ctx.app, config: next };
    // The reload and its diff (secrets masked) go into the audit trail; a trail that cannot be written is logged, never a stopped reload.
    await auditConfig(ctx.app.warehouse.pool, next.settings.state.schema, next, daemonActor('reload'), 'config.reloaded')
      .catch((err: unknown) => log.error({ err: describeError(err) }, 'the reload could not be audited'));
    ctx.scheduler.set(this.#jobs(next));
    for (const name of before) {
      if (after.has(name)) continue;
      ctx.status.delete(name);
      ctx.status.delete(reconcileJobName(name));
    }
    await ctx.events.record({
      kind: 'config_reloaded', severity: 'info',
      message: `configuration reloaded (${next.hash.slice(0, 12)})`,
      details: { hash: next.hash, added: [...after].filter((n) => !before.has(n)), removed: [...before].filter((n) => !after.has(n)) },
    });
    return true;
  }

  async readiness(): Promise<Readiness> {
    const { app, engine } = this.#ctx;
    const checks: Readiness['checks'] = {};
    checks.accepting = this.#stopping ? { ok: false, detail: 'shutting down' } : { ok: true };
    try {
      await app.warehouse.pool.query('SELECT 1');
      checks.database = { ok: true };
      const pending = await engine.pendingMigrations(app);
      checks.migrations = pending.length ? { ok: false, detail: `pending: ${pending.join(', ')}` } : { ok: true };
    } catch (err) {
      checks.database ??= { ok: false, detail: (err as Error).message };
    }
    return { ready: Object.values(checks).every((c) => c.ok) && checks.migrations !== undefined, checks };
  }

  status(): unknown {
    const { app, scheduler, status } = this.#ctx;
    const schedules = new Map<string, string | null>();
    if (app.config.settings.models.schedule) schedules.set(MODELS_JOB, app.config.settings.models.schedule);
    for (const m of app.config.mappings) {
      schedules.set(m.value.name, m.value.schedule ?? null);
      if (m.value.reconcile) schedules.set(reconcileJobName(m.value.name), m.value.reconcile.schedule);
    }
    return {
      stopping: this.#stopping !== null,
      config: app.config.hash.slice(0, 12),
      jobs: Object.fromEntries([...schedules].map(([name, schedule]) => [name, {
        schedule,
        next: scheduler.nextRun(name),
        running: scheduler.busy(name),
        ...status.get(name),
      }])),
    };
  }

  /**
   * Stops scheduling, aborts runs (they finish their current batch, commit receipts and release locks) and
   * waits for them up to daemon.drain_timeout. Idempotent: every call gets the same outcome; true = drained.
   */
  stop(reason = 'stop requested'): Promise<boolean> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<boolean> {
    const { app, scheduler } = this.#ctx;
    const drainMs = durationMs(app.config.settings.daemon.drain_timeout);
    app.log.info({ reason, inFlight: scheduler.inFlightNames(), drainMs }, 'stopping: no new runs; in-flight runs finish their current batch');
    scheduler.stop();
    this.#stopWatchdog();
    this.#abort.abort(new Error(`daemon stopping: ${reason}`));
    // A stop during start waits for start to get to a point where everything it opened can be closed.
    await this.#starting?.catch(() => {});
    const drained = await scheduler.drain(drainMs);
    await Promise.race([this.#catchUp, new Promise((r) => setTimeout(r, 1000).unref())]);
    if (!drained) {
      await this.#ctx.events.record({ kind: 'shutdown_timeout', severity: 'error', message: `runs still in flight after ${app.config.settings.daemon.drain_timeout}: ${scheduler.inFlightNames().join(', ')}; they will be marked interrupted at the next start`, details: { inFlight: scheduler.inFlightNames() } });
    }
    await this.#alerts?.stop().catch(() => {});
    await this.#http?.close().catch(() => {});
    app.log.info({ drained }, drained ? 'stopped cleanly' : 'stopped with runs still in flight');
    return drained;
  }
}
