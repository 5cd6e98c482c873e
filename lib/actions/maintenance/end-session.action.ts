// End a session (the fix of a `long_transaction` risk: docs/risks.md): an operator's act. The session is
// named by its pid and its backend's start, as the risk names it: a pid now used by another session is
// refused, as is a session no longer there, and one of pgherd's own. The plan names its user, database,
// client, state, how long its transaction has been open and its statement's first line. The step ends it
// only if it is still that session (pg_terminate_backend, waiting for it to go), and says what it held.
import { z } from 'zod';
import { defineAction } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import { withInstance } from '@/lib/fleet/pg-access';
import { asks } from '@/lib/actions/drivers';
import { failed, readEach, readingOf, readOn } from './read';

/** pid@backend_start, as the risk's subject says it. */
const SESSION = /^(\d{1,10})@(\d{4}-\d{2}-\d{2}T[0-9:.+\-Z]{8,40})$/;

export const endSessionParams = z
  .object({
    session: z
      .string()
      .trim()
      .regex(SESSION, 'a session as pid@backend_start (the Risks page fills it in)')
      .refine((v) => !Number.isNaN(Date.parse(v.slice(v.indexOf('@') + 1))), 'a session as pid@backend_start, backend_start a real time')
      .optional(),
  })
  .strict();

interface SessionNow {
  pid: number;
  user: string | null;
  database: string | null;
  client: string | null;
  application: string;
  state: string | null;
  xactSeconds: number | null;
  query: string;
  backendStart: string;
  superuser: boolean;
  /** Whether it is a client's session (not a walsender, an autovacuum worker or another background process). */
  clientBackend: boolean;
  /** Whether it is pgherd's own: its role is the one pgherd connects as. */
  own: boolean;
}

const SESSION_SQL = `SELECT a.pid, a.usename AS user, a.datname AS database, a.client_addr::text AS client, a.application_name AS application,
  a.state, extract(epoch FROM now() - a.xact_start)::float8 AS "xactSeconds", left(split_part(a.query, E'\\n', 1), 200) AS query,
  to_json(a.backend_start)#>>'{}' AS "backendStart", coalesce(r.rolsuper, false) AS superuser,
  a.backend_type = 'client backend' AS "clientBackend", a.usename = current_user AS own
  FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
  WHERE a.pid = $1 AND a.backend_start = $2::timestamptz`;

const parse = (s: string) => {
  const m = SESSION.exec(s);
  return m ? { pid: Number(m[1]), start: m[2] ?? '' } : null;
};

const ago = (s: number | null) => (s === null ? 'no open transaction' : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s)} s`);

export const endSessionAction = defineAction({
  name: 'end-session',
  control: asks(null),
  label: 'End session',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: endSessionParams,
    fields: [
      {
        name: 'session',
        label: 'Session',
        kind: 'text',
        emptyLabel: '12345@2026-11-28T10:00:00.000000+00:00',
        help: 'pid@backend_start, as the Risks page names it: a pid used again by another session is not that session.',
      },
    ],
  },
  prepare: async (targets, params) => {
    const s = params.session ? parse(params.session) : null;
    if (!s) return new Map<number, SessionNow | null | { error: string }>();
    return readEach(targets, (t) => readOn(t, async (c) => (await c.query<SessionNow>(SESSION_SQL, [s.pid, s.start])).rows[0] ?? null));
  },
  plan: (t, { params, prepared }) => {
    const s = params.session ? parse(params.session) : null;
    if (!s) return refuse('params', 'name the session above as pid@backend_start, then update the plan');
    const r = readingOf(prepared, t.id);
    if (r === undefined) return refuse('unreachable', `${t.label} was not read`);
    if (failed(r)) return refuse('unreachable', `${t.label} does not answer (${r.error})`);
    if (!r)
      return refuse(
        'gone',
        `session ${String(s.pid)} started ${s.start} is no longer on ${t.label}: it ended, or its pid is another session's now`,
      );
    // pgherd's own by its role, never by the application name a client chooses.
    if (r.own) return refuse('in-use', `session ${String(s.pid)} is pgherd's own (${r.user ?? '?'})`);
    if (!r.clientBackend)
      return refuse(
        'not-applicable',
        `process ${String(s.pid)} is not a client's session (a walsender, a background worker): End session ends clients' sessions only`,
      );
    return {
      facts: [
        {
          label: 'Session',
          value: `${String(r.pid)} of ${r.user ?? '?'} on ${r.database ?? '?'} from ${r.client ?? 'a local socket'} (${r.application || 'no application name'})`,
        },
        { label: 'State', value: `${r.state ?? '?'}, its transaction open ${ago(r.xactSeconds)}` },
        { label: 'Statement', value: r.query || '(none)' },
      ],
      warnings: r.superuser ? [`${r.user ?? '?'} is a superuser: their transaction is rolled back as anyone's`] : [],
      steps: [
        {
          name: `end session ${String(s.pid)}`,
          does: { kind: 'session.end', instance: t.id, pid: s.pid, backendStart: s.start },
          says: `end session ${String(s.pid)} of ${r.user ?? '?'} on ${t.label} (pg_terminate_backend, waiting up to 10 s for it to go), only if it is still the session that started ${s.start}; its open transaction is rolled back`,
          timeoutMs: 30_000,
          run: async (x) => {
            x.note({ command: `SELECT pg_terminate_backend(${String(s.pid)}, 10000) (if it started ${s.start})` });
            const out = await withInstance(
              t,
              { connectionTimeoutMillis: 5000, statement_timeout: 20_000, application_name: 'pgherd-maintenance' },
              async (c) => {
                const ended = await c.query<{ ok: boolean }>(
                  `SELECT pg_terminate_backend(pid, 10000) AS ok FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2::timestamptz`,
                  [s.pid, s.start],
                );
                const left = await c.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2::timestamptz`, [
                  s.pid,
                  s.start,
                ]);
                return { asked: ended.rowCount ?? 0, left: left.rowCount ?? 0 };
              },
            );
            if (out.left) throw new Error(`session ${String(s.pid)} on ${t.label} is still there after 10 s`);
            const text = out.asked
              ? `${t.label}: session ${String(s.pid)} of ${r.user ?? '?'} ended (its transaction had been open ${ago(r.xactSeconds)})`
              : `${t.label}: session ${String(s.pid)} had ended already`;
            x.note({ stdout: text });
            x.deps.outcome?.(text);
          },
        },
      ],
    };
  },
});
