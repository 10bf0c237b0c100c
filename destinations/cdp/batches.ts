import type { CdpEvent } from './events.ts';

/**
 * Packs records into requests under a CDP's limits. A record's events stay in one request, so a record is
 * either wholly accepted or wholly not by one HTTP answer.
 */

export interface PackItem {
  key: string;
  events: CdpEvent[];
  bytes: number;
}

export interface PackLimits {
  maxRequestBytes: number;
  maxEventsPerRequest: number;
}

/** `{"batch":[` + `],"sentAt":"2026-01-01T00:00:00.000Z"}` with room to spare. */
const REQUEST_OVERHEAD_BYTES = 64;

export function pack(items: PackItem[], limits: PackLimits): PackItem[][] {
  const groups: PackItem[][] = [];
  let current: PackItem[] = [];
  let bytes = REQUEST_OVERHEAD_BYTES;
  let events = 0;
  for (const item of items) {
    // +n for the commas between events.
    const addBytes = item.bytes + item.events.length;
    if (current.length > 0 && (bytes + addBytes > limits.maxRequestBytes || events + item.events.length > limits.maxEventsPerRequest)) {
      groups.push(current);
      current = [];
      bytes = REQUEST_OVERHEAD_BYTES;
      events = 0;
    }
    current.push(item);
    bytes += addBytes;
    events += item.events.length;
  }
  if (current.length) groups.push(current);
  return groups;
}
