// pg_hba on a herd pgherd runs over SSH: the same file written on every member (a copy of the old one
// kept beside it), then a reload; a member whose Postgres would not take the file (it keeps the rules it
// had: Postgres loads no pg_hba with an error) has the copy put back by the step's cleanup.
import path from 'node:path';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import type { AccessRulesPlane } from '../access-rules';
import { driverFor } from '@/lib/fleet/drivers';

/** The member's pg_hba: the primary's file's name in the member's own data directory, else the same path. */
export function hbaPath(m: InstanceRef, primary: InstanceRef, hbaFile: string | null): string {
  if (!hbaFile) return `${m.dataDirectory}/pg_hba.conf`;
  const rel = path.relative(primary.dataDirectory, hbaFile);
  return rel.startsWith('..') || path.isAbsolute(rel) ? hbaFile : path.join(m.dataDirectory, rel);
}

const kept = (file: string) => `${file}.pgherd-before-apply`;

// $1: the file. The new text comes on stdin, written beside it with the old one's owner and mode, then renamed.
const WRITE =
  'f=$1 && cp -p -- "$f" "$f.pgherd-before-apply" && cp -p -- "$f" "$f.pgherd-new" && cat > "$f.pgherd-new" && mv -f -- "$f.pgherd-new" "$f"';

async function reloadAndCheck(m: InstanceRef): Promise<string[]> {
  const c = instanceClient(m, { connectionTimeoutMillis: 5000, statement_timeout: 10_000, application_name: 'pgherd-objects' });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.query('SELECT pg_reload_conf()');
    // pg_hba_file_rules reads the file as it is now: an error in it is what the reload refused.
    const r = await c.query<{ line: number; error: string }>(
      'SELECT line_number AS line, error FROM pg_hba_file_rules WHERE error IS NOT NULL',
    );
    return r.rows.map((x) => `line ${x.line}: ${x.error}`);
  } finally {
    await c.end().catch(() => {});
  }
}

export const pgCtlAccessRules: AccessRulesPlane = {
  runBy: 'pgherd over SSH: the same pg_hba written on every member, then reloaded',
  write: <S>(
    members: InstanceRef[],
    primary: InstanceRef,
    w: Parameters<AccessRulesPlane['write']>[2] & { kept: (x: RunContext<S>) => boolean },
  ) =>
    members.map((m): ActionStep<S> => {
      const file = hbaPath(m, primary, w.hbaFile);
      return {
        name: `write pg_hba on ${m.label}`,
        does: { kind: 'objects.hba-file', member: memberArg(m), file, lines: w.lines },
        says: `on ${m.label}: ${file} written (${w.lines.length} lines; the old one kept as ${path.basename(kept(file))} until the end), then reloaded`,
        always: {
          name: `${m.label}: put pg_hba back unless every member took the new one`,
          does: { kind: 'objects.hba-restore', member: memberArg(m), file },
          says: `should a member not take the new pg_hba: ${m.label}'s copy put back and reloaded; the copy removed either way`,
          whileHeld: true,
          run: async (x) => {
            if (!w.kept(x)) {
              const back = 'f=$1 && if [ -f "$f.pgherd-before-apply" ]; then cp -p -- "$f.pgherd-before-apply" "$f"; fi';
              await execNotedOk(x.deps, m, x, ['sh', '-c', back, 'pgherd-hba', file], 30_000);
              // Reloaded over SSH: the rules being put back may be the ones that shut pgherd's SQL out.
              await execNotedOk(x.deps, m, x, driverFor(m.controlDriver).reload(m), 60_000);
              x.note({ stdout: `${m.label}: pg_hba as it was, reloaded` });
            }
            await execNoted(x.deps, m, x, ['rm', '-f', '--', kept(file)], 30_000);
          },
        },
        run: async (x) => {
          await execNotedOk(x.deps, m, x, ['sh', '-c', WRITE, 'pgherd-hba', file], 30_000, { stdin: w.text });
          const errors = await reloadAndCheck(m);
          if (errors.length)
            throw new Error(`${m.label}'s Postgres does not take the new pg_hba (it keeps its old rules): ${errors.join('; ')}`);
          x.note({ stdout: `${m.label}: ${file} written and reloaded` });
        },
      };
    }),
};
