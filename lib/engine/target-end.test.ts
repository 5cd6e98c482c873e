import { describe, expect, it } from 'vitest';
import { CancelledError, CleanupError } from '@/lib/engine/pipeline';
import { refuse } from '@/lib/fleet/refusal';
import { namesFailedCleanup, targetEnd } from '@/lib/engine/target-end';

const resume = new CleanupError('resume PgBouncer on pool-1', new Error('connection refused'));
const dns = new CleanupError('put db-orders back', new Error('SERVFAIL'));

describe('targetEnd', () => {
  it('names a failed cleanup beside the step’s own error', () => {
    const end = targetEnd({ ok: false, error: new Error('promote failed'), cleanupErrors: [resume] });
    expect(end).toEqual({
      status: 'failed',
      error: 'promote failed; and a cleanup failed: resume PgBouncer on pool-1: connection refused \u2014 do it by hand',
      refusal: null,
    });
    expect(namesFailedCleanup(end.error)).toBe(true);
  });

  it('fails a target whose steps all succeeded but whose cleanup failed, told once', () => {
    const end = targetEnd({ ok: false, error: resume, cleanupErrors: [resume, dns] });
    expect(end.status).toBe('failed');
    expect(end.error).toBe(
      'no step failed, but 2 cleanups failed: resume PgBouncer on pool-1: connection refused; put db-orders back: SERVFAIL \u2014 do them by hand',
    );
    expect(namesFailedCleanup(end.error)).toBe(true);
  });

  it('fails a cancelled target whose cleanup failed; keeps a refusal’s code', () => {
    expect(targetEnd({ ok: false, error: new CancelledError(), cleanupErrors: [dns] })).toMatchObject({
      status: 'failed',
      error: 'cancelled; and a cleanup failed: put db-orders back: SERVFAIL \u2014 do it by hand',
    });
    expect(targetEnd({ ok: false, error: refuse('split-brain', 'two'), cleanupErrors: [dns] }).refusal).toBe('split-brain');
  });

  it('ends as before when no cleanup failed', () => {
    expect(targetEnd({ ok: true, cleanupErrors: [] })).toEqual({ status: 'succeeded', error: null, refusal: null });
    expect(targetEnd({ ok: false, error: new CancelledError(), cleanupErrors: [] }).status).toBe('cancelled');
    const plain = targetEnd({ ok: false, error: new Error('exit 3'), cleanupErrors: [] });
    expect(plain).toEqual({ status: 'failed', error: 'exit 3', refusal: null });
    expect(namesFailedCleanup(plain.error)).toBe(false);
  });
});
