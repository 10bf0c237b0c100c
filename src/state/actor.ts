import { hostname, userInfo } from 'node:os';

/**
 * Who made a run or a state change happen. Replaces the free-text trigger: every transition of a run or its
 * items is recorded with its actor (runs.actor_type/actor_id, outbox rows, later the audit trail).
 * - cli: a person at a terminal, as their OS user (`cli:alice@host`);
 * - daemon: the daemon's own scheduling (`daemon:schedule`, `daemon:catch-up`, `daemon:shutdown`);
 * - api: an API token or OIDC subject (later issues).
 */
export interface Actor {
  type: 'cli' | 'daemon' | 'api' | 'system';
  id: string;
}

/** The CLI's actor: the OS user running it, on this host. */
export function cliActor(): Actor {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): the environment's word is all there is
  }
  return { type: 'cli', id: `${user}@${hostname()}` };
}

export function daemonActor(what: string): Actor {
  return { type: 'daemon', id: what };
}

/** The engine itself (recovery after a crash, expiry): no person or schedule asked. */
export const systemActor: Actor = { type: 'system', id: 'segsync' };

export function formatActor(a: Actor): string {
  return `${a.type}:${a.id}`;
}
