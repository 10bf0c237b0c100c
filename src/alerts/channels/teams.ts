import type { AlertChannel } from '../../config/alerts.ts';
import { truncate, type Notification } from '../notification.ts';
import { channelTimeoutMs, postJson, type Sender } from './channel.ts';

type Teams = Extract<AlertChannel, { type: 'teams' }>;

/** Teams refuses messages over 28 KB. */
export const TEAMS_MAX_BYTES = 28 * 1024;

function card(n: Notification, message: string): object {
  const facts = [
    ...(n.mapping ? [{ title: 'Mapping', value: n.mapping }] : []),
    { title: 'Severity', value: n.severity },
    ...(n.action !== 'test' ? [{ title: 'Since', value: n.since }, { title: 'Events', value: String(n.events) }] : []),
    ...(n.action === 'resolve' && n.resolveReason ? [{ title: 'Cleared', value: n.resolveReason }] : []),
  ];
  const color = n.action === 'resolve' ? 'Good' : n.severity === 'critical' || n.severity === 'error' ? 'Attention' : n.severity === 'warning' ? 'Warning' : 'Default';
  return {
    type: 'message',
    attachments: [{
      contentType: 'application/vnd.microsoft.card.adaptive',
      contentUrl: null,
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        body: [
          { type: 'TextBlock', text: n.title, weight: 'Bolder', size: 'Medium', color, wrap: true },
          { type: 'TextBlock', text: message, wrap: true },
          { type: 'FactSet', facts },
        ],
        ...(n.link ? { actions: [{ type: 'Action.OpenUrl', title: n.runId !== null ? `Run ${n.runId}` : 'Open in segsync', url: n.link }] } : {}),
      },
    }],
  };
}

/** A Workflows webhook message with one Adaptive Card, its message cut until the whole body fits in 28 KB. */
export function teamsPayload(n: Notification): string {
  let message = n.message;
  for (;;) {
    const body = JSON.stringify(card(n, message));
    const bytes = Buffer.byteLength(body);
    if (bytes <= TEAMS_MAX_BYTES || message.length < 20) return body;
    message = truncate(message, Math.max(10, Math.floor(message.length * (TEAMS_MAX_BYTES / bytes) * 0.95)));
  }
}

export function teamsSender(c: Teams): Sender {
  return {
    async send(n, ctx) {
      await postJson('teams', c.url, teamsPayload(n), { timeoutMs: channelTimeoutMs(c), ...(ctx.signal ? { signal: ctx.signal } : {}) });
    },
  };
}
