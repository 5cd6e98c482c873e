// An instance's Patroni REST address is where pgherd sends its Patroni credentials: it must be on the
// instance's own server (https, that server's address exactly, else its host name), and the herd's
// other members' Patroni must not list the member's REST API elsewhere (TLS proves the host, not the
// port: another listener on that server would otherwise pass). The same is checked again before any
// request carries credentials (lib/actions/drivers/patroni/steps.ts, lib/adapters/patroni/client.ts); this is the field error.
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { restUrlProblem } from '@/lib/adapters/patroni/rest-url';
import { peersSay } from '@/lib/actions/drivers/patroni/steps';

interface Row extends Record<string, unknown> {
  id: number;
  herd_id: number;
  herd: string;
  label: string;
  port: number;
  address: string;
  hostname: string;
  host: string;
  patroni_url: string;
  server_environment: string;
}

const MEMBERS = (herdOf: number) => sql`
  SELECT i.id, i.herd_id, h.name AS herd, s.hostname || ':' || i.port AS label, i.port, s.address, s.hostname,
         coalesce(nullif(s.address, ''), s.hostname) AS host, i.patroni_url, e.name AS server_environment
  FROM instances i JOIN herds h ON h.id = i.herd_id JOIN servers s ON s.id = i.server_id JOIN environments e ON e.id = s.environment_id
  WHERE i.herd_id = (SELECT herd_id FROM instances WHERE id = ${herdOf})`;

const asRef = (r: Row) => ({
  id: r.id,
  herd: r.herd,
  label: r.label,
  port: r.port,
  address: r.address,
  hostname: r.hostname,
  host: r.host,
  patroniUrl: r.patroni_url,
  serverEnvironment: r.server_environment,
});

/** Field errors for the instance's Patroni REST address as saved, or null. */
export async function patroniUrlRules(
  db: Queries,
  id: number,
  before: Record<string, unknown> | null,
): Promise<Record<string, string> | null> {
  const rows = (await db.execute<Row>(MEMBERS(id))).rows;
  const me = rows.find((r) => r.id === id);
  if (!me) throw new Error(`instance ${id} not found: its rules are checked after it is saved`);
  if (me.patroni_url === '' || me.patroni_url === before?.patroniUrl) return null;
  const problem = restUrlProblem(me.patroni_url, me.host);
  if (problem) return { patroniUrl: `${problem.charAt(0).toUpperCase()}${problem.slice(1)}.` };
  // Unconfirmed (no other member answers yet: a herd being set up) is left to the pre-flight, which
  // refuses it then; contradicted is refused now.
  const said = await peersSay(asRef(me), me.patroni_url, rows.filter((r) => r.id !== id).map(asRef));
  return 'contradicted' in said && said.contradicted ? { patroniUrl: `${said.problem}: enter the address its Patroni has.` } : null;
}
