import type pg from 'pg';
import type { Logger } from '../log.ts';
import { quoteIdent } from '../db/sql.ts';
import { insertEvent, type EventInput } from '../state/events.ts';

export { recentEvents, type EventInput, type EventRow, type Severity } from '../state/events.ts';

export interface EventLog {
  record(ev: EventInput): Promise<number | null>;
}

/**
 * An event log writing to `<schema>.events` (src/state/events.ts). A write that fails is logged, never thrown:
 * losing an event row must not fail the run it describes (the log line still carries it).
 */
export function eventLog(pool: pg.Pool, schema: string, log: Logger): EventLog {
  const s = quoteIdent(schema);
  return {
    async record(ev) {
      const level = ev.severity === 'info' ? 'info' : ev.severity === 'warning' ? 'warn' : 'error';
      log[level]({ event: ev.kind, mapping: ev.mapping ?? undefined, run: ev.runId ?? undefined, details: ev.details }, ev.message);
      try {
        return await insertEvent(pool, s, ev);
      } catch (err) {
        log.error({ err: (err as Error).message, event: ev.kind }, 'could not record event in the state database');
        return null;
      }
    },
  };
}
