import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SegsyncError } from '../errors.ts';

/**
 * The models are dbt SQL files, and segsync runs them without dbt. So segsync renders the smallest useful
 * subset of dbt's Jinja itself, and refuses anything else rather than guessing:
 *   {{ config(...) }}             removed (materialisation is segsync's job)
 *   {{ ref('name') }}             the quoted relation the caller maps `name` to
 *   {{ var('name', 'default') }}  the caller's value for `name`, else the default (no default: required)
 * Any other `{{ }}`, `{% %}` or `{# #}` is an error naming the file and the expression.
 */

export interface RenderContext {
  /** dbt model/source name -> an already quoted SQL relation. */
  refs: Record<string, string>;
  /** dbt variable name -> text inserted verbatim (callers pass only validated values). */
  vars: Record<string, string | undefined>;
}

const TAG = /\{\{(.*?)\}\}|\{%.*?%\}|\{#.*?#\}/gs;
const STRING = String.raw`\s*(?:'([^']*)'|"([^"]*)")\s*`;
const REF = new RegExp(`^\\s*ref\\(${STRING}\\)\\s*$`);
const VAR = new RegExp(`^\\s*var\\(${STRING}(?:,${STRING})?\\)\\s*$`);
const CONFIG = /^\s*config\(.*\)\s*$/s;

export function renderModel(name: string, sql: string, ctx: RenderContext): string {
  return sql.replace(TAG, (tag: string, expr: string | undefined) => {
    if (expr === undefined) throw templateError(name, tag, 'segsync renders no {% %} blocks or {# #} comments');
    if (CONFIG.test(expr)) return '';
    const ref = REF.exec(expr);
    if (ref) {
      const target = ref[1] ?? ref[2] ?? '';
      const relation = ctx.refs[target];
      if (relation === undefined) throw templateError(name, tag, `no relation is known for ref('${target}')`);
      return relation;
    }
    const v = VAR.exec(expr);
    if (v) {
      const varName = v[1] ?? v[2] ?? '';
      const value = ctx.vars[varName] ?? v[3] ?? v[4];
      if (value === undefined) throw templateError(name, tag, `variable '${varName}' has no value and no default`);
      return value;
    }
    throw templateError(name, tag, 'segsync renders only ref(), var() and config()');
  });
}

function templateError(name: string, tag: string, why: string): SegsyncError {
  return new SegsyncError('MODEL_TEMPLATE', `model ${name}: cannot render ${tag.trim()}: ${why}`, {
    hint: 'keep the model SQL to plain SQL plus {{ ref() }}, {{ var() }} and {{ config() }}',
  });
}

/** The model files shipped with segsync, next to src/ (so an installed CLI finds them wherever it runs). */
export const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
const INCREMENTAL_VALUES_FILE = fileURLToPath(new URL('./values_incremental.sql', import.meta.url));

export const VALUES_MODEL = 'rfm_values_hist';
export const HIST_MODEL = 'rfm_segments_hist';
export const CURRENT_MODEL = 'rfm_current_segments';

export interface ModelSources {
  /** models/rfm_values_hist.sql: values per user per snapshot (dbt: ephemeral). */
  values: string;
  /** src/models/values_incremental.sql: the same values for the snapshots from a given one on. */
  valuesIncremental: string;
  hist: string;
  current: string;
  /** sha256 over all of them: a changed model means the stored history was computed by other SQL. */
  hash: string;
}

export async function loadModelSources(dir = MODELS_DIR): Promise<ModelSources> {
  const [values, hist, current, valuesIncremental] = await Promise.all([
    readFile(path.join(dir, `${VALUES_MODEL}.sql`), 'utf8'),
    readFile(path.join(dir, `${HIST_MODEL}.sql`), 'utf8'),
    readFile(path.join(dir, `${CURRENT_MODEL}.sql`), 'utf8'),
    readFile(INCREMENTAL_VALUES_FILE, 'utf8'),
  ]);
  const hash = createHash('sha256');
  for (const text of [values, hist, current, valuesIncremental]) hash.update(text).update('\0');
  return { values, valuesIncremental, hist, current, hash: hash.digest('hex') };
}

/**
 * The SQL of one build: rfm_segments_hist over either the full values model (inlined as a subquery, the way
 * dbt inlines an ephemeral model) or the incremental values from `from` on, carrying the state at `carriedAt`.
 */
export function renderBuild(src: ModelSources, rel: { payments: string; hist: string; paymentIdUnique: boolean }, asOf: Date, incremental?: { from: Date; carriedAt: Date | null }) {
  const values = incremental
    ? renderModel('values_incremental', src.valuesIncremental, {
      refs: { fact_payments: rel.payments, rfm_segments_hist: rel.hist },
      vars: {
        as_of: asOf.toISOString(), snapshot_from: incremental.from.toISOString(), carried_at: incremental.carriedAt?.toISOString() ?? '-infinity',
        payment_ids_may_repeat: rel.paymentIdUnique ? 'false' : 'true',
      },
    })
    : renderModel(VALUES_MODEL, src.values, {
      refs: { fact_payments: rel.payments },
      vars: { as_of: asOf.toISOString(), payment_ids_may_repeat: rel.paymentIdUnique ? 'false' : 'true' },
    });
  return {
    hist: renderModel(HIST_MODEL, src.hist, { refs: { rfm_values_hist: `(${values}) AS rfm_values_hist` }, vars: {} }),
    current: renderModel(CURRENT_MODEL, src.current, { refs: { rfm_segments_hist: rel.hist }, vars: {} }),
  };
}
