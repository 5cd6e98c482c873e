// What a worker process is started with: connections, and the clocks of its chores (tests shorten them).
export interface WorkerConfig {
  databaseUrl: string;
  redisUrl: string;
  /** The SSH key of environments PGHERD_SSH_KEYS does not list (PGHERD_SSH_KEY). */
  sshKeyPath?: string;
  concurrency?: number;
  reconcileEveryMs?: number;
  /** The queue's Redis key prefix (default PGHERD_QUEUE_PREFIX, else "pgherd"). */
  queuePrefix?: string;
  /** How often the fleet's state is refreshed (one worker at a time does it); 0: never. */
  refreshEveryMs?: number;
  /** No log lines (benchmarks and tests that print their own). */
  quiet?: boolean;
  /** How often the wave conductor samples health gates (and looks for waves that ended); default PGHERD_WAVE_ROUND_MS, else 1 s. */
  waveRoundMs?: number;
  /** Awaited once a target is claimed, before its first step (a test holds a target running here to kill the worker). */
  beforeSteps?: () => Promise<void>;
  /** Rules: fires younger than this are left to the job schedulers; older ones not recorded are caught up (default 30 s). */
  ruleCatchUpSlackMs?: number;
  /** How often the rules' schedulers are checked against the rules table and missed fires looked for (default 60 s). */
  ruleReconcileEveryMs?: number;
  /** How often Patroni herds' /cluster is read for DNS to follow their leader (default PGHERD_PATRONI_FOLLOW_MS, else 5 s); 0: never. */
  patroniFollowEveryMs?: number;
  settingsEveryMs?: number;
  objectsEveryMs?: number;
  /** How often auto-replace looks for members gone (default PGHERD_AUTO_REPLACE_EVERY_MS). */
  autoReplaceEveryMs?: number;
  /** How often the risks are judged (default PGHERD_RISKS_JUDGE_MS). */
  risksEveryMs?: number;
  /** How often the fleet's lag and state are sampled for the charts (default PGHERD_LAG_SAMPLE_MS, else 60 s); 0: never. */
  lagSampleEveryMs?: number;
  /** Where this worker answers GET /metrics (PGHERD_WORKER_METRICS_LISTEN); none: not served. */
  metricsListen?: { host: string; port: number } | null;
  /** The token /metrics asks for (PGHERD_METRICS_TOKEN); null: none (the address alone guards it). */
  metricsToken?: string | null;
}
