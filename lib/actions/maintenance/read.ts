// What the maintenance actions read of an instance before planning (each target once, on the
// confirmation page and again when it runs): over one connection of pgherd's role, bounded.
import type pg from 'pg';
import { withInstance } from '@/lib/fleet/pg-access';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** `fn` over a short connection to `database` on `t` (its error, in words, when it does not answer). */
export async function readOn<T>(t: InstanceRef, fn: (c: pg.Client) => Promise<T>, database = 'postgres'): Promise<T | { error: string }> {
  try {
    return await withInstance(
      t,
      { database, connectionTimeoutMillis: 5000, statement_timeout: 10_000, application_name: 'pgherd-maintenance' },
      fn,
    );
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

export const failed = (x: unknown): x is { error: string } => typeof x === 'object' && x !== null && 'error' in x;

/** Each target's reading by its id. */
export async function readEach<T>(targets: InstanceRef[], fn: (t: InstanceRef) => Promise<T>): Promise<Map<number, T>> {
  return new Map(await Promise.all(targets.map(async (t) => [t.id, await fn(t)] as const)));
}

/** A target's reading, or undefined when nothing was prepared (a plan made outside the engine: a test's). */
export const readingOf = <V>(prepared: Map<number, V> | undefined, id: number): V | undefined => prepared?.get(id);
