// Group commit for the engine's bookkeeping: the targets one worker process runs at once each end
// (and each are claimed) with a statement of their own, and on a busy pool most of what such a
// statement costs is its being one (a round trip, the executor's start, a commit), not its rows.
// A coalescer sends the first request at once, alone (no added wait on a quiet pool); the requests
// that arrive while it is in flight go together in the next statement, and so on.

export interface Coalescer<I, R> {
  (item: I): Promise<R>;
  /** Requests waiting or in flight (for tests). */
  readonly pending: () => number;
}

/**
 * `run` takes a batch and gives one result an item, in order. A batch of several that fails is run
 * again one item at a time unless `whole(err)` says the failure is not the items' (the database is
 * away: each alone would fail the same way), so one item the database refuses fails alone.
 * Batches of one key are sent one at a time; batches of different keys are independent.
 */
export function coalescer<I, R>(
  run: (items: I[]) => Promise<R[]>,
  opts: { key: (item: I) => string | number; max?: number; whole?: (err: unknown) => boolean },
): Coalescer<I, R> {
  const max = opts.max ?? 64;
  const queues = new Map<string | number, { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[]>();
  let count = 0;

  const settle = async (batch: { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[]) => {
    try {
      const out = await run(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(out[i] as R));
    } catch (err) {
      if (batch.length === 1 || opts.whole?.(err)) {
        for (const b of batch) b.reject(err);
        return;
      }
      for (const b of batch) await settle([b]);
    }
  };

  const drain = async (key: string | number) => {
    for (;;) {
      const q = queues.get(key);
      if (!q?.length) {
        queues.delete(key);
        return;
      }
      const batch = q.splice(0, max);
      await settle(batch);
      count -= batch.length;
    }
  };

  const submit = (item: I) =>
    new Promise<R>((resolve, reject) => {
      const key = opts.key(item);
      const q = queues.get(key);
      count++;
      if (q) return void q.push({ item, resolve, reject });
      queues.set(key, [{ item, resolve, reject }]);
      void drain(key);
    });
  return Object.assign(submit, { pending: () => count });
}
