// One JSON line per event, for the worker and the web process's queue handle. A line written while a
// target runs carries its operation and target (and, inside a step, the step's number and name), from
// the log context the worker sets around them, whoever writes it (an SSH connection, a lease's heartbeat).
import { AsyncLocalStorage } from 'node:async_hooks';

/** What every line written within it carries: operationId, targetId, action; step and stepName within a step. */
export interface LogContext {
  operationId?: number;
  targetId?: number;
  action?: string;
  /** The step's number within its target (operation_steps.seq: the step is (targetId, step)). */
  step?: number;
  stepName?: string;
}

const context = new AsyncLocalStorage<LogContext>();

/**
 * Runs `fn` with `fields` added to every log line written within it (nested contexts add to the outer
 * one). `fn` gets the context itself: what it learns later (a claimed target's operation) it adds there.
 */
export function withLogContext<T>(fields: LogContext, fn: (ctx: LogContext) => T): T {
  const ctx = { ...context.getStore(), ...fields };
  return context.run(ctx, () => fn(ctx));
}

export function logLine(event: string, fields: object = {}) {
  console.log(JSON.stringify({ at: new Date().toISOString(), event, ...context.getStore(), ...fields }));
}

/** The same event at most once per `ms` (with how many were left out), so an outage does not flood the log. */
export function throttled(log: (e: string, f: object) => void, ms: number) {
  const last = new Map<string, { at: number; skipped: number }>();
  return (event: string, fields: object) => {
    const seen = last.get(event);
    if (seen && Date.now() - seen.at < ms) return void seen.skipped++;
    log(event, { ...fields, ...(seen?.skipped ? { repeated: seen.skipped } : {}) });
    last.set(event, { at: Date.now(), skipped: 0 });
  };
}
