import type { AlertChannel } from '../../config/alerts.ts';
import { durationMs } from '../../daemon/duration.ts';
import type { Notification } from '../notification.ts';

/** Why a send failed: retry later (after retryAfterMs when the receiver said so), or never (a 4xx that will not change). */
export class ChannelError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly permanent: boolean;
  readonly rateLimited: boolean;
  constructor(message: string, opts: { retryAfterMs?: number; permanent?: boolean; rateLimited?: boolean } = {}) {
    super(message);
    this.name = 'ChannelError';
    this.retryAfterMs = opts.retryAfterMs;
    this.permanent = opts.permanent ?? false;
    this.rateLimited = opts.rateLimited ?? false;
  }
}

export interface Sender {
  send(n: Notification, ctx: { deliveryId: number; signal?: AbortSignal }): Promise<void>;
  close?(): Promise<void>;
}

/** Retry-After as seconds or an HTTP date, in ms (undefined when absent or unreadable). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return Math.ceil(secs * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * POSTs JSON and turns the answer into success or a ChannelError. The URL never appears in an error (webhook
 * URLs and bot paths carry secrets); the receiver's answer is cut short.
 */
export async function postJson(what: string, url: string, body: string, opts: { timeoutMs: number; headers?: Record<string, string>; signal?: AbortSignal; retryAfterFromBody?(text: string): number | undefined }): Promise<string> {
  let res: Response;
  const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...opts.headers }, body, signal: AbortSignal.any(signals) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new ChannelError(`${what}: request failed (${cause})`);
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return text;
  const short = text.slice(0, 200).replace(/\s+/g, ' ');
  if (res.status === 429) {
    const after = retryAfterMs(res.headers.get('retry-after')) ?? opts.retryAfterFromBody?.(text);
    throw new ChannelError(`${what}: HTTP 429 rate limited${after !== undefined ? `, retry after ${after} ms` : ''}`, { retryAfterMs: after ?? 1000, rateLimited: true });
  }
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408;
  throw new ChannelError(`${what}: HTTP ${res.status}${short ? `: ${short}` : ''}`, { permanent, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) });
}

/** Default sends per second per channel type (the vendors' documented limits, a little under). */
export const DEFAULT_RATE: Record<AlertChannel['type'], number> = { slack: 1, teams: 4, telegram: 1, pagerduty: 2, email: 5, webhook: 10 };

/** How many sends may go at once after a quiet spell (the bucket's depth). */
export const DEFAULT_BURST: Record<AlertChannel['type'], number> = { slack: 3, teams: 4, telegram: 1, pagerduty: 10, email: 5, webhook: 10 };

export function channelRate(c: AlertChannel): number {
  return c.rate_per_second ?? DEFAULT_RATE[c.type];
}

export function channelBurst(c: AlertChannel): number {
  return c.burst ?? DEFAULT_BURST[c.type];
}

export function channelTimeoutMs(c: AlertChannel): number {
  return durationMs(c.timeout);
}
