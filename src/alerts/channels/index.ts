import type { AlertChannel } from '../../config/alerts.ts';
import type { Sender } from './channel.ts';
import { emailSender } from './email.ts';
import { pagerdutySender } from './pagerduty.ts';
import { slackSender } from './slack.ts';
import { teamsSender } from './teams.ts';
import { telegramSender } from './telegram.ts';
import { webhookSender } from './webhook.ts';

export { ChannelError, channelBurst, channelRate, channelTimeoutMs, type Sender } from './channel.ts';

/** The sender for a configured channel. */
export function senderFor(c: AlertChannel): Sender {
  switch (c.type) {
    case 'slack': return slackSender(c);
    case 'teams': return teamsSender(c);
    case 'telegram': return telegramSender(c);
    case 'pagerduty': return pagerdutySender(c);
    case 'email': return emailSender(c);
    case 'webhook': return webhookSender(c);
  }
}
