// What a mixed operation (targets in several environments) says about the targets its reader may not
// see: its parameters (a chosen candidate or upstream is an instance id) and its notes (why it is
// paused, what a wave's health gate saw) can name them. The reader gets the targets they may see;
// these are withheld from them, as the hidden targets are, rather than redacted word by word.
import { inArray, sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { environments, herds, instances, operationTargets, servers } from '@/db/schema';
import { can, type Access } from '@/lib/engine/access';

export const WITHHELD = 'withheld: it names a target in an environment you have no role in';

/** A parameter that names an instance (candidateInstanceId, upstreamInstanceId). */
const namesInstance = (key: string) => /InstanceIds?$/.test(key);

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface Withholding {
  params: (p: Record<string, unknown>) => Promise<Record<string, unknown>>;
  note: (n: string | null) => string | null;
}

/** Nothing to withhold: the reader sees every target. */
const NONE: Withholding = { params: (p) => Promise.resolve(p), note: (n) => n };

/**
 * How to show the operation's parameters and notes to `access`, given its targets the reader may not
 * see (`hidden`: their ids and herds). A note is withheld when it names a hidden target (its label), a
 * member of a hidden target's herd (its server), the herd or its environment: a herd's bare name too,
 * even where a visible herd shares it, since the note cannot say which one it meant.
 */
export async function withholding(db: Queries, access: Access, hidden: { id: number; herdId: number | null }[]): Promise<Withholding> {
  if (!hidden.length) return NONE;
  const herdIds = [...new Set(hidden.flatMap((h) => (h.herdId === null ? [] : [h.herdId])))];
  const [labels, places] = await Promise.all([
    db
      .select({ label: operationTargets.label })
      .from(operationTargets)
      .where(
        inArray(
          operationTargets.id,
          hidden.map((h) => h.id),
        ),
      ),
    herdIds.length
      ? db
          .selectDistinct({ herd: herds.name, environment: environments.name, environmentId: environments.id, hostname: servers.hostname })
          .from(herds)
          .innerJoin(environments, sql`${environments.id} = ${herds.environmentId}`)
          .leftJoin(instances, sql`${instances.herdId} = ${herds.id}`)
          .leftJoin(servers, sql`${servers.id} = ${instances.serverId}`)
          .where(inArray(herds.id, herdIds))
      : Promise.resolve([]),
  ]);
  const phrases = new Set<string>(labels.map((l) => l.label));
  const words = new Set<string>();
  for (const p of places) {
    phrases.add(`${p.environment}/${p.herd}`);
    if (p.hostname) phrases.add(p.hostname);
    words.add(p.herd);
    if (!can(access, 'viewer', p.environmentId)) words.add(p.environment);
  }
  const wordRe = words.size ? new RegExp(`(^|[^\\w-])(${[...words].map(escape).join('|')})($|[^\\w-])`, 'i') : null;
  const names = (text: string) => [...phrases].some((p) => p && text.includes(p)) || (wordRe?.test(text) ?? false);
  return {
    note: (n) => (n !== null && names(n) ? WITHHELD : n),
    params: async (p) => {
      const ids = Object.entries(p).flatMap(([k, v]) => (namesInstance(k) ? [v].flat().map(Number).filter(Number.isInteger) : []));
      if (!ids.length) return p;
      const envOf = new Map(
        (
          await db
            .select({ id: instances.id, env: herds.environmentId })
            .from(instances)
            .innerJoin(herds, sql`${herds.id} = ${instances.herdId}`)
            .where(inArray(instances.id, ids))
        ).map((r) => [r.id, r.env]),
      );
      // An instance gone from the inventory belongs to no environment: global viewers only.
      const seen = (v: unknown) => [v].flat().every((id) => can(access, 'viewer', envOf.get(Number(id)) ?? null));
      return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, namesInstance(k) && !seen(v) ? WITHHELD : v]));
    },
  };
}
