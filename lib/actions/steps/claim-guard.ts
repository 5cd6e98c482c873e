// What a restore laid down is removed only while it is still the restore's. A team may adopt a restored
// copy (move its instance into a herd in service and write to it), or something else may come to sit in its
// folder: Tear down (run by the worker at a herd's expiry, as the system) and the reconcile would then stop
// a cluster in service with `-m immediate` and delete its data. So right before anything is stopped or
// removed, the inventory is asked whether an instance of another herd sits at the claim's server and data
// directory, and the host whether the directory still holds the cluster the restore made (its system
// identifier, recorded when it first answered). Either way, the claim is left as found, saying why.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import type { ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { binDir } from '@/lib/fleet/drivers';

export interface ClaimPlace {
  /** Its row in restore_claims (null for a restore that had not recorded it yet). */
  claimId: number | null;
  serverId: number | null;
  hostname: string;
  dataDirectory: string;
  pgVersion: number;
  ssh: SshTarget;
  /** The herd it was kept as (its members may sit there), or null. */
  keptHerdId: number | null;
}

/**
 * The instance of a herd other than `keptHerdId` that sits at the claim's place (its server, and its data
 * directory or the port the restore laid it down for: an edited data directory hides nothing), in words, or null.
 */
export async function adoptedBy(
  db: Db,
  c: Pick<ClaimPlace, 'serverId' | 'dataDirectory' | 'keptHerdId'> & { claimId?: number | null },
): Promise<string | null> {
  if (c.serverId === null) return null;
  const r = await db.execute<{ id: number; label: string }>(sql`
    SELECT i.id, e.name || '/' || h.name || ' (instance ' || i.id || ')' AS label
    FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
    WHERE i.server_id = ${c.serverId} AND i.herd_id IS DISTINCT FROM ${c.keptHerdId}
      AND (i.data_directory = ${c.dataDirectory} OR i.port = (SELECT port FROM restore_claims WHERE id = ${c.claimId ?? null}))
    ORDER BY i.id LIMIT 1`);
  const row = r.rows[0];
  return row ? `${c.dataDirectory} is a member of ${row.label} now (adopted)` : null;
}

/** Reads the data directory's system identifier on its host: null when the directory is absent, else the identifier or why it could not be read. */
async function systemIdentifierOn(
  deps: ActionDeps,
  x: StepContext,
  c: ClaimPlace,
): Promise<{ absent: true } | { id: string | null; why: string }> {
  const r = await execNoted(
    deps,
    { ssh: c.ssh },
    x,
    ['sh', '-c', '[ -e "$1" ] || exit 3; exec "$2" "$1"', 'pgherd-claim-check', c.dataDirectory, `${binDir(c.pgVersion)}/pg_controldata`],
    30_000,
  );
  if (r.code === 3) return { absent: true };
  const id = /^Database system identifier:\s*(\d+)\s*$/m.exec(r.stdout)?.[1] ?? null;
  return { id, why: r.code === 0 ? '' : (r.stderr.trim().split('\n').pop() ?? `exit ${String(r.code)}`) };
}

/**
 * Why what the claim names is no longer the restore's, or null when it still is. `recorded`: the system
 * identifier the restore recorded (null when it never answered: then only the inventory is asked).
 */
export async function claimNotOurs(deps: ActionDeps, x: StepContext, c: ClaimPlace, recorded: string | null): Promise<string | null> {
  const adopted = await adoptedBy(deps.db, c);
  if (adopted) return adopted;
  // What is removed is the whole folder the claim made: another cluster put beside the restored one is not
  // the restore's either (its PG_VERSION or postmaster.pid anywhere outside the restored data directory).
  const folder = claimFolder(c.dataDirectory);
  const others = await execNoted(
    deps,
    { ssh: c.ssh },
    x,
    [
      'sh',
      '-c',
      '[ -d "$1" ] || exit 0; find "$1" \\( -name PG_VERSION -o -name postmaster.pid \\) -not -path "$2/*" -not -path "*/base/[0-9]*/PG_VERSION" -print 2>/dev/null | head -n 20',
      'pgherd-claim-folder',
      folder,
      c.dataDirectory,
    ],
    60_000,
  );
  // A cluster's own folder, not each of its databases' (base/<oid>/PG_VERSION).
  const found = [
    ...new Set(
      others.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((f) => path.dirname(f)),
    ),
  ]
    .sort()
    .filter((d, k, all) => !all.slice(0, k).some((up) => d.startsWith(`${up}/`)));
  if (found.length) return `${folder} on ${c.hostname} holds another cluster beside the restored one (${found.join(', ')})`;
  if (others.code !== 0)
    return `what ${folder} on ${c.hostname} holds could not be read (exit ${String(others.code)}), so it is not proven the restore's`;
  if (recorded === null) return null;
  const on = await systemIdentifierOn(deps, x, c);
  if ('absent' in on) return null;
  if (on.id === null)
    return `the system identifier of ${c.dataDirectory} on ${c.hostname} could not be read (${on.why}), so it is not proven the restore's`;
  if (on.id !== recorded)
    return `${c.dataDirectory} on ${c.hostname} holds the cluster ${on.id}, not ${recorded}, which the restore laid down there`;
  return null;
}

/** The claim is no longer the restore's: settled as left where it is, never picked again. */
export async function leaveClaim(db: Db, claimId: number, why: string): Promise<void> {
  await db.execute(sql`
    UPDATE restore_claims SET settled_at = coalesce(settled_at, now()), kept_herd_id = NULL, last_error = NULL,
      settled_how = ${`left as found: ${why}`}
    WHERE id = ${claimId}`);
}

/** The system identifier the claim recorded, or null. */
export async function recordedIdentifier(db: Db, claimId: number | null): Promise<string | null> {
  if (claimId === null) return null;
  const r = await db.execute<{ s: string | null }>(sql`SELECT system_identifier AS s FROM restore_claims WHERE id = ${claimId}`);
  return r.rows[0]?.s ?? null;
}

/** The folder a claim made (what removing it removes). */
export const claimFolder = (dataDirectory: string) => path.dirname(dataDirectory);
