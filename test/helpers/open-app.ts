import type { App } from '../../src/app.ts';
import { buildModels } from '../../src/models/index.ts';
import type { TestProject } from './project.ts';

/**
 * One app (config, warehouse) kept open across a whole test file, for suites that build models and run
 * mappings step by step on the same database: `close()` ends it (call it in `after`).
 */
export async function openApp(project: TestProject): Promise<{ app: App; close: () => Promise<void> }> {
  let release!: () => void;
  let app!: App;
  let done!: Promise<void>;
  await new Promise<void>((ready) => {
    done = project.app(async (a) => {
      app = a;
      ready();
      await new Promise<void>((r) => { release = r; });
    });
  });
  return { app, close: async () => { release(); await done; } };
}

/** The RFM models on fact_payments in the public schema, as of `asOf` (historical instants, either way on purpose). */
export const buildAt = (app: App, asOf: Date, fullRefresh = false) =>
  buildModels(app.warehouse.pool, { schema: 'public', payments: 'fact_payments', asOf, fullRefresh, allowEarlierAsOf: true, log: app.log });
