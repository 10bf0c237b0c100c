import { makeCdpDestination } from '../cdp/definition.ts';
import { SEGMENT } from '../cdp/flavours.ts';

export const segment = makeCdpDestination(SEGMENT,
  'Segment HTTP Tracking API: identify calls with the mapped traits, deduplicated by deterministic messageIds');
