import type { AlertChannel } from '../../config/alerts.ts';
import { plainText, truncate, type Notification } from '../notification.ts';
import { channelTimeoutMs, postJson, type Sender } from './channel.ts';

type Slack = Extract<AlertChannel, { type: 'slack' }>;

const EMOJI: Record<string, string> = { critical: ':rotating_light:', error: ':red_circle:', warning: ':warning:', info: ':information_source:' };

/** Escapes what Slack's mrkdwn treats as control characters (&, <, >). */
function mrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Block Kit message: header, the message as a section (3,000 characters at most), facts, a button to the dashboard. */
export function slackPayload(n: Notification): object {
  const icon = n.action === 'resolve' ? ':white_check_mark:' : (EMOJI[n.severity] ?? '');
  const fields = [
    ...(n.mapping ? [{ type: 'mrkdwn', text: `*Mapping*\n${mrkdwn(n.mapping)}` }] : []),
    { type: 'mrkdwn', text: `*Severity*\n${n.severity}` },
    ...(n.action !== 'test' ? [{ type: 'mrkdwn', text: `*Since*\n${n.since}` }, { type: 'mrkdwn', text: `*Events*\n${n.events}` }] : []),
  ];
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`${n.title}`, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: truncate(`${icon} ${mrkdwn(n.message)}`, 3000) } },
    { type: 'section', fields },
  ];
  if (n.action === 'resolve' && n.resolveReason) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: truncate(`Cleared: ${mrkdwn(n.resolveReason)}`, 3000) }] });
  if (n.link) blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: n.runId !== null ? `Run ${n.runId}` : 'Open in segsync' }, url: n.link }] });
  return { text: truncate(plainText(n), 3000), blocks };
}

export function slackSender(c: Slack): Sender {
  return {
    async send(n, ctx) {
      await postJson('slack', c.url, JSON.stringify(slackPayload(n)), { timeoutMs: channelTimeoutMs(c), ...(ctx.signal ? { signal: ctx.signal } : {}) });
    },
  };
}
