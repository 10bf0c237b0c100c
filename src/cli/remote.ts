import { loadConfig, type AppOptions } from '../app.ts';
import { SegsyncError, UsageError } from '../errors.ts';

/**
 * Read-only commands while a daemon (or `segsync ui`) holds the embedded database: instead of failing with
 * EMBEDDED_IN_USE, they ask that process's API. The API is found at $SEGSYNC_API_URL, else at daemon.host and
 * $SEGSYNC_HTTP_PORT / daemon.port from the configuration; the token is $SEGSYNC_API_TOKEN.
 */

export interface RemoteApi {
  url: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
}

async function apiFor(opts: AppOptions, cause: SegsyncError): Promise<RemoteApi> {
  const token = process.env.SEGSYNC_API_TOKEN?.trim();
  if (!token) throw new SegsyncError(cause.code, cause.message, { cause, hint: `${cause.hint ?? ''}; or set SEGSYNC_API_TOKEN so that read-only commands ask the running daemon's API (docs/api.md)` });
  let url = process.env.SEGSYNC_API_URL?.trim();
  if (!url) {
    const { daemon } = (await loadConfig(opts)).settings;
    const host = daemon.host === '0.0.0.0' || daemon.host === '::' ? '127.0.0.1' : daemon.host;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${process.env.SEGSYNC_HTTP_PORT || daemon.port}`;
  }
  const base = url.replace(/\/+$/, '');
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new SegsyncError(cause.code, `${cause.message}, and its API at ${base} does not answer (${(err as Error).message})`, { cause, hint: 'set SEGSYNC_API_URL to the daemon\'s address' });
    }
    const json = await res.json().catch(() => null) as { error?: { code: string; message: string } } | null;
    if (!res.ok) {
      const message = json?.error ? `${json.error.code}: ${json.error.message}` : `HTTP ${res.status}`;
      if (res.status === 400 || res.status === 404) throw new UsageError(`the daemon's API at ${base} answered ${message}`);
      throw new SegsyncError(json?.error?.code ?? 'API_ERROR', `the daemon's API at ${base} answered ${message}`);
    }
    return json as T;
  };
  return { url: base, get: (p) => call('GET', p), post: (p, b) => call('POST', p, b) };
}

/** Runs `local`; when the embedded database is held by another segsync process, runs `remote` against its API instead. */
export async function localOrDaemon<T>(opts: AppOptions, local: () => Promise<T>, remote: (api: RemoteApi) => Promise<T>): Promise<T> {
  try {
    return await local();
  } catch (err) {
    if (!(err instanceof SegsyncError) || err.code !== 'EMBEDDED_IN_USE') throw err;
    const api = await apiFor(opts, err);
    process.stderr.write(`segsync: the embedded database is in use by another segsync process; asking its API at ${api.url}\n`);
    return remote(api);
  }
}

export const query = (params: Record<string, string | number | boolean | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
};
