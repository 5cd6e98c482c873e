import { describe, expect, it } from 'vitest';
import { PreemptedError, runPipeline, step, type StepRecord, type StepRecorder } from '@/lib/engine/pipeline';
import { targetEnd } from '@/lib/engine/target-end';

function memory(): StepRecorder & { log: string[]; records: StepRecord[] } {
  const log: string[] = [];
  const records: StepRecord[] = [];
  return {
    log,
    records,
    async start(seq, name) {
      log.push(`start ${seq} ${name}`);
    },
    async finish(seq, rec) {
      log.push(`${rec.status} ${seq} ${rec.name}`);
      records.push(rec);
    },
  };
}

describe('runPipeline', () => {
  it('runs steps in order and cleanups newest first at the end', async () => {
    const r = memory();
    const order: string[] = [];
    const res = await runPipeline(
      [
        step(
          'lock',
          async () => {
            order.push('lock');
          },
          {
            defer: step('unlock', async () => {
              order.push('unlock');
            }),
          },
        ),
        step(
          'pause',
          async () => {
            order.push('pause');
          },
          {
            defer: step('resume', async () => {
              order.push('resume');
            }),
          },
        ),
        step('promote', async (ctx) => {
          order.push('promote');
          ctx.note({ command: 'pg_ctl promote', exitCode: 0 });
        }),
      ],
      r,
    );
    expect(res.ok).toBe(true);
    expect(order).toEqual(['lock', 'pause', 'promote', 'resume', 'unlock']);
    expect(r.records[2]).toMatchObject({ name: 'promote', status: 'succeeded', command: 'pg_ctl promote', exitCode: 0 });
  });

  it('a settling step runs the cleanups registered so far before it; one that fails there stops the pipeline', async () => {
    const order: string[] = [];
    const push = (x: string) => async () => void order.push(x);
    const phase = (n: number, settles: boolean, undo: () => Promise<void> = push(`back ${n}`)) =>
      step(`drain ${n}`, push(`drain ${n}`), { defer: step(`back ${n}`, undo), settles });
    const ok = await runPipeline([phase(1, false), phase(2, true), step('last', push('last'), { settles: true })], memory());
    expect(ok.ok).toBe(true);
    expect(order).toEqual(['drain 1', 'back 1', 'drain 2', 'back 2', 'last']);

    order.length = 0;
    const r = memory();
    const failed = await runPipeline(
      [
        phase(1, false, async () => {
          throw new Error('the name did not come back');
        }),
        phase(2, true),
      ],
      r,
    );
    expect(failed.ok).toBe(false);
    // Named for the cleanup that failed, and the same error as the result's cleanup failures.
    expect(failed.error?.message).toBe('back 1: the name did not come back');
    expect(failed.cleanupErrors).toEqual([failed.error]);
    expect(order).toEqual(['drain 1']);
    expect(r.log).toEqual(['start 1 drain 1', 'succeeded 1 drain 1', 'start 2 back 1', 'failed 2 back 1']);
  });

  it('stops at a failure, still runs the cleanups registered so far, and records the error', async () => {
    const r = memory();
    const order: string[] = [];
    const res = await runPipeline(
      [
        step(
          'pause',
          async () => {
            order.push('pause');
          },
          {
            defer: step('resume', async () => {
              order.push('resume');
            }),
          },
        ),
        step(
          'promote',
          async () => {
            throw new Error('promote refused');
          },
          {
            defer: step('restart old primary', async () => {
              order.push('undo');
            }),
          },
        ),
        step('never', async () => {
          order.push('never');
        }),
      ],
      r,
    );
    expect(res.ok).toBe(false);
    expect(res.error?.message).toBe('promote refused');
    expect(order).toEqual(['pause', 'undo', 'resume']);
    expect(r.log).toEqual([
      'start 1 pause',
      'succeeded 1 pause',
      'start 2 promote',
      'failed 2 promote',
      'start 3 restart old primary',
      'succeeded 3 restart old primary',
      'start 4 resume',
      'succeeded 4 resume',
    ]);
    expect(r.records[1]!.stderr).toBe('promote refused');
  });

  it('times a step out and aborts its signal', async () => {
    const r = memory();
    let aborted = false;
    const res = await runPipeline(
      [
        step(
          'wait',
          (ctx) =>
            new Promise((resolve) =>
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                resolve();
              }),
            ),
          { timeoutMs: 50 },
        ),
      ],
      r,
    );
    expect(res.error?.name).toBe('StepTimeoutError');
    expect(aborted).toBe(true);
  });

  it('stopped from outside (a lost lease): the running step is abandoned and aborted, nothing after it runs, no cleanup', async () => {
    const r = memory();
    const stop = new AbortController();
    const order: string[] = [];
    let aborted = false;
    const lost = new Error('the lease was lost');
    let slowEnded = () => {};
    const slowEnd = new Promise<void>((r) => (slowEnded = r));
    const res = await runPipeline(
      [
        step(
          'one',
          async () => {
            order.push('one');
          },
          { defer: step('undo one', async () => void order.push('undo one')) },
        ),
        step(
          'slow',
          (ctx) =>
            new Promise<void>((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
              });
              setTimeout(() => {
                order.push('slow ended');
                resolve();
                slowEnded();
              }, 300);
              setTimeout(() => stop.abort(lost), 20);
            }),
          { timeoutMs: 5000 },
        ),
        step('three', async () => void order.push('three')),
      ],
      r,
      { stop: stop.signal, leaveCleanups: (e) => e === lost },
    );
    expect(res.error).toBe(lost);
    expect(res.cleanupsLeft).toEqual(['undo one']);
    expect(aborted).toBe(true);
    expect(order).toEqual(['one']);
    expect(r.records.map((x) => [x.name, x.status])).toEqual([
      ['one', 'succeeded'],
      ['slow', 'failed'],
    ]);
    // The abandoned step's own work ends in the background; nothing ran after it, once everything its
    // end set going has had its turn (a macrotask comes after every promise continuation queued).
    await slowEnd;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['one', 'slow ended']);
  });

  it('after a lost lease runs only the cleanups that give back, even while the record and the lease check hang', async () => {
    const lost = new Error('lease lost');
    const stop = new AbortController();
    const order: string[] = [];
    // pgherd's database frozen from the second step on: every record and every lease check hangs.
    const frozen = { on: false };
    const hang = new Promise<void>(() => {});
    const r = memory();
    const recorder: StepRecorder = {
      start: (seq, name) => (frozen.on ? hang : r.start(seq, name)),
      finish: (seq, rec) => (frozen.on ? hang : r.finish(seq, rec)),
    };
    const res = await runPipeline(
      [
        step('pause', async () => void order.push('pause'), {
          defer: step('resume', async () => void order.push('resume'), { givesBack: true }),
        }),
        step(
          'stop old',
          async () => {
            order.push('stop old');
            frozen.on = true;
            setTimeout(() => stop.abort(lost), 20);
          },
          { defer: step('start old again', async () => void order.push('start old again')) },
        ),
        step('promote', async () => void order.push('promote')),
      ],
      recorder,
      {
        stop: stop.signal,
        leaveCleanups: (e) => e === lost,
        gate: async (i) => (frozen.on && i > 0 ? hang.then(() => null) : null),
      },
    );
    expect(res.error).toBe(lost);
    expect(order).toEqual(['pause', 'stop old', 'resume']);
    expect(res.cleanupsLeft).toEqual(['start old again']);
    expect(res.givenBack).toEqual([{ name: 'resume', error: null }]);
  });

  it('after a lost lease still its own for a while, runs an undo marked whileHeld, stopped when that time is up', async () => {
    const lost = new Error('lease unconfirmed');
    const run = async (heldMs: number, undoMs: number) => {
      const stop = new AbortController();
      const order: string[] = [];
      const res = await runPipeline(
        [
          step('stop old', async () => void order.push('stop old'), {
            defer: step(
              'start old again',
              (ctx) =>
                new Promise<void>((resolve, reject) => {
                  const t = setTimeout(() => {
                    order.push('start old again');
                    resolve();
                  }, undoMs);
                  ctx.signal.addEventListener('abort', () => {
                    clearTimeout(t);
                    reject(new Error('out of time'));
                  });
                }),
              { whileHeld: true },
            ),
          }),
          step('promote', async () => {
            stop.abort(lost);
            await new Promise(() => {});
          }),
        ],
        memory(),
        { stop: stop.signal, leaveCleanups: (e) => e === lost, heldForMs: () => heldMs },
      );
      return { order, res };
    };
    const inTime = await run(3000, 10);
    expect(inTime.order).toEqual(['stop old', 'start old again']);
    expect(inTime.res.givenBack).toEqual([{ name: 'start old again', error: null }]);
    const noTime = await run(0, 10);
    expect(noTime.order).toEqual(['stop old']);
    expect(noTime.res.cleanupsLeft).toEqual(['start old again']);
    const tooSlow = await run(1200, 5000);
    expect(tooSlow.order).toEqual(['stop old']);
    expect(tooSlow.res.givenBack?.[0]?.error).toBeInstanceOf(Error);
  });

  it('preempted: a preemptible step is abandoned at once, every cleanup runs (none preempted), the target ends preempted', async () => {
    const r = memory();
    const preempt = new AbortController();
    const order: string[] = [];
    let aborted = false;
    const res = await runPipeline(
      [
        step('claim folder', async () => void order.push('claim'), {
          defer: step('remove folder', async () => void order.push('remove folder'), { preemptible: true }),
        }),
        step(
          'restore',
          (ctx) =>
            new Promise<void>((resolve) => {
              ctx.signal.addEventListener('abort', () => (aborted = true));
              setTimeout(() => preempt.abort(new PreemptedError(7)), 20);
              setTimeout(resolve, 2000);
            }),
          { timeoutMs: 5000, preemptible: true },
        ),
        step('start', async () => void order.push('start')),
      ],
      r,
      { preempt: preempt.signal },
    );
    expect(aborted).toBe(true);
    expect(res.error).toBeInstanceOf(PreemptedError);
    expect(order).toEqual(['claim', 'remove folder']);
    expect(r.records.map((x) => [x.name, x.status])).toEqual([
      ['claim folder', 'succeeded'],
      ['restore', 'failed'],
      ['remove folder', 'succeeded'],
    ]);
    expect(targetEnd(res)).toMatchObject({ status: 'preempted' });
  });

  it('preempted during a step that is not preemptible: it is let finish, and nothing after it starts', async () => {
    const r = memory();
    const preempt = new AbortController();
    const order: string[] = [];
    const res = await runPipeline(
      [
        step('switch over', async () => {
          preempt.abort(new PreemptedError(7));
          await new Promise((res) => setTimeout(res, 30));
          order.push('switched');
        }),
        step('next', async () => void order.push('next')),
      ],
      r,
      // The gate is what says so between steps (the worker's reads the database).
      { preempt: preempt.signal, gate: async () => (preempt.signal.aborted ? (preempt.signal.reason as Error) : null) },
    );
    expect(order).toEqual(['switched']);
    expect(r.records.map((x) => [x.name, x.status])).toEqual([['switch over', 'succeeded']]);
    expect(targetEnd(res)).toMatchObject({ status: 'preempted' });
  });

  it('preempted, with a cleanup that fails: the target fails and names the cleanup (a person must finish it)', async () => {
    const preempt = new AbortController();
    const res = await runPipeline(
      [
        step('one', async () => void preempt.abort(new PreemptedError(7)), {
          defer: step('undo one', async () => {
            throw new Error('the folder is busy');
          }),
        }),
        step('two', async () => {}),
      ],
      memory(),
      { preempt: preempt.signal, gate: async () => (preempt.signal.aborted ? (preempt.signal.reason as Error) : null) },
    );
    expect(targetEnd(res)).toMatchObject({ status: 'failed', error: expect.stringContaining('undo one: the folder is busy') });
  });

  it('checks for cancellation between steps, then cleans up', async () => {
    const r = memory();
    let cancel = false;
    const order: string[] = [];
    const res = await runPipeline(
      [
        step(
          'one',
          async () => {
            order.push('one');
            cancel = true;
          },
          {
            defer: step('undo one', async () => {
              order.push('undo one');
            }),
          },
        ),
        step('two', async () => {
          order.push('two');
        }),
      ],
      r,
      { cancelled: () => cancel },
    );
    expect(res.error?.name).toBe('CancelledError');
    expect(order).toEqual(['one', 'undo one']);
  });

  it('reports a failing cleanup without hiding the others', async () => {
    const r = memory();
    const res = await runPipeline(
      [
        step('a', async () => {}, { defer: step('undo a', async () => {}) }),
        step('b', async () => {}, {
          defer: step('undo b', async () => {
            throw new Error('resume failed');
          }),
        }),
      ],
      r,
    );
    expect(res.ok).toBe(false);
    expect(res.cleanupErrors.map((e) => [e.step, e.failure.message, e.message])).toEqual([
      ['undo b', 'resume failed', 'undo b: resume failed'],
    ]);
    expect(res.error).toBe(res.cleanupErrors[0]);
    expect(r.records.map((x) => `${x.name}:${x.status}`)).toEqual(['a:succeeded', 'b:succeeded', 'undo b:failed', 'undo a:succeeded']);
  });
});
