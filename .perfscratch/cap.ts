import pg from 'pg';
const orig = pg.Client.prototype.query;
const seen: string[] = [];
(pg.Client.prototype as any).query = function (this: any, ...args: any[]) {
  const t = typeof args[0] === 'string' ? args[0] : args[0]?.text;
  const v = typeof args[0] === 'string' ? args[1] : args[0]?.values;
  const start = performance.now();
  const r = (orig as any).apply(this, args);
  if (r && typeof r.then === 'function') r.then(() => { const ms = performance.now() - start; if (ms > 100) console.error(`[${ms.toFixed(0)} ms] ${String(t).replace(/\s+/g, ' ').slice(0, 160)}`); if (String(t).includes('INSERT INTO segsync.run_items') && !seen.length) { seen.push(t); require_fs().writeFileSync('/tmp/perfinv/diff.sql', t + '\n-- ' + JSON.stringify(v)); } }, () => {});
  return r;
};
import * as fs from 'node:fs';
function require_fs() { return fs; }
const { withApp } = await import('/work/wt/perf/src/app.ts');
const { planMapping } = await import('/work/wt/perf/src/sync/run.ts');
await withApp({ root: '/tmp/perfinv' }, async (app) => {
  const t = performance.now();
  const p = await planMapping(app, 'bench');
  console.error('plan', (performance.now() - t) / 1000, p.counts);
});
