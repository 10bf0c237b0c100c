import type { AlertChannel } from '../../config/alerts.ts';
import { truncate, type Notification } from '../notification.ts';
import { ChannelError, channelTimeoutMs, postJson, type Sender } from './channel.ts';

type PagerDuty = Extract<AlertChannel, { type: 'pagerduty' }>;

/**
 * An Events API v2 event. trigger (and a repeat: the same dedup_key, so PagerDuty folds it into the open
 * alert) or resolve; one dedup_key per incident (at most 255 characters), summary at most 1,024.
 */
export function pagerdutyEvent(n: Notification, routingKey: string): object {
  const dedup_key = truncate(n.incident, 255);
  if (n.action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key,
    payload: {
      summary: truncate(`${n.title}: ${n.message}`, 1024),
      source: n.mapping ?? n.labels.destination ?? n.labels.model ?? 'segsync',
      severity: n.severity,
      timestamp: n.lastAt,
      component: n.mapping ?? undefined,
      group: n.labels.destination ?? undefined,
      class: n.kind,
      custom_details: { message: n.message, since: n.since, events: n.events, run: n.runId, labels: n.labels },
    },
    client: 'segsync',
    ...(n.link ? { client_url: n.link, links: [{ href: n.link, text: n.runId !== null ? `Run ${n.runId}` : 'segsync' }] } : {}),
  };
}

export function pagerdutySender(c: PagerDuty): Sender {
  const url = `${c.api_url.replace(/\/+$/, '')}/v2/enqueue`;
  return {
    async send(n, ctx) {
      const text = await postJson('pagerduty', url, JSON.stringify(pagerdutyEvent(n, c.routing_key)), { timeoutMs: channelTimeoutMs(c), ...(ctx.signal ? { signal: ctx.signal } : {}) });
      let status: string | undefined;
      try {
        status = (JSON.parse(text) as { status?: string }).status;
      } catch {
        status = undefined;
      }
      if (status !== 'success') throw new ChannelError(`pagerduty: answer was not success: ${text.slice(0, 200)}`);
    },
  };
}
