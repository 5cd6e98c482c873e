// The upgrade campaign of an environment: how many herds run each major, the days left before that
// major's end of life (the PostgreSQL project's policy: five years of minor releases, the last one in
// November), and the major upgrades under way.
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';

/** The PostgreSQL project's final release date of each major (www.postgresql.org/support/versioning). */
export const END_OF_LIFE: Record<number, string> = {
  12: '2024-11-21',
  13: '2025-11-13',
  14: '2026-11-12',
  15: '2027-11-11',
  16: '2028-11-09',
  17: '2029-11-08',
  18: '2030-11-14',
};

export interface CampaignMajor {
  major: number;
  herds: number;
  endOfLife: string | null;
  /** Negative once past; null when the major is not in the table. */
  daysLeft: number | null;
}

export interface CampaignUpgrade {
  id: number;
  status: string;
  blue: string | null;
  green: string | null;
  toVersion: string;
  since: string;
}

export async function upgradeCampaign(
  db: Queries,
  environmentId: number,
  now = new Date(),
): Promise<{ majors: CampaignMajor[]; upgrades: CampaignUpgrade[] }> {
  const majors = await db.execute<{ major: number; herds: number }>(sql`
    SELECT m.major, count(*)::int AS herds FROM (
      SELECT h.id, coalesce(min(i.server_version_num) / 10000, min(i.pg_version), h.pg_version)::int AS major
      FROM herds h LEFT JOIN instances i ON i.herd_id = h.id WHERE h.environment_id = ${environmentId} GROUP BY h.id) m
    GROUP BY m.major ORDER BY m.major`);
  const upgrades = await db.execute<{
    id: number;
    status: string;
    blue: string | null;
    green: string | null;
    to_version_num: number;
    created_at: Date;
  }>(sql`
    SELECT u.id, u.status, b.name AS blue, g.name AS green, u.to_version_num, u.created_at
    FROM major_upgrades u LEFT JOIN herds b ON b.id = u.blue_herd_id LEFT JOIN herds g ON g.id = u.green_herd_id
    WHERE u.status IN ('building', 'ready', 'cut-over') AND (b.environment_id = ${environmentId} OR g.environment_id = ${environmentId})
    ORDER BY u.id`);
  const day = 86_400_000;
  return {
    majors: majors.rows.map((r) => {
      const eol = END_OF_LIFE[r.major] ?? null;
      return { major: r.major, herds: r.herds, endOfLife: eol, daysLeft: eol ? Math.floor((Date.parse(eol) - now.getTime()) / day) : null };
    }),
    upgrades: upgrades.rows.map((u) => ({
      id: u.id,
      status: u.status,
      blue: u.blue,
      green: u.green,
      toVersion: `${String(Math.floor(u.to_version_num / 10000))}.${String(u.to_version_num % 10000)}`,
      since: new Date(u.created_at).toISOString(),
    })),
  };
}
