// How a pipeline's result ends a target: its status and the error the operation page and the failure
// webhook carry. A cleanup that failed is never hidden: it is named beside the step's own error, and
// it fails the target even when every step succeeded or the operation was cancelled (or preempted), because what it
// should have put back (a PgBouncer left paused, a DNS name left moved) is left for a person to do.
import { CancelledError, PreemptedError, type CleanupError, type PipelineResult } from '@/lib/engine/pipeline';
import { Refusal, type RefusalCode } from '@/lib/fleet/refusal';

export interface TargetEnd {
  status: 'succeeded' | 'failed' | 'cancelled' | 'preempted';
  error: string | null;
  refusal: RefusalCode | null;
}

/** The words that introduce the failed cleanups in a target's error (the page finds them by these). */
const CLEANUPS_FAILED = /(?:; and |, but )(?:a cleanup|\d+ cleanups) failed: /;

/** Whether a target's error names a failed cleanup (the page shows such a target as needing a person). */
export const namesFailedCleanup = (error: string | null): boolean => error !== null && CLEANUPS_FAILED.test(error);

/** The failed cleanups, each named, and that a person must finish what they did not. */
export function cleanupsText(failed: CleanupError[]): string {
  const n = failed.length;
  return `${n === 1 ? 'a cleanup' : `${n} cleanups`} failed: ${failed.map((e) => e.message).join('; ')} \u2014 do ${n === 1 ? 'it' : 'them'} by hand`;
}

export function targetEnd(res: Pick<PipelineResult, 'ok' | 'error' | 'cleanupErrors'>): TargetEnd {
  if (res.ok) return { status: 'succeeded', error: null, refusal: null };
  const failed = res.cleanupErrors;
  // A settling cleanup that failed is the pipeline's error too: it is told once, as a cleanup.
  const own = res.error && !(failed as Error[]).includes(res.error) ? res.error : undefined;
  const refusal = own instanceof Refusal ? own.code : null;
  if (!failed.length) {
    if (own instanceof CancelledError) return { status: 'cancelled', error: own.message, refusal: null };
    if (own instanceof PreemptedError) return { status: 'preempted', error: own.message, refusal: null };
    return { status: 'failed', error: own?.message ?? 'failed', refusal };
  }
  const error = own ? `${own.message}; and ${cleanupsText(failed)}` : `no step failed, but ${cleanupsText(failed)}`;
  return { status: 'failed', error, refusal };
}
