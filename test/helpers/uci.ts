import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './cli.ts';

/**
 * The UCI Online Retail data the tests use (data/uci/README.md): what the repository ships, and the full raw
 * file, which it does not (7.6 MB; CC BY 4.0, downloadable from UCI).
 */
export const UCI_DIR = path.join(repoRoot, 'data/uci');
/** The payments `segsync load online-retail` stages from the full file: 18,532 rows, 4,338 customers. */
export const UCI_PAYMENTS = path.join(UCI_DIR, 'online_retail_payments.csv.gz');
/** 320 whole invoices' lines of the raw file (normal, cancelled, no CustomerID, free items, adjustments). */
export const UCI_EXCERPT = path.join(UCI_DIR, 'online_retail_excerpt.csv');

const HOW = 'set SEGSYNC_ONLINE_RETAIL to the path of online_retail.csv.gz to run it (README, "The UCI Online Retail data")';

/**
 * The full raw file: SEGSYNC_ONLINE_RETAIL when set, else package.json's config.onlineRetail (the CI layout,
 * relative to the repository) when that file is there. `skip` is false when the file is there, else why the
 * full-file tests do not run and how to run them; `named` says SEGSYNC_ONLINE_RETAIL asked for a file
 * (then a missing file is a failure, not a skip).
 */
export function fullUciFile(): { file: string | undefined; skip: string | false; named: boolean } {
  const fromEnv = process.env.SEGSYNC_ONLINE_RETAIL;
  if (fromEnv) {
    const file = path.resolve(fromEnv);
    return existsSync(file) ? { file, skip: false, named: true } : { file: undefined, skip: `SEGSYNC_ONLINE_RETAIL names ${file}, which does not exist`, named: true };
  }
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { config?: { onlineRetail?: string } };
  const fallback = pkg.config?.onlineRetail ? path.resolve(repoRoot, pkg.config.onlineRetail) : undefined;
  if (fallback && existsSync(fallback)) return { file: fallback, skip: false, named: false };
  return { file: undefined, skip: `the full UCI Online Retail file is not here: ${HOW}`, named: false };
}
