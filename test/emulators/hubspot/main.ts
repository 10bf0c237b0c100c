import { startHubSpotEmulator } from './server.ts';

/**
 * Runs the emulator on its own: `node test/emulators/hubspot/main.ts [port]`. Prints one JSON line
 * {url, token} and serves until killed. Control it over HTTP: GET /__emulator/stats, POST /__emulator/limits
 * {"tenSecondly":100,"daily":250000,"timeScale":1}, POST /__emulator/next-day, POST /__emulator/faults
 * {"serverError":0.1} or {"script":["unavailable","none","reset_after"]} (the next requests' faults, in order).
 */
const port = Number(process.argv[2] ?? 0);
const hs = await startHubSpotEmulator({ port, token: process.env.HUBSPOT_ACCESS_TOKEN || undefined });
process.stdout.write(JSON.stringify({ url: hs.url, token: hs.token }) + '\n');
const stop = () => void hs.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
