import type pg from 'pg';
import type { ProjectConfig } from '../config/load.ts';
import { withTransaction } from '../db/transaction.ts';
import { maskEmails } from '../pii/mask.ts';
import type { Actor } from '../state/actor.ts';
import { lockCurrentConfig, setCurrentConfig } from '../state/config-snapshots.ts';
import { audit } from './trail.ts';

const SECRET_NAME = /(pass(word)?|secret|token|key|credential|authorization|signature)/i;
const NOT_SECRET = /^(match_key|key|key_pii|idProperty|id_property|roles_claim|subject_claim|type)$/;

/** Values of secret-looking environment variables: a config value equal to one was interpolated from it. */
function secretValues(env: NodeJS.ProcessEnv): Set<string> {
  return new Set(Object.entries(env).filter(([k, v]) => SECRET_NAME.test(k) && v && v.length >= 6).map(([, v]) => v!));
}

/** The config as audited: settings and each mapping, flattened to path -> value, secrets masked. */
export function configContent(config: ProjectConfig, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const secrets = secretValues(env);
  const out: Record<string, unknown> = {};
  const walk = (v: unknown, at: string, name: string) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, at ? `${at}.${k}` : k, k);
      return;
    }
    if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) {
      v.forEach((x, i) => walk(x, `${at}[${i}]`, name));
      return;
    }
    if (typeof v === 'string') {
      if ((SECRET_NAME.test(name) && !NOT_SECRET.test(name)) || secrets.has(v)) return void (out[at] = '[secret]');
      // A SQL source's bind placeholders are kept as NUL-delimited markers (src/config/source-sql.ts), which jsonb
      // cannot hold: shown as $n, the parameter the database receives.
      out[at] = maskEmails(v.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1[secret]@')).replace(/\u0000(\d+)\u0000/g, '$$$1');
      return;
    }
    out[at] = v ?? null;
  };
  walk(config.settings, 'settings', '');
  for (const m of config.mappings) walk({ ...m.value, blocks: m.blocks }, `mappings.${m.value.name}`, '');
  return out;
}

export interface ConfigChange {
  path: string;
  old?: unknown;
  new?: unknown;
}

export function configDiff(before: Record<string, unknown>, after: Record<string, unknown>): ConfigChange[] {
  const paths = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const out: ConfigChange[] = [];
  for (const p of paths) {
    const a = JSON.stringify(before[p]);
    const b = JSON.stringify(after[p]);
    if (a === b) continue;
    out.push({ path: p, ...(p in before ? { old: before[p] } : {}), ...(p in after ? { new: after[p] } : {}) });
  }
  return out;
}

/**
 * Audits a config load (`config.loaded`) or a daemon reload (`config.reloaded`) when the config differs from the
 * one last audited: the diff of its content, secrets masked. The same config loaded again records nothing.
 */
export async function auditConfig(pool: pg.Pool, schema: string, config: ProjectConfig, actor: Actor, action: 'config.loaded' | 'config.reloaded'): Promise<ConfigChange[] | null> {
  const content = configContent(config);
  return withTransaction(pool, async (client) => {
    const current = await lockCurrentConfig(client, schema);
    if (current?.hash === config.hash) return null;
    const diff = configDiff(current?.content ?? {}, content);
    await setCurrentConfig(client, schema, config.hash, content);
    await audit(client, schema, { actor, action, subject: 'config', details: { hash: config.hash, previous: current?.hash ?? null, changes: diff.length, diff: diff.slice(0, 500) } });
    return diff;
  });
}
