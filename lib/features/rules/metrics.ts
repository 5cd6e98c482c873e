// What a rule's conditions can measure, and how many the console's form offers (shared with the browser).

export const CONDITION_METRICS = ['lag_seconds', 'active_connections', 'herd_worst_lag_seconds', 'load_average'] as const;
export type Metric = (typeof CONDITION_METRICS)[number];

/** What a metric is, in the words a run's history uses. */
export const METRIC_WORDS: Record<Metric, string> = {
  lag_seconds: 'replay lag (s)',
  active_connections: 'active connections',
  herd_worst_lag_seconds: "the herd's worst replay lag (s)",
  load_average: "the host's 1-minute load average (its agent's last report)",
};

/** How many condition rows the console's form offers. */
export const CONDITION_ROWS = 3;
