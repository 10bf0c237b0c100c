import nodemailer from 'nodemailer';
import type { AlertChannel } from '../../config/alerts.ts';
import { maskEmails } from '../../log.ts';
import { escapeHtml, plainText, type Notification } from '../notification.ts';
import { ChannelError, channelTimeoutMs, type Sender } from './channel.ts';

type Email = Extract<AlertChannel, { type: 'email' }>;

export function emailHtml(n: Notification): string {
  const row = (k: string, v: string) => `<tr><th align="left" style="padding-right:1em">${escapeHtml(k)}</th><td>${v}</td></tr>`;
  const rows = [
    ...(n.mapping ? [row('Mapping', escapeHtml(n.mapping))] : []),
    row('Severity', escapeHtml(n.severity)),
    ...(n.action !== 'test' ? [row('Since', escapeHtml(n.since)), row('Events', String(n.events))] : []),
    ...(n.action === 'resolve' && n.resolveReason ? [row('Cleared', escapeHtml(n.resolveReason))] : []),
    ...(n.link ? [row('Details', `<a href="${escapeHtml(n.link)}">${escapeHtml(n.link)}</a>`)] : []),
  ];
  return `<!doctype html><html><body><h2>${escapeHtml(n.title)}</h2><p>${escapeHtml(n.message)}</p><table>${rows.join('')}</table></body></html>`;
}

/** E-mail over SMTP with nodemailer: a text and an HTML part; the incident id in a header for mail rules. */
export function emailSender(c: Email): Sender {
  const timeout = channelTimeoutMs(c);
  const u = new URL(c.smtp_url);
  const secure = u.protocol === 'smtps:';
  const transport = nodemailer.createTransport({
    host: u.hostname, port: u.port ? Number(u.port) : secure ? 465 : 587, secure,
    ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
    // a local relay without TLS (tests, sidecars): allowed only when the URL asks for it
    ...(u.searchParams.get('tls') === 'off' ? { ignoreTLS: true } : {}),
    connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout,
  });
  return {
    async send(n) {
      try {
        await transport.sendMail({
          from: c.from, to: c.to, subject: n.title, text: plainText(n), html: emailHtml(n),
          headers: { 'X-Segsync-Incident': n.incident, 'X-Segsync-Action': n.action },
        });
      } catch (err) {
        const e = err as { responseCode?: number; code?: string; message: string };
        // A 5xx reply is a permanent refusal (it will say the same next time); 4xx and network errors pass.
        throw new ChannelError(`email: ${e.code ?? 'error'}${e.responseCode ? ` ${e.responseCode}` : ''}: ${maskEmails(String(e.message)).slice(0, 200)}`, { permanent: (e.responseCode ?? 0) >= 500 });
      }
    },
    async close() {
      transport.close();
    },
  };
}
