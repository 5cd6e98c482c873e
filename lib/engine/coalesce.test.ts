import { describe, expect, it } from 'vitest';
import { coalescer } from '@/lib/engine/coalesce';

/** A run that records each batch and answers once released. */
function recorded<I>() {
  const batches: I[][] = [];
  const gates: (() => void)[] = [];
  const run = async (items: I[]) => {
    batches.push(items);
    await new Promise<void>((r) => gates.push(r));
    return items.map((i) => `done ${String(i)}`);
  };
  const release = async () => {
    while (!gates.length) await new Promise((r) => setImmediate(r));
    gates.shift()?.();
  };
  return { batches, run, release };
}

describe('coalescer', () => {
  it('sends the first request alone at once, and those that come while it is in flight together next, each getting its own result', async () => {
    const r = recorded<number>();
    const submit = coalescer(r.run, { key: () => 'k' });
    const first = submit(1);
    await new Promise((res) => setImmediate(res));
    expect(r.batches).toEqual([[1]]);
    const rest = [submit(2), submit(3), submit(4)];
    expect(submit.pending()).toBe(4);
    await r.release();
    expect(await first).toBe('done 1');
    await r.release();
    expect(await Promise.all(rest)).toEqual(['done 2', 'done 3', 'done 4']);
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
    expect(submit.pending()).toBe(0);
  });

  it('sends batches of one key one at a time, of at most `max` items; another key does not wait for it', async () => {
    const r = recorded<string>();
    const submit = coalescer(r.run, { key: (s) => s[0] ?? '', max: 2 });
    const a = ['a1', 'a2', 'a3', 'a4'].map(submit);
    const b = submit('b1');
    await new Promise((res) => setImmediate(res));
    // a1 alone, and b1 alone beside it: two keys in flight at once.
    expect(r.batches).toEqual([['a1'], ['b1']]);
    for (let i = 0; i < 4; i++) await r.release();
    await Promise.all([...a, b]);
    expect(r.batches).toEqual([['a1'], ['b1'], ['a2', 'a3'], ['a4']]);
  });

  it('runs a failed batch again one item at a time, so only the item at fault fails', async () => {
    const batches: number[][] = [];
    const submit = coalescer(
      async (items: number[]) => {
        batches.push(items);
        if (items.includes(13)) throw new Error('13 refused');
        return items.map((i) => i * 2);
      },
      { key: () => 0 },
    );
    const results = await Promise.allSettled([1, 2, 13, 4].map(submit));
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([2, 4, '13 refused', 8]);
    expect(batches).toEqual([[1], [2, 13, 4], [2], [13], [4]]);
  });

  it('fails the whole batch without trying each item when the failure is not the items\u2019 (the database is away)', async () => {
    const batches: number[][] = [];
    const submit = coalescer(
      async (items: number[]) => {
        batches.push(items);
        if (items.length > 1) throw new Error('connection refused');
        return items;
      },
      { key: () => 0, whole: (err) => (err as Error).message === 'connection refused' },
    );
    const results = await Promise.allSettled([1, 2, 3].map(submit));
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(batches).toEqual([[1], [2, 3]]);
    // And the next request after it goes through.
    expect(await submit(9)).toBe(9);
  });
});
