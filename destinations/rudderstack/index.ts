import { makeCdpDestination } from '../cdp/definition.ts';
import { RUDDERSTACK } from '../cdp/flavours.ts';

export const rudderstack = makeCdpDestination(RUDDERSTACK,
  'RudderStack data plane (Segment-compatible /v1/batch): identify calls with the mapped traits, deduplicated by deterministic messageIds');
