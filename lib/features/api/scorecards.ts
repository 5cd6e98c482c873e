// The scorecards for the API: one environment the caller names (a viewer there), or every one they see.
import type { Db } from '@/db/client';
import { demand, environmentsWith, type Access } from '@/lib/engine/access';

/** `read` for each environment the caller may see (null: every one, read at once), or the one named. */
export async function perEnvironment<T>(
  db: Db,
  access: Access,
  environment: number | undefined,
  read: (environmentId: number | null) => Promise<T[]>,
): Promise<T[]> {
  if (environment !== undefined) {
    await demand(db, access, 'viewer', 'This environment', [environment]);
    return read(environment);
  }
  const visible = environmentsWith(access, 'viewer');
  if (visible === null) return read(null);
  return (await Promise.all(visible.map((id) => read(id)))).flat();
}
