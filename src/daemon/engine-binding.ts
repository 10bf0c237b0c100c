import { SegsyncError } from '../errors.ts';
import type { SyncEngine } from './engine.ts';

// Provisional until the sync engine and the models build are merged: the daemon refuses to start.
const missing = (): never => {
  throw new SegsyncError('ENGINE_MISSING', 'the sync engine is not part of this build yet');
};

export const syncEngine: SyncEngine = {
  runMapping: async () => missing(),
  buildModels: async () => missing(),
  modelFreshness: async () => missing(),
  migrate: async () => missing(),
  pendingMigrations: async () => missing(),
  lastRun: async () => missing(),
  markInterrupted: async () => missing(),
  recordBlocked: async () => missing(),
  isLocked: () => false,
};
