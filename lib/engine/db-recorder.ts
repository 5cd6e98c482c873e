// Records a target's steps in operation_steps as they run, so the operation page can show them.
// A step is written when it has run for `startDelayMs` (so the page shows it running) and again when
// it ends; a step that ends sooner is written once. Not later: a worker lost mid-step leaves only the
// start of the step it was in to say where it stopped (recovery marks it interrupted), and a promotion
// or a fence takes 100-500 ms. Its end is written when the next step starts, or,
// for the target's last step, by the statement that ends the target (one round trip less a target:
// see executeTarget). Named statements: every step of every target writes here.
import { prepared, type Db } from '@/db/client';
import { redact } from '@/lib/adapters/ssh/quote';
import type { StepRecord, StepRecorder } from '@/lib/engine/pipeline';

const TAIL = 8000;

const START = {
  name: 'pgherd_step_start',
  text: `INSERT INTO operation_steps (target_id, seq, name, status, started_at) VALUES ($1, $2, $3, 'running', $4)
         ON CONFLICT (target_id, seq) DO UPDATE SET name = excluded.name, status = 'running', started_at = excluded.started_at,
           finished_at = NULL, exit_code = NULL, stdout_tail = '', stderr_tail = '', command = ''`,
};

/** The columns of a step's end (StepEnd's values, in order, after the target's id). */
export const STEP_END_COLUMNS = `seq, name, status, command, exit_code, stdout_tail, stderr_tail, started_at, finished_at`;

/** How an end record replaces what was written before (a "running" record, or an earlier attempt's). */
export const STEP_END_CONFLICT = `ON CONFLICT (target_id, seq) DO UPDATE SET name = excluded.name, status = excluded.status, command = excluded.command,
           exit_code = excluded.exit_code, stdout_tail = excluded.stdout_tail, stderr_tail = excluded.stderr_tail,
           started_at = excluded.started_at, finished_at = excluded.finished_at`;

// When the step ended, as the worker saw it (not when the row was written: that can be later, after a
// stall of pgherd's database, or with the target's end).
const FINISH = {
  name: 'pgherd_step_finish_v2',
  text: `INSERT INTO operation_steps (target_id, ${STEP_END_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ${STEP_END_CONFLICT}`,
};

/**
 * Text as Postgres can store it: a NUL byte (a binary file printed by a command, say) makes the
 * whole statement fail, and with it the record of how the step and its target ended.
 */
export const storable = <T extends string | null>(text: T): T => (text === null ? text : (text.replaceAll('\0', '\uFFFD') as T));

/** A step's end, as the parameters of STEP_END_COLUMNS (the target's id not included). */
export type StepEnd = [number, string, StepRecord['status'], string, number | null, string, string, Date, Date];

export interface DbRecorder extends StepRecorder {
  /** The end of the last step, not yet written: for the statement that ends the target to write. */
  held(): StepEnd | null;
  /** What `held()` gave was written. */
  written(): void;
  /** Writes what is held, if anything. */
  flush(): Promise<void>;
}

export function dbRecorder(db: Db, targetId: number, opts: { secrets?: string[]; startDelayMs?: number } = {}): DbRecorder {
  const secrets = opts.secrets ?? [];
  const delay = opts.startDelayMs ?? 100;
  const running = new Map<number, { startedAt: Date; timer: NodeJS.Timeout; written?: Promise<unknown> }>();
  let ended: StepEnd | null = null;
  const flush = async () => {
    const end = ended;
    if (!end) return;
    await prepared(db, FINISH.name, FINISH.text, [targetId, ...end]);
    if (ended === end) ended = null;
  };
  return {
    async start(seq, name) {
      // A step's end is on record before the next step does anything.
      await flush();
      const startedAt = new Date();
      const r: { startedAt: Date; timer: NodeJS.Timeout; written?: Promise<unknown> } = {
        startedAt,
        timer: setTimeout(() => {
          // Failure here is not fatal: the end of the step writes the whole record again.
          r.written = prepared(db, START.name, START.text, [targetId, seq, storable(name), startedAt]).catch(() => {});
        }, delay),
      };
      running.set(seq, r);
    },
    async finish(seq, rec) {
      const finishedAt = new Date();
      const r = running.get(seq);
      running.delete(seq);
      if (r) {
        clearTimeout(r.timer);
        await r.written; // never let a late "running" overwrite the end
      }
      await flush();
      ended = [
        seq,
        storable(rec.name),
        rec.status,
        storable(redact(rec.command ?? '', secrets)),
        rec.exitCode ?? null,
        storable(redact((rec.stdout ?? '').slice(-TAIL), secrets)),
        storable(redact((rec.stderr ?? '').slice(-TAIL), secrets)),
        r?.startedAt ?? finishedAt,
        finishedAt,
      ];
    },
    held: () => ended,
    written() {
      ended = null;
    },
    flush,
  };
}
