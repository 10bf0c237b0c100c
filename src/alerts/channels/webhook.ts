import { Webhook } from 'standardwebhooks';
import type { AlertChannel } from '../../config/alerts.ts';
import type { Notification } from '../notification.ts';
import { channelTimeoutMs, postJson, type Sender } from './channel.ts';

type WebhookChannel = Extract<AlertChannel, { type: 'webhook' }>;

/**
 * A JSON body signed per the Standard Webhooks spec: webhook-id (stable for the delivery, so a resend after a
 * crash carries the same id and receivers apply it once), webhook-timestamp, webhook-signature (v1,<base64
 * HMAC-SHA256 of id.timestamp.body>), signed by the standardwebhooks library.
 */
export function webhookRequest(n: Notification, secret: string, deliveryId: number, now = new Date()): { body: string; headers: Record<string, string> } {
  const id = `msg_segsync_${deliveryId}`;
  const body = JSON.stringify({ type: `alert.${n.action}`, timestamp: now.toISOString(), data: n });
  const signature = new Webhook(secret).sign(id, now, body);
  return { body, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature } };
}

export function webhookSender(c: WebhookChannel): Sender {
  return {
    async send(n, ctx) {
      const { body, headers } = webhookRequest(n, c.secret, ctx.deliveryId);
      await postJson('webhook', c.url, body, { timeoutMs: channelTimeoutMs(c), headers, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    },
  };
}
