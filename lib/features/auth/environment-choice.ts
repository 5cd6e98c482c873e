// The environment a per-environment page (the DR and recoverability scorecards) shows: the one asked
// for among those the user may see, else the first.
import { inArray } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { environments } from '@/db/schema';
import { environmentsWith, type Access } from '@/lib/engine/access';
import { parseId } from '@/lib/adapters/validation/ids';

export interface EnvironmentChoice {
  /** The environments the user may see, by name. */
  environments: { id: number; name: string }[];
  /** The one asked for (`?environment=ID`), else the first; undefined when the user sees none. */
  chosen: { id: number; name: string } | undefined;
}

/** The environments a scorecard page offers the user, and the one it shows. */
export async function chooseEnvironment(db: Db, access: Access, asked: string | undefined): Promise<EnvironmentChoice> {
  const visible = environmentsWith(access, 'viewer');
  const envs = await db
    .select({ id: environments.id, name: environments.name })
    .from(environments)
    .where(visible === null ? undefined : inArray(environments.id, visible.length ? visible : [-1]))
    .orderBy(environments.name);
  const wanted = asked === undefined ? null : parseId(asked);
  return { environments: envs, chosen: envs.find((e) => e.id === wanted) ?? envs[0] };
}
