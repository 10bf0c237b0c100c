import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { AlertChannel } from '../src/config/alerts.ts';
import { ChannelError, senderFor } from '../src/alerts/channels/index.ts';
import { TEAMS_MAX_BYTES } from '../src/alerts/channels/teams.ts';
import { buildNotification, type Notification } from '../src/alerts/notification.ts';
import { startReceiver, startSmtp } from './helpers/alert-receivers.ts';

function note(over: Partial<Omit<Notification, 'title'>> = {}): Notification {
  return buildNotification({
    action: 'trigger', incident: 'segsync-segsync-7', groupId: 7, kind: 'run_failed', severity: 'error', mapping: 'crm-contacts',
    message: 'crm-contacts run 42 failed: 3 failed, record of alice@example.com rejected', since: '2026-12-02T05:00:00.000Z',
    lastAt: '2026-12-02T05:01:00.000Z', events: 3, runId: 42, link: 'https://segsync.example.com/runs/42',
    labels: { kind: 'run_failed', severity: 'error', mapping: 'crm-contacts', destination: 'hubspot' }, ...over,
  });
}

const channel = (c: Record<string, unknown>) => AlertChannel.parse(c);

describe('alert channels against local receivers', () => {
  test('slack: an incoming-webhook POST with Block Kit blocks and a fallback text, e-mail addresses masked', async () => {
    const rx = await startReceiver();
    try {
      await senderFor(channel({ type: 'slack', url: `${rx.url}/services/T0/B0/secret` })).send(note(), { deliveryId: 1 });
      assert.equal(rx.requests.length, 1);
      const r = rx.requests[0]!;
      assert.equal(r.method, 'POST');
      assert.equal(r.path, '/services/T0/B0/secret');
      assert.match(String(r.headers['content-type']), /application\/json/);
      assert.equal(typeof r.json.text, 'string');
      assert.ok(Array.isArray(r.json.blocks) && r.json.blocks.length <= 50);
      assert.equal(r.json.blocks[0].type, 'header');
      const section = r.json.blocks.find((b: any) => b.type === 'section' && b.text);
      assert.ok(section.text.text.length <= 3000);
      assert.match(section.text.text, /run 42 failed/);
      const button = r.json.blocks.find((b: any) => b.type === 'actions').elements[0];
      assert.equal(button.url, 'https://segsync.example.com/runs/42');
      assert.doesNotMatch(r.body, /alice@example\.com/, 'PII masked in the message');
      assert.match(r.body, /a\*\*\*@e\*\*\*/);
    } finally {
      await rx.close();
    }
  });

  test('slack: a 429 is a rate limit carrying Retry-After; a 404 is permanent', async () => {
    const rx = await startReceiver({ reply: (r, n, res) => { res.writeHead(n === 1 ? 429 : 404, { 'retry-after': '3' }).end(n === 1 ? 'rate_limited' : 'no_service'); return true; } });
    try {
      const s = senderFor(channel({ type: 'slack', url: rx.url }));
      const e1 = await s.send(note(), { deliveryId: 1 }).then(() => null, (e: unknown) => e);
      assert.ok(e1 instanceof ChannelError);
      assert.equal(e1.rateLimited, true);
      assert.equal(e1.retryAfterMs, 3000);
      const e2 = await s.send(note(), { deliveryId: 1 }).then(() => null, (e: unknown) => e);
      assert.ok(e2 instanceof ChannelError);
      assert.equal(e2.permanent, true);
      assert.doesNotMatch(e2.message, /127\.0\.0\.1/, 'the URL (a secret) is not in the error');
    } finally {
      await rx.close();
    }
  });

  test('teams: a Workflows message with one Adaptive Card attachment, kept under 28 KB even for a huge message', async () => {
    const rx = await startReceiver({ okStatus: 202, okBody: '' });
    try {
      await senderFor(channel({ type: 'teams', url: `${rx.url}/workflows/x?sig=abc` })).send(note({ message: 'x'.repeat(100_000) }), { deliveryId: 1 });
      const r = rx.requests[0]!;
      assert.equal(r.path, '/workflows/x?sig=abc');
      assert.ok(Buffer.byteLength(r.body) <= TEAMS_MAX_BYTES, `${Buffer.byteLength(r.body)} bytes`);
      assert.equal(r.json.type, 'message');
      assert.equal(r.json.attachments.length, 1);
      const a = r.json.attachments[0];
      assert.equal(a.contentType, 'application/vnd.microsoft.card.adaptive');
      assert.equal(a.content.type, 'AdaptiveCard');
      assert.equal(a.content.actions[0].type, 'Action.OpenUrl');
      assert.equal(a.content.actions[0].url, 'https://segsync.example.com/runs/42');
      assert.ok(a.content.body.some((b: any) => b.type === 'FactSet' && b.facts.some((f: any) => f.title === 'Mapping' && f.value === 'crm-contacts')));
    } finally {
      await rx.close();
    }
  });

  test('telegram: sendMessage under /bot<token>/ with chat_id, HTML parse mode, at most 4,096 characters; a 429 reads parameters.retry_after', async () => {
    const rx = await startReceiver({
      reply: (r, n, res) => {
        if (n === 2) {
          res.writeHead(429, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error_code: 429, description: 'Too Many Requests: retry after 7', parameters: { retry_after: 7 } }));
          return true;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, result: { message_id: 1 } }));
        return true;
      },
    });
    try {
      const s = senderFor(channel({ type: 'telegram', bot_token: '123:ABC', chat_id: '-1001', api_url: rx.url }));
      await s.send(note({ message: `<b>${'y'.repeat(10_000)}` }), { deliveryId: 1 });
      const r = rx.requests[0]!;
      assert.equal(r.path, '/bot123:ABC/sendMessage');
      assert.equal(r.json.chat_id, '-1001');
      assert.equal(r.json.parse_mode, 'HTML');
      assert.ok(r.json.text.length <= 4096, `${r.json.text.length} chars`);
      assert.match(r.json.text, /^<b>ERROR: run failed on crm-contacts<\/b>/);
      assert.match(r.json.text, /&lt;b&gt;y/, 'the message is escaped for HTML');
      const e = await s.send(note(), { deliveryId: 2 }).then(() => null, (x: unknown) => x);
      assert.ok(e instanceof ChannelError && e.rateLimited);
      assert.equal(e.retryAfterMs, 7000);
      assert.doesNotMatch(e.message, /123:ABC/, 'the bot token is not in the error');
    } finally {
      await rx.close();
    }
  });

  test('pagerduty: POST /v2/enqueue, trigger with payload and a dedup_key, resolve with the same dedup_key', async () => {
    const rx = await startReceiver({ reply: (r, _n, res) => { res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: r.json.dedup_key })); return true; } });
    try {
      const s = senderFor(channel({ type: 'pagerduty', routing_key: 'R0UT1NG', api_url: rx.url }));
      await s.send(note(), { deliveryId: 1 });
      await s.send(note({ action: 'resolve', resolveReason: 'run 43 succeeded' }), { deliveryId: 2 });
      const [t, r] = rx.requests;
      assert.equal(t!.path, '/v2/enqueue');
      assert.equal(t!.json.routing_key, 'R0UT1NG');
      assert.equal(t!.json.event_action, 'trigger');
      assert.equal(t!.json.dedup_key, 'segsync-segsync-7');
      assert.ok(t!.json.payload.summary.length <= 1024);
      assert.equal(t!.json.payload.severity, 'error');
      assert.equal(t!.json.payload.source, 'crm-contacts');
      assert.equal(t!.json.links[0].href, 'https://segsync.example.com/runs/42');
      assert.deepEqual(r!.json, { routing_key: 'R0UT1NG', event_action: 'resolve', dedup_key: 'segsync-segsync-7' });
    } finally {
      await rx.close();
    }
  });

  test('webhook: signed per Standard Webhooks; the standardwebhooks library verifies it', async () => {
    const secret = `whsec_${Buffer.from('a-test-secret-of-32-bytes-length').toString('base64')}`;
    const rx = await startReceiver();
    try {
      await senderFor(channel({ type: 'webhook', url: `${rx.url}/hook`, secret })).send(note(), { deliveryId: 99 });
      const r = rx.requests[0]!;
      assert.equal(r.headers['webhook-id'], 'msg_segsync_99');
      assert.match(String(r.headers['webhook-signature']), /^v1,/);
      const verified = new Webhook(secret).verify(r.body, { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) }) as any;
      assert.equal(verified.type, 'alert.trigger');
      assert.equal(verified.data.mapping, 'crm-contacts');
      assert.throws(() => new Webhook(secret).verify(`${r.body} `, { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) }), 'a changed body fails verification');
    } finally {
      await rx.close();
    }
  });

  test('email: over SMTP to a server in this process, with a text and an HTML part', async () => {
    const smtp = await startSmtp();
    const s = senderFor(channel({ type: 'email', smtp_url: smtp.url, from: 'segsync@example.org', to: ['oncall@example.org'] }));
    try {
      await s.send(note(), { deliveryId: 1 });
      assert.equal(smtp.mails.length, 1);
      const m = smtp.mails[0]!;
      assert.equal(m.subject, 'ERROR: run failed on crm-contacts');
      assert.match(m.text ?? '', /Mapping: crm-contacts/);
      assert.match(m.text ?? '', /Details: https:\/\/segsync\.example\.com\/runs\/42/);
      assert.match(String(m.html), /<a href="https:\/\/segsync\.example\.com\/runs\/42">/);
      assert.equal(m.headers.get('x-segsync-incident'), 'segsync-segsync-7');
      assert.doesNotMatch(`${m.text} ${m.html}`, /alice@example\.com/);
    } finally {
      await s.close?.();
      await smtp.close();
    }
  });
});
