import { Counter } from 'prom-client';
import { registry } from '../metrics.ts';

/** Alert deliveries by channel and outcome (sent, retry, rate_limited, failed), on the daemon's /metrics. */
export const alertDeliveries = new Counter({
  name: 'segsync_alert_deliveries_total',
  help: 'alert delivery attempts by channel and outcome (sent, retry, rate_limited, failed)',
  labelNames: ['channel', 'type', 'outcome'] as const,
  registers: [registry],
});
