// How long to let a failover candidate replay before promoting it: until it has replayed all it can,
// which is not always all it received. A primary that dies mid-record has sent WAL up to a page
// boundary past its last complete record; that tail is received but can never be replayed, and a
// wait for "replayed >= received" then runs out its whole deadline on a healthy candidate (seen: 30 s
// for one herd of six in four benchmark runs of five). So: done when replay reaches what was
// received, or when neither what it receives nor what it replays has moved for QUIET_MS.
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { observe, type Observed, type PgEndpoint } from '@/lib/fleet/observe';

/** Replay of WAL already on disk moves many times within this; a still stream and a still replay mean the end. */
export const QUIET_MS = 300;

export interface ReplayResult {
  how: 'all' | 'stalled' | 'deadline';
  /** The replay position when it ended. */
  replayed: string | null;
  observed: Observed;
}

export async function replayWhatItCan(
  e: PgEndpoint,
  received: string,
  opts: { signal?: AbortSignal; deadlineMs: number; everyMs?: number; quietMs?: number },
): Promise<ReplayResult> {
  const quiet = opts.quietMs ?? QUIET_MS;
  const deadline = Date.now() + opts.deadlineMs;
  let last = '';
  let since = Date.now();
  for (;;) {
    const o = await observe(e, 2000);
    if (o.reachable && o.lsn) {
      if (lsnToNumber(o.lsn) >= lsnToNumber(o.receiveLsn ?? received) && lsnToNumber(o.lsn) >= lsnToNumber(received))
        return { how: 'all', replayed: o.lsn, observed: o };
      const position = `${o.receiveLsn ?? '-'}/${o.lsn ?? '-'}`;
      if (position !== last) {
        last = position;
        since = Date.now();
      } else if (Date.now() - since >= quiet) {
        return { how: 'stalled', replayed: o.lsn, observed: o };
      }
    }
    if (opts.signal?.aborted) throw new Error('stopped waiting for the replay');
    if (Date.now() > deadline) return { how: 'deadline', replayed: o.lsn ?? null, observed: o };
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20));
  }
}
