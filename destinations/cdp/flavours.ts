/**
 * What differs between Segment's HTTP Tracking API and RudderStack's compatible data plane: limits, the
 * default endpoint, and how answers are shaped. Everything else is one implementation.
 */
export interface CdpFlavour {
  type: 'segment' | 'rudderstack';
  label: string;
  /** The environment variable names the docs and hints use in `${ENV}` examples; segsync never reads them itself. */
  writeKeyEnv: string;
  baseUrlEnv: string;
  /** null: there is no shared endpoint (RudderStack data planes are per workspace). */
  defaultBaseUrl: string | null;
  maxEventBytes: number;
  maxRequestBytes: number;
  maxEventsPerRequest: number;
  /** The server's message from an error body. */
  errorDetail(text: string): string;
}

const KB = 1024;

export const SEGMENT: CdpFlavour = {
  type: 'segment',
  label: 'Segment',
  writeKeyEnv: 'SEGMENT_WRITE_KEY',
  baseUrlEnv: 'SEGMENT_BASE_URL',
  defaultBaseUrl: 'https://api.segment.io',
  maxEventBytes: 32 * KB,
  maxRequestBytes: 500 * KB,
  // Segment answers 200 to a bigger batch and drops it, so this limit must never be crossed.
  maxEventsPerRequest: 2500,
  errorDetail(text) {
    try {
      const body = JSON.parse(text) as { message?: unknown };
      if (typeof body.message === 'string') return body.message;
    } catch { /* not JSON: fall through to the raw text */ }
    return text;
  },
};

export const RUDDERSTACK: CdpFlavour = {
  type: 'rudderstack',
  label: 'RudderStack',
  writeKeyEnv: 'RUDDERSTACK_WRITE_KEY',
  baseUrlEnv: 'RUDDERSTACK_DATA_PLANE_URL',
  defaultBaseUrl: null,
  maxEventBytes: 32 * KB,
  maxRequestBytes: 4000 * KB,
  // No documented event count limit; kept at Segment's so the request stays a sane size for its gateway.
  maxEventsPerRequest: 2500,
  // RudderStack answers plain text ("OK", "Invalid write key", ...).
  errorDetail: (text) => text.trim(),
};
