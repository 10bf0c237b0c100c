import type pg from 'pg';
import { SegsyncError } from '../errors.ts';

/**
 * The ledger's identity (state migration 035): a uuid made once with the state schema. Destinations that
 * leave output outside the state (file batches) stamp it, so two ledgers writing one place never mistake
 * each other's output for their own.
 */
export async function readLedgerIdentity(db: Pick<pg.Pool, 'query'> | pg.ClientBase, schema: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM ${schema}.ledger_identity`);
  if (!rows[0]) throw new SegsyncError('STATE_INVALID', `the state schema ${schema} has no ledger identity row (${schema}.ledger_identity is empty)`, { hint: 'it is made by state migration 035; restore the row from a backup rather than making a new id, or batches this ledger wrote are no longer recognised as its own' });
  return rows[0].id;
}
