import { startSalesforceEmulator } from './index.ts';

/**
 * Runs the emulator as its own process (benchmarks, manual tries): prints one JSON line with the URL and
 * the connected app's credentials, then serves until killed. Control it over /__emulator/ (see index.ts).
 *   node test/emulators/salesforce/serve.ts [--latency-ms N] [--daily-limit N]
 */
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const sf = await startSalesforceEmulator({ latencyMs: arg('--latency-ms', 0), dailyLimit: arg('--daily-limit', 10_000_000), bulkProcessingMs: 5 });
process.stdout.write(`${JSON.stringify({ url: sf.url, clientId: sf.auth.clientId, clientSecret: sf.auth.clientSecret })}\n`);
const stop = (): void => { void sf.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
