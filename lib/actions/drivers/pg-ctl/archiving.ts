// archive_command on a herd pgherd runs itself: ALTER SYSTEM on every member, then a reload.
import { memberArg } from '@/lib/engine/plan-identity';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { archiveCommand } from '@/lib/fleet/backups/pgbackrest';
import type { ArchivingAsk, ArchivingPlan } from '../archiving';

export function planPgCtlArchiving<S>(h: HerdRef, a: ArchivingAsk<S>): ArchivingPlan<S> {
  const timeout = `${a.timeoutSeconds}s`;
  return {
    before: [],
    set: {
      name: 'set archive_command on every member',
      does: { kind: 'backup.archive-command', stanza: a.stanza, archiveTimeout: a.timeoutSeconds, members: h.members.map(memberArg) },
      says: `set archive_command (pgbackrest archive-push) and archive_timeout = ${timeout} on every member, then reload`,
      timeoutMs: 30_000,
      run: async (x) => {
        const out: string[] = [];
        for (const m of h.members) {
          const c = instanceClient(m, { connectionTimeoutMillis: 3000, application_name: 'pgherd' });
          c.on('error', () => {});
          await c.connect();
          try {
            await c.query(`ALTER SYSTEM SET archive_command = ${c.escapeLiteral(archiveCommand(m.dataDirectory, a.stanza))}`);
            await c.query(`ALTER SYSTEM SET archive_timeout = ${c.escapeLiteral(timeout)}`);
            if (a.modeOff(x, m)) await c.query(`ALTER SYSTEM SET archive_mode = 'on'`);
            await c.query('SELECT pg_reload_conf()');
          } finally {
            await c.end().catch(() => {});
          }
          out.push(`${m.label}: archive_command set${a.modeOff(x, m) ? '; archive_mode on at its next restart' : ''}`);
        }
        x.note({
          command: `ALTER SYSTEM SET archive_command, archive_timeout; pg_reload_conf() on ${h.members.length} member(s)`,
          stdout: out.join('\n'),
        });
      },
    },
  };
}
