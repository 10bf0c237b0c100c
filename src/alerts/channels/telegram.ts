import type { AlertChannel } from '../../config/alerts.ts';
import { escapeHtml, type Notification } from '../notification.ts';
import { ChannelError, channelTimeoutMs, postJson, type Sender } from './channel.ts';

type Telegram = Extract<AlertChannel, { type: 'telegram' }>;

export const TELEGRAM_MAX_CHARS = 4096;

/** sendMessage's text in HTML parse mode, at most 4,096 characters after entities are parsed. */
export function telegramText(n: Notification): string {
  const tail = [
    ...(n.mapping ? [`Mapping: ${escapeHtml(n.mapping)}`] : []),
    ...(n.action !== 'test' ? [`Since: ${escapeHtml(n.since)} (${n.events} event${n.events === 1 ? '' : 's'})`] : []),
    ...(n.action === 'resolve' && n.resolveReason ? [`Cleared: ${escapeHtml(n.resolveReason)}`] : []),
    ...(n.link ? [`<a href="${escapeHtml(n.link)}">Details</a>`] : []),
  ].join('\n');
  const head = `<b>${escapeHtml(n.title)}</b>\n`;
  // Counted on the text as sent (entities included): never over the limit, whatever the parser counts.
  let msg = n.message;
  for (;;) {
    const text = `${head}${escapeHtml(msg)}\n\n${tail}`;
    if (text.length <= TELEGRAM_MAX_CHARS || !msg) return text;
    msg = `${msg.slice(0, Math.max(0, msg.length - (text.length - TELEGRAM_MAX_CHARS) - 1))}…`.replace(/^…$/, '');
  }
}

export function telegramSender(c: Telegram): Sender {
  const url = `${c.api_url.replace(/\/+$/, '')}/bot${c.bot_token}/sendMessage`;
  return {
    async send(n, ctx) {
      const body = JSON.stringify({ chat_id: c.chat_id, text: telegramText(n), parse_mode: 'HTML', link_preview_options: { is_disabled: true } });
      const text = await postJson('telegram', url, body, {
        timeoutMs: channelTimeoutMs(c), ...(ctx.signal ? { signal: ctx.signal } : {}),
        retryAfterFromBody: (t) => {
          try {
            const s = (JSON.parse(t) as { parameters?: { retry_after?: number } }).parameters?.retry_after;
            return typeof s === 'number' ? s * 1000 : undefined;
          } catch {
            return undefined;
          }
        },
      });
      let parsed: { ok?: boolean; description?: string } = {};
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        // an answer that is not JSON: judged below
      }
      if (parsed.ok !== true) throw new ChannelError(`telegram: answer was not ok: ${(parsed.description ?? text).slice(0, 200)}`);
    },
  };
}
