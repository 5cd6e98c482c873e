// What an agent reports of Patroni is a proposal, never a change: the REST address is where pgherd
// sends the environment's Patroni credentials and the control driver decides what pgherd runs, so an
// admin of the herd's environment accepts it on the herd's page (audited as theirs), after the same
// checks a hand edit of the address gets (lib/features/admin/patroni-url-checks.ts).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { Access } from '@/lib/engine/access';
import { demand } from '@/lib/engine/access';
import { writeAudit } from '@/lib/engine/write-audit';
import { restUrlProblem } from '@/lib/adapters/patroni/rest-url';

export interface PatroniProposal {
  instanceId: number;
  /** The member, and so the agent that reported it (a report speaks only for its own server). */
  label: string;
  hostname: string;
  url: string;
  scope: string;
  /** Why it cannot be accepted as it is (an address not on the member's own server, http); null: it can. */
  problem: string | null;
}

interface Row extends Record<string, unknown> {
  id: number;
  label: string;
  hostname: string;
  host: string;
  url: string;
  scope: string;
  herd_scope: string;
  herd_id: number;
  herd: string;
  environment_id: number;
  patroni_url: string;
  control_driver: string;
}

const SELECT = sql`
  SELECT i.id, s.hostname || ':' || i.port AS label, s.hostname, coalesce(nullif(s.address, ''), s.hostname) AS host,
         i.patroni_proposed_url AS url, i.patroni_proposed_scope AS scope, h.patroni_scope AS herd_scope, h.id AS herd_id,
         h.name AS herd, h.environment_id, i.patroni_url, h.control_driver::text AS control_driver
  FROM instances i JOIN servers s ON s.id = i.server_id JOIN herds h ON h.id = i.herd_id`;

const problemOf = (r: Row) =>
  restUrlProblem(r.url, r.host) ??
  (r.herd_scope !== '' && r.herd_scope !== r.scope
    ? `the herd's Patroni scope is ${r.herd_scope}, and the agent reports ${r.scope}`
    : null);

/** The herd's members whose agent reports a Patroni that pgherd does not act through yet. */
export async function patroniProposals(db: Db, herdId: number): Promise<PatroniProposal[]> {
  const rows = (
    await db.execute<Row>(sql`${SELECT} WHERE i.herd_id = ${herdId} AND i.patroni_proposed_url <> ''
      AND NOT (i.patroni_url = i.patroni_proposed_url AND h.control_driver = 'patroni' AND h.patroni_scope = i.patroni_proposed_scope)
      ORDER BY s.hostname, i.port`)
  ).rows;
  return rows.map((r) => ({ instanceId: r.id, label: r.label, hostname: r.hostname, url: r.url, scope: r.scope, problem: problemOf(r) }));
}

export class ProposalRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProposalRefused';
  }
}

/**
 * An admin accepts what the instance's agent reported: the instance's REST address, and its herd run
 * by Patroni with that scope (when the herd has none). Refused when it changed since it was shown
 * (`url`), or when the address is not on the member's own server over https.
 */
export async function acceptPatroniProposal(
  db: Db,
  actor: { id: number | null; username: string; remoteAddr?: string; access: Access },
  instanceId: number,
  url: string,
): Promise<void> {
  await db.transaction(async (tx) => {
    const [r] = (await tx.execute<Row>(sql`${SELECT} WHERE i.id = ${instanceId} FOR UPDATE OF i, h`)).rows;
    if (!r) throw new ProposalRefused(`instance ${String(instanceId)} does not exist`);
    await demand(tx, actor.access, 'admin', `Accepting what ${r.hostname}'s agent reports of Patroni`, [r.environment_id]);
    if (r.url === '' || r.url !== url) throw new ProposalRefused(`${r.label}'s agent reports something else now: look again`);
    const problem = problemOf(r);
    if (problem) throw new ProposalRefused(`not accepted: ${problem}`);
    await tx.execute(
      sql`UPDATE instances SET patroni_url = ${r.url}, patroni_proposed_url = '', patroni_proposed_scope = '', updated_at = now() WHERE id = ${r.id}`,
    );
    await tx.execute(
      sql`UPDATE herds SET control_driver = 'patroni', patroni_scope = ${r.herd_scope || r.scope}, updated_at = now() WHERE id = ${r.herd_id}`,
    );
    await writeAudit(tx, [
      {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'patroni.accept',
        objectType: 'instances',
        objectId: String(r.id),
        objectLabel: r.label,
        environmentId: r.environment_id,
        changes: { patroniUrl: [r.patroni_url || null, r.url] },
      },
      ...(r.control_driver !== 'patroni' || r.herd_scope === ''
        ? [
            {
              user: actor,
              remoteAddr: actor.remoteAddr,
              action: 'patroni.accept',
              objectType: 'herds',
              objectId: String(r.herd_id),
              objectLabel: r.herd,
              environmentId: r.environment_id,
              changes: {
                controlDriver: [r.control_driver, 'patroni'] as [unknown, unknown],
                patroniScope: [r.herd_scope || null, r.herd_scope || r.scope] as [unknown, unknown],
              },
            },
          ]
        : []),
    ]);
  });
}
