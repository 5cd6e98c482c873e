// Tear down a restored herd: stops the cluster pgherd's Restore laid down and removes the folder it claimed
// (its data directory, pgBackRest's files, socket folder and log inside it), and forgets the herd. What is
// removed is what the restore recorded it made (its claim), never what the herd's rows point at now: an
// instance moved into the herd since (an operator may edit instances) is not the restore's, and the herd is
// refused until it is moved out. Only a herd pgherd restored is ever torn down. Run by hand, or by the
// worker when the herd expires.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import type { Db } from '@/db/client';
import { defineHerdAction, productionWarning, type ActionStep } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import { terminateLaunched } from '@/lib/actions/steps/launch';
import { removeRestored } from '@/lib/actions/steps/restore-steps';
import { adoptedBy, leaveClaim } from '@/lib/actions/steps/claim-guard';
import { asks } from '@/lib/actions/drivers';

interface Claim {
  id: number;
  serverId: number;
  hostname: string;
  dataDirectory: string;
  pgVersion: number;
  ssh: SshTarget;
  /** Why it is no longer the restore's (an instance of another herd sits there), or null. */
  adopted: string | null;
}

interface Restored {
  /** The instances its restore launched (terminated last). */
  launched: { id: number; instanceId: string | null; instanceType: string }[];
  restoredFrom: number | null;
  restoredTo: string;
  expiresAt: Date | null;
  /** What its restore laid down (its kept claims). */
  claims: Claim[];
  /** Launched instances left: a server another herd's instance runs on now (adopted). */
  launchedLeft: { instanceId: string | null; why: string }[];
}

async function prepare(herds: { id: number }[], _params: unknown, db: Db): Promise<Map<number, Restored>> {
  if (!herds.length) return new Map();
  const r = await db.execute<{ id: number; restored_from_herd_id: number | null; restored_to: string; expires_at: Date | null }>(sql`
    SELECT id, restored_from_herd_id, restored_to, expires_at FROM herds WHERE id = ANY(${sql.param(herds.map((h) => h.id))}::int[])`);
  const c = await db.execute<{
    id: number;
    kept_herd_id: number;
    server_id: number;
    hostname: string;
    host: string;
    ssh_port: number;
    ssh_user: string;
    fingerprint: string | null;
    environment: string;
    data_directory: string;
    pg_version: number;
  }>(sql`
    SELECT c.id, c.kept_herd_id, s.id AS server_id, s.hostname, coalesce(nullif(s.address, ''), s.hostname) AS host, s.ssh_port,
           s.ssh_user, s.ssh_host_key_fingerprint AS fingerprint, e.name AS environment, c.data_directory, c.pg_version
    FROM restore_claims c JOIN servers s ON s.id = c.server_id JOIN environments e ON e.id = s.environment_id
    WHERE c.kept_herd_id = ANY(${sql.param(herds.map((h) => h.id))}::int[])
    ORDER BY c.id`);
  const l = await db.execute<{
    id: number;
    kept_herd_id: number;
    instance_id: string | null;
    instance_type: string;
    adopted: string | null;
  }>(sql`
    SELECT l.id, l.kept_herd_id, l.instance_id, l.instance_type,
           (SELECT e.name || '/' || h.name FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
             WHERE i.server_id = l.server_id AND i.herd_id <> l.kept_herd_id ORDER BY i.id LIMIT 1) AS adopted
    FROM launched_instances l
    WHERE l.kept_herd_id = ANY(${sql.param(herds.map((h) => h.id))}::int[]) AND l.terminated_at IS NULL ORDER BY l.id`);
  const adopted = new Map<number, string | null>();
  for (const x of c.rows)
    adopted.set(
      x.id,
      await adoptedBy(db, { serverId: x.server_id, dataDirectory: x.data_directory, keptHerdId: x.kept_herd_id, claimId: x.id }),
    );
  const claims = (herd: number): Claim[] =>
    c.rows
      .filter((x) => x.kept_herd_id === herd)
      .map((x) => ({
        adopted: adopted.get(x.id) ?? null,
        id: x.id,
        serverId: x.server_id,
        hostname: x.hostname,
        dataDirectory: x.data_directory,
        pgVersion: x.pg_version,
        ssh: {
          host: x.host,
          port: x.ssh_port,
          username: x.ssh_user,
          hostKeyFingerprint: x.fingerprint,
          serverId: x.server_id,
          environment: x.environment,
        },
      }));
  return new Map(
    r.rows.map((x) => [
      x.id,
      {
        restoredFrom: x.restored_from_herd_id,
        restoredTo: x.restored_to,
        expiresAt: x.expires_at ? new Date(x.expires_at) : null,
        claims: claims(x.id),
        launched: l.rows
          .filter((i) => i.kept_herd_id === x.id && !i.adopted)
          .map((i) => ({ id: i.id, instanceId: i.instance_id, instanceType: i.instance_type })),
        launchedLeft: l.rows
          .filter((i) => i.kept_herd_id === x.id && i.adopted)
          .map((i) => ({ instanceId: i.instance_id, why: `its server runs a member of ${i.adopted ?? '?'} now (adopted)` })),
      },
    ]),
  );
}

export const tearDownRestoredAction = defineHerdAction({
  name: 'tear-down-restored',
  control: asks('backups'),
  label: 'Tear down a restored herd',
  permission: 'admin',
  dangerous: true,
  // It destroys a herd's data: a person's decision, never a schedule's.
  schedulable: false,
  prepare,
  plan: (h, { prepared }) => {
    const r = prepared.get(h.id);
    if (r?.restoredFrom === null || r?.restoredFrom === undefined)
      return refuse('not-applicable', `${h.label} was not made by pgherd's Restore: only a restored herd is torn down`);
    // Every member must be what its restore laid down: the same server and data directory as a claim.
    const stranger = h.members.find((m) => !r.claims.some((c) => c.serverId === m.serverId && c.dataDirectory === m.dataDirectory));
    // A claim another herd's instance sits at now was adopted: it is left, and said so; asked again when the step runs.
    const left = r.claims.filter((c) => c.adopted);
    if (stranger)
      return refuse(
        'not-applicable',
        `${stranger.label} (${stranger.dataDirectory}) is in ${h.label} but was not laid down by its restore: pgherd removes only what a restore made; move it out of the herd first`,
      );
    const steps: ActionStep[] = r.claims
      .filter((c) => !c.adopted)
      .map((c) => ({
        name: `stop the restored cluster on ${c.hostname} and remove it`,
        does: { kind: 'restore.tear-down-claim', claim: c.id, server: c.serverId, dataDirectory: c.dataDirectory },
        says: `stop the cluster in ${c.dataDirectory} on ${c.hostname} (immediate) and remove ${path.dirname(c.dataDirectory)}, the folder its restore made`,
        timeoutMs: 180_000,
        run: async (x) => {
          await removeRestored(
            x.deps,
            x,
            { server: { ssh: c.ssh }, dataDirectory: c.dataDirectory, pgVersion: c.pgVersion },
            { ...c, claimId: c.id, keptHerdId: h.id },
          );
          await x.deps.db.execute(
            sql`UPDATE restore_claims SET settled_how = 'removed by Tear down', kept_herd_id = NULL WHERE id = ${c.id}`,
          );
        },
      }));
    return {
      // The instances its restore launched go before the herd is forgotten (no step of a target runs after its herd is gone).
      steps: [
        ...steps,
        ...r.launched.map((i): ActionStep => ({
          name: `terminate ${i.instanceId ?? 'the instance'} its restore launched`,
          does: { kind: 'ec2.terminate-launched', launched: i.id },
          says: `terminate ${i.instanceId ?? 'the instance'} (${i.instanceType}), which its restore launched, and remove its server from the inventory`,
          timeoutMs: 900_000,
          run: async (x) => {
            await terminateLaunched(x.deps.db, i.id, 'terminated by Tear down', x.signal);
          },
        })),
        {
          name: 'forget the herd',
          does: { kind: 'inventory.delete-herd', herd: h.id },
          says: `remove ${h.label} and its instances from the inventory`,
          timeoutMs: 30_000,
          run: async (x) => {
            // The adopted claims are settled as left (asked again: adopted still, or the herd is planned again).
            for (const c of left) {
              const why = await adoptedBy(x.deps.db, { ...c, keptHerdId: h.id, claimId: c.id });
              if (!why) throw refuse('stale', `${c.dataDirectory} on ${c.hostname} is no longer adopted: plan the tear down again`);
              await leaveClaim(x.deps.db, c.id, why);
            }
            await x.deps.db.execute(sql`DELETE FROM herds WHERE id = ${h.id} AND restored_from_herd_id IS NOT NULL`);
            x.deps.outcome?.(`${h.label} torn down`);
          },
        },
      ],
      facts: [
        { label: 'Restored', value: r.restoredTo || '?' },
        { label: 'Expires', value: r.expiresAt ? r.expiresAt.toISOString() : 'not set' },
        ...[...left.map((c) => `${c.hostname}: ${c.adopted ?? ''}`), ...r.launchedLeft.map((i) => `${i.instanceId ?? '?'}: ${i.why}`)].map(
          (value) => ({ label: 'Left as it is', value }),
        ),
      ],
      warnings: [...productionWarning(h), 'everything written to the restored herd since its restore is lost'],
    };
  },
});
