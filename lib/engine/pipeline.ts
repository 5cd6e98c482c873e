// Operations as plans (pgsql-cluster-manager's Pipeline/Defer): a flow reads as its steps; the
// cleanup of a step is registered before the step runs and always runs, newest first, even when a
// later step fails or the operation is cancelled.

export interface StepRecord {
  name: string;
  command?: string;
  status: 'running' | 'succeeded' | 'failed' | 'skipped';
  exitCode?: number | null;
  stdout?: string;
  stderr?: string;
}

/** Where steps are written as they run (the database for real operations). */
export interface StepRecorder {
  start(seq: number, name: string): Promise<void>;
  finish(seq: number, rec: StepRecord): Promise<void>;
}

export interface StepContext {
  /** Attach what the step ran and printed to its record. */
  note(rec: Partial<Pick<StepRecord, 'command' | 'exitCode' | 'stdout' | 'stderr'>>): void;
  signal: AbortSignal;
}

export interface Step {
  name: string;
  timeoutMs: number;
  run: (ctx: StepContext) => Promise<void>;
  /** Registered before `run`; runs at the end of the pipeline whatever happened. */
  defer?: Step;
  /**
   * Before it runs, the cleanups registered so far run (newest first), as they would at the end: one
   * part of a longer flow is finished before the next begins (a herd resize puts one replica's DNS
   * names back before it drains the next). A cleanup that fails there stops the pipeline.
   */
  settles?: boolean;
  /**
   * A cleanup that gives clients back what the flow took (a paused PgBouncer resumed), safe whoever
   * holds the herd: it runs even when the pipeline ends with an error `leaveCleanups` names (a lost
   * lease), where every other cleanup is left.
   */
  givesBack?: boolean;
  /**
   * A cleanup that undoes the flow's own change (an old primary started again when nothing was
   * promoted): after such an error it runs only while `heldForMs` says no one else may hold the herd
   * yet, and is stopped when that time runs out.
   */
  whileHeld?: boolean;
  /**
   * A safe point all along: the step may be abandoned while it runs (its command killed) when an urgent
   * operation preempts the flow, because what it leaves is undone by a cleanup registered before it (a
   * restore into a folder the flow claimed, a wait for a new replica to stream). Any other step is let
   * finish, and the flow stops before the next.
   */
  preemptible?: boolean;
}

export function step(
  name: string,
  run: Step['run'],
  opts: { timeoutMs?: number; defer?: Step; settles?: boolean; givesBack?: boolean; whileHeld?: boolean; preemptible?: boolean } = {},
): Step {
  return {
    name,
    run,
    timeoutMs: opts.timeoutMs ?? 60_000,
    defer: opts.defer,
    settles: opts.settles,
    givesBack: opts.givesBack,
    whileHeld: opts.whileHeld,
    preemptible: opts.preemptible,
  };
}

export class StepTimeoutError extends Error {
  constructor(
    readonly step: string,
    readonly timeoutMs: number,
  ) {
    super(`step "${step}" did not finish within ${timeoutMs / 1000} s`);
    this.name = 'StepTimeoutError';
  }
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/**
 * The flow was stopped at a safe point for an urgent operation on its herd (lib/engine/preempt.ts):
 * its cleanups run as after a cancel, and the target ends preempted. `by`: the urgent target's id.
 */
export class PreemptedError extends Error {
  constructor(
    readonly by: number,
    message = `preempted by the urgent target ${by}`,
  ) {
    super(message);
    this.name = 'PreemptedError';
  }
}

/**
 * A cleanup that failed, named: what it failed to put back (a PgBouncer left paused, a DNS name left
 * moved) is for a person to finish, so the target's end must say which cleanup it was.
 */
export class CleanupError extends Error {
  constructor(
    readonly step: string,
    readonly failure: Error,
  ) {
    super(`${step}: ${failure.message}`, { cause: failure });
    this.name = 'CleanupError';
  }
}

export interface PipelineResult {
  ok: boolean;
  /** The step's error; when every step succeeded but a cleanup failed, that cleanup's error. */
  error?: Error;
  /** Every cleanup that failed (a settling one included), in the order they ran. */
  cleanupErrors: CleanupError[];
  /** The cleanups not run (the pipeline ended with an error `leaveCleanups` names). */
  cleanupsLeft?: string[];
  /** The cleanups that give something back, run all the same after such an error (and whether each did). */
  givenBack?: { name: string; error: Error | null }[];
}

const reasonOf = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason : new Error('stopped'));

/**
 * `p`, or the stop's reason once `stop` aborts first: a record or a lease check waiting on pgherd's
 * database (frozen, or away) must not keep the flow from ending, and its cleanups from running.
 */
function untilStopped<T>(p: Promise<T>, stop?: AbortSignal): Promise<T> {
  if (!stop) return p;
  if (stop.aborted) {
    p.catch(() => {});
    return Promise.reject(reasonOf(stop));
  }
  let onStop: (() => void) | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      onStop = () => reject(reasonOf(stop));
      stop.addEventListener('abort', onStop, { once: true });
    }),
  ]).finally(() => {
    if (onStop) stop.removeEventListener('abort', onStop);
    p.catch(() => {});
  });
}

/**
 * A recorder that never keeps a step from running: each write is given `ms`, and a failure or a
 * database that does not answer (the usual reason the lease was lost) is passed over.
 */
export function bestEffort(recorder: StepRecorder, ms = 250): StepRecorder {
  const bounded = (p: Promise<void>) => Promise.race([p.catch(() => {}), new Promise<void>((r) => setTimeout(r, ms).unref())]);
  return {
    start: (seq, name) => bounded(recorder.start(seq, name)),
    finish: (seq, rec) => bounded(recorder.finish(seq, rec)),
  };
}

async function runStep(s: Step, seq: number, recorder: StepRecorder, stop?: AbortSignal, preempt?: AbortSignal): Promise<void> {
  if (stop?.aborted) throw reasonOf(stop);
  // A preemptible step also ends, abandoned, when the flow is preempted (a cleanup undoes what it left).
  const abandon = s.preemptible && preempt ? (stop ? AbortSignal.any([stop, preempt]) : preempt) : stop;
  await untilStopped(recorder.start(seq, s.name), stop);
  const ctl = new AbortController();
  const notes: Partial<StepRecord> = {};
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  try {
    await Promise.race([
      s.run({ note: (r) => Object.assign(notes, r), signal: ctl.signal }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // Reject first: a step that reacts to the abort by finishing must still count as timed out.
          reject(new StepTimeoutError(s.name, s.timeoutMs));
          ctl.abort();
        }, s.timeoutMs);
        // Stopped from outside (the herd's lease lost, or a preemptible step preempted): the step is
        // abandoned at once, its signal aborted.
        if (!abandon) return;
        onStop = () => {
          reject(reasonOf(abandon));
          ctl.abort();
        };
        if (abandon.aborted) onStop();
        else abandon.addEventListener('abort', onStop, { once: true });
      }),
    ]);
    await untilStopped(recorder.finish(seq, { ...notes, name: s.name, status: 'succeeded' }), stop);
  } catch (err) {
    const e = err as Error;
    await untilStopped(
      recorder.finish(seq, { ...notes, name: s.name, status: 'failed', stderr: [notes.stderr, e.message].filter(Boolean).join('\n') }),
      stop,
    ).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
    if (onStop) abandon?.removeEventListener('abort', onStop);
  }
}

/**
 * Runs the steps in order. Before each step `gate(i)` may stop the pipeline with an error (cancelled,
 * the herd's lease lost); between steps (not before the first) a `cancelled()` that says true stops
 * it with CancelledError. Deferred cleanups run newest first after the last step (or the failure);
 * their own failures are recorded and reported. `stop` abandons the running step; an error
 * `leaveCleanups` names ends it with no cleanup run.
 */
export async function runPipeline(
  steps: Step[],
  recorder: StepRecorder,
  opts: {
    cancelled?: () => Promise<boolean> | boolean;
    gate?: (i: number) => Promise<Error | null>;
    firstSeq?: number;
    /** Aborted (its reason the error to end with): the running step is abandoned, no other starts. */
    stop?: AbortSignal;
    /**
     * Aborted (its reason the error to end with, a PreemptedError): a running preemptible step is
     * abandoned (any other is let finish), and the cleanups run as after a cancel. Between steps it is the
     * gate that says whether the flow is preempted (the database, which a preemption since withdrawn no
     * longer asks).
     */
    preempt?: AbortSignal;
    /** An end with such an error runs no cleanup: what they would touch may be another's now (a lost lease). */
    leaveCleanups?: (err: Error) => boolean;
    /** After such an error: how long no one else may hold what the flow holds yet (0: it may be another's already). */
    heldForMs?: (err: Error) => number;
    /** Runs each step (cleanups too), as `run`: the worker runs it in the step's log context. */
    around?: (seq: number, name: string, run: () => Promise<void>) => Promise<void>;
  } = {},
): Promise<PipelineResult> {
  let seq = opts.firstSeq ?? 1;
  // A cleanup is never preempted: it is what makes stopping safe.
  const exec = (s: Step, n: number, preempt?: AbortSignal) =>
    opts.around ? opts.around(n, s.name, () => runStep(s, n, recorder, opts.stop, preempt)) : runStep(s, n, recorder, opts.stop, preempt);
  const deferred: Step[] = [];
  let error: Error | undefined;
  const cleanupErrors: CleanupError[] = [];
  const runDeferred = async () => {
    const failed: CleanupError[] = [];
    for (const d of deferred.splice(0).reverse()) {
      try {
        await exec(d, seq++);
      } catch (err) {
        failed.push(new CleanupError(d.name, err instanceof Error ? err : new Error(String(err))));
        if (opts.stop?.aborted) break;
      }
    }
    cleanupErrors.push(...failed);
    return failed;
  };
  for (const [i, s] of steps.entries()) {
    if (i > 0 && opts.cancelled && (await opts.cancelled())) {
      error = new CancelledError();
      break;
    }
    if (opts.gate) {
      const stop = await untilStopped(opts.gate(i), opts.stop).catch((err: unknown) =>
        err instanceof Error ? err : new Error(String(err)),
      );
      if (stop) {
        error = stop;
        break;
      }
    }
    if (s.settles && deferred.length) {
      const [failed] = await runDeferred();
      if (failed) {
        error = failed;
        break;
      }
    }
    if (s.defer) deferred.push(s.defer);
    try {
      await exec(s, seq++, opts.preempt);
    } catch (err) {
      error = err as Error;
      break;
    }
  }
  if (error && opts.leaveCleanups?.(error)) {
    const left: string[] = [];
    const givenBack: { name: string; error: Error | null }[] = [];
    const until = Date.now() + (opts.heldForMs?.(error) ?? 0);
    for (const d of deferred.splice(0).reverse()) {
      const mine = d.whileHeld && until - Date.now() > 1000;
      if (!d.givesBack && !mine) {
        left.push(d.name);
        continue;
      }
      // Not stopped by the stop that ended the flow (an undo only when the time it may run is up),
      // and recorded only where the database lets it.
      try {
        await runStep(d, seq++, bestEffort(recorder), d.givesBack ? undefined : AbortSignal.timeout(Math.max(1, until - Date.now())));
        givenBack.push({ name: d.name, error: null });
      } catch (err) {
        givenBack.push({ name: d.name, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    return { ok: false, error, cleanupErrors, cleanupsLeft: left, givenBack };
  }
  await runDeferred();
  return { ok: !error && !cleanupErrors.length, error: error ?? cleanupErrors[0], cleanupErrors };
}
