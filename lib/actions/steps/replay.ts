// How long to let a failover candidate replay before promoting it: until it has replayed all it can,
// which is not always all it received. A primary that dies mid-record has sent WAL up to a page
// boundary past its last complete record; that tail is received but can never be replayed, and a
// wait for "replayed >= received" then runs out its whole deadline on a healthy candidate (seen: 30 s
// for one herd of six in four benchmark runs of five). So: done when replay reaches what was
// received; or when its startup process waits for WAL to arrive (it replayed all it has) twice in a row
// at the same positions; or, where pgherd may not see that wait, when neither what it receives nor
// what it replays has moved for QUIET_MS.
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import type { Session } from '@/lib/fleet/observe';

/** Replay of WAL already on disk moves many times within this; a still stream and a still replay mean the end. */
export const QUIET_MS = 300;

export interface ReplayResult {
  /** `paused`: its replay is paused (pg_wal_replay_pause): the promotion replays the rest. */
  how: 'all' | 'stalled' | 'paused' | 'deadline';
  /** The replay position when it ended. */
  replayed: string | null;
}

/** The startup process's waits for WAL that is not there yet (PostgreSQL 13 and later; needs pg_monitor to be seen). */
const WAITING_FOR_WAL = ['RecoveryWalStream', 'RecoveryRetrieveRetryInterval'];

const REPLAY_SQL = `SELECT pg_last_wal_receive_lsn()::text AS received, pg_last_wal_replay_lsn()::text AS replayed,
  (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup' LIMIT 1) AS wait`;

interface ReplayRow {
  received: string | null;
  replayed: string | null;
  wait: string | null;
}

/**
 * Waits until the replica `session` reaches has replayed all it can of what it received (`received`,
 * as seen when it was chosen), or `deadlineMs` has passed.
 */
export async function replayWhatItCan(
  session: Session,
  received: string,
  opts: { signal?: AbortSignal; deadlineMs: number; everyMs?: number; quietMs?: number },
): Promise<ReplayResult> {
  const quiet = opts.quietMs ?? QUIET_MS;
  const deadline = Date.now() + opts.deadlineMs;
  let last = '';
  let since = Date.now();
  let waitedAt = '';
  for (;;) {
    const [r] = await session.query<ReplayRow>(REPLAY_SQL).catch(() => [] as ReplayRow[]);
    if (r?.replayed) {
      const got = r.received ?? received;
      if (lsnToNumber(r.replayed) >= lsnToNumber(got) && lsnToNumber(r.replayed) >= lsnToNumber(received))
        return { how: 'all', replayed: r.replayed };
      const position = `${got}/${r.replayed}`;
      // Paused, it replays nothing more until promoted: not a tail that can never be replayed.
      if (r.wait === 'RecoveryPause') return { how: 'paused', replayed: r.replayed };
      if (r.wait && WAITING_FOR_WAL.includes(r.wait)) {
        if (waitedAt === position) return { how: 'stalled', replayed: r.replayed };
        waitedAt = position;
      } else waitedAt = '';
      if (position !== last) {
        last = position;
        since = Date.now();
      } else if (Date.now() - since >= quiet) {
        return {
          how: (await session.query<{ p: boolean }>('SELECT pg_is_wal_replay_paused() AS p').catch(() => []))[0]?.p ? 'paused' : 'stalled',
          replayed: r.replayed,
        };
      }
    }
    if (opts.signal?.aborted) throw new Error('stopped waiting for the replay');
    if (Date.now() > deadline) return { how: 'deadline', replayed: r?.replayed ?? null };
    await new Promise((res) => setTimeout(res, opts.everyMs ?? 20));
  }
}

/**
 * Waits until the replica `session` reaches has replayed past `lsn` (a switchover's candidate, past the
 * old primary's shutdown checkpoint), asking every `everyMs` over the one session, up to `deadlineMs`.
 */
export async function replayedPast(
  session: Session,
  lsn: string,
  opts: { signal?: AbortSignal; deadlineMs: number; everyMs?: number },
): Promise<string> {
  const deadline = Date.now() + opts.deadlineMs;
  let last = 'nothing';
  for (;;) {
    const [r] = await session
      .query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn')
      .catch((err: unknown) => ((last = (err as Error).message), []));
    if (r?.lsn) {
      if (lsnToNumber(r.lsn) > lsnToNumber(lsn)) return r.lsn;
      last = `replayed ${r.lsn}`;
    }
    if (opts.signal?.aborted) throw new Error('stopped waiting for the replay');
    if (Date.now() > deadline) throw new Error(`did not reach "replayed past ${lsn}" in time (last seen: ${last})`);
    await new Promise((res) => setTimeout(res, opts.everyMs ?? 5));
  }
}
