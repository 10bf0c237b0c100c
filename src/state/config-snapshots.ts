import type pg from 'pg';

/** The last audited config (hash and masked content), locked so two processes loading one change audit it once. */
export async function lockCurrentConfig(client: pg.ClientBase, schema: string): Promise<{ hash: string; content: Record<string, unknown> } | null> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`segsync:config-audit:${schema}`]);
  const { rows } = await client.query<{ hash: string; content: Record<string, unknown> }>(
    `SELECT c.hash, s.content FROM ${schema}.config_current c JOIN ${schema}.config_snapshots s USING (hash)`);
  return rows[0] ?? null;
}

export async function setCurrentConfig(client: pg.ClientBase, schema: string, hash: string, content: object): Promise<void> {
  await client.query(`INSERT INTO ${schema}.config_snapshots (hash, content) VALUES ($1, $2::jsonb) ON CONFLICT (hash) DO NOTHING`, [hash, JSON.stringify(content)]);
  await client.query(`INSERT INTO ${schema}.config_current (hash) VALUES ($1) ON CONFLICT (singleton) DO UPDATE SET hash = EXCLUDED.hash`, [hash]);
}
