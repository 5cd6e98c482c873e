// pgherd's Prometheus metrics (prom-client): one registry per process, the same object whichever
// bundle asks for it (the console's own server and Next's route bundles each load this module).
//
// What each process counts is what it does: a worker counts the targets and steps it runs and the
// times it found a herd busy; the web process counts agent reports. What is true of the whole fleet
// (lag, silent agents, two primaries, DNS drift, queue depth) is read from pgherd's database and Redis
// by the web process when it is scraped (lib/features/metrics/fleet.ts): every worker exporting it too would
// only repeat it.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  /** A target ended: by action and how (succeeded, failed, cancelled, interrupted). */
  targets: Counter<'action' | 'outcome'>;
  /** A step ran: how long, by action, step (instance and PgBouncer names taken out) and how it ended. */
  stepSeconds: Histogram<'action' | 'step' | 'status'>;
  /** A target found its herd leased to another target (or its site or environment at its cap) and went back to wait. */
  leaseWaits: Counter<'action'>;
  /** An agent report answered: by result (accepted, refused, invalid, unavailable, error). */
  ingestReports: Counter<'result'>;
  /** How long a report took to answer (the write included: reports are answered once written). */
  ingestSeconds: Histogram<'result'>;
  /** A fleet server asked for a password in clear text or as MD5: refused, the connection closed. */
  weakAuthRefused: Counter<'method'>;
}

const KEY = Symbol.for('pgherd.metrics');

function create(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    targets: new Counter({
      name: 'pgherd_operation_targets_total',
      help: 'Operation targets ended in this worker, by action and outcome.',
      labelNames: ['action', 'outcome'] as const,
      registers: [registry],
    }),
    stepSeconds: new Histogram({
      name: 'pgherd_step_duration_seconds',
      help: 'Steps run in this worker: duration by action, step (its name with instance and PgBouncer names replaced by {instance} and {pgbouncer}) and status.',
      labelNames: ['action', 'step', 'status'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers: [registry],
    }),
    leaseWaits: new Counter({
      name: 'pgherd_target_lease_waits_total',
      help: "Times a target found its herd's lease held (or its site's or environment's cap reached) and was put back to wait, by action.",
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    ingestReports: new Counter({
      name: 'pgherd_ingest_reports_total',
      help: 'Agent reports answered by this web process, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    ingestSeconds: new Histogram({
      name: 'pgherd_ingest_duration_seconds',
      help: 'Time to answer an agent report (its write included), by result.',
      labelNames: ['result'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    weakAuthRefused: new Counter({
      name: 'pgherd_pg_weak_auth_refused_total',
      help: 'Connections to fleet servers (Postgres, PgBouncer) closed because the server asked for the password in clear text or as MD5, by method.',
      labelNames: ['method'] as const,
      registers: [registry],
    }),
  };
}

/** This process's metrics (made on first use). */
export function metrics(): Metrics {
  const g = globalThis as unknown as Record<symbol, Metrics | undefined>;
  return (g[KEY] ??= create());
}

/** What an agent report's HTTP status says happened, as the `result` label. */
export function ingestResult(status: number): 'accepted' | 'refused' | 'invalid' | 'unavailable' | 'error' {
  if (status < 300) return 'accepted';
  if (status === 401 || status === 403) return 'refused';
  if (status === 503 || status === 429) return 'unavailable';
  if (status < 500) return 'invalid';
  return 'error';
}

/**
 * A step's name as a label: the names of the instances and PgBouncers it acts on (which make every
 * herd's steps differ) replaced, so that the series are one per kind of step, not one per host.
 */
export function stepLabel(name: string, names: { instances: string[]; poolers: string[] }): string {
  let out = name;
  const swap = (list: string[], placeholder: string) => {
    // Longest first: "db-10:5432" before "db-1:5432" would leave "0" behind otherwise.
    for (const n of [...new Set(list)].filter(Boolean).sort((a, b) => b.length - a.length)) out = out.split(n).join(placeholder);
  };
  swap(names.poolers, '{pgbouncer}');
  swap(names.instances, '{instance}');
  return out.slice(0, 120);
}
