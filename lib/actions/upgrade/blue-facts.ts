// What a major upgrade by logical replication needs of the herd it upgrades (blue): read from its
// primary, database by database, and judged against the target build (its extensions as its host's
// agent reports them). Blockers refuse the upgrade with their reason; warnings are said on the plan.
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { readAsConnectionString } from './dump-guard';
import { onDb } from '@/lib/actions/steps/endpoint-db';
import { sqlFile } from '@/lib/adapters/sql/sql-file';

export interface DatabaseFacts {
  name: string;
  tables: number;
  /** Tables that cannot send UPDATE and DELETE by logical replication: no primary key, replica identity default or nothing. */
  noIdentity: string[];
  /** Columns of a reg* type (OIDs of one cluster, meaningless in another). */
  regColumns: string[];
  largeObjects: number;
  sequences: number;
  extensions: { name: string; version: string }[];
  encoding: string;
  collate: string;
  ctype: string;
}

export interface BlueFacts {
  walLevel: string;
  freeSlots: number;
  freeSenders: number;
  serverVersionNum: number;
  /** Whether blue's pages carry checksums: green is made the same way (a herd does not lose them by an upgrade). */
  dataChecksums: boolean;
  databases: DatabaseFacts[];
}

/** Databases that take part: every one that accepts connections and is not a template. */
const DATABASES = `SELECT datname AS name, pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype
                   FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname`;

const SERVER = `SELECT current_setting('wal_level') AS wal_level,
                       current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free_slots,
                       current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication)::int AS free_senders,
                       current_setting('server_version_num')::int AS vnum,
                       current_setting('data_checksums') = 'on' AS checksums`;

/** Each database's facts (its user tables: tables and partitioned ones outside the catalogs and pgherd's schema). */
const PER_DATABASE = sqlFile('lib/actions/upgrade/blue-database-facts.sql');

/** Reads the facts from blue's primary: the server's, then each database's. */
export async function readBlueFacts(primary: InstanceRef): Promise<BlueFacts> {
  const { server, dbs } = await onDb(primary, 'postgres', async (c) => ({
    server: (await c.query<{ wal_level: string; free_slots: number; free_senders: number; vnum: number; checksums: boolean }>(SERVER))
      .rows[0],
    dbs: (await c.query<{ name: string; encoding: string; collate: string; ctype: string }>(DATABASES)).rows,
  }));
  if (!server) throw new Error(`${primary.label} answered nothing to the server query`);
  const databases: DatabaseFacts[] = [];
  for (const d of dbs) {
    const r = await onDb(
      primary,
      d.name,
      async (c) =>
        (
          await c.query<{
            tables: number;
            no_identity: string[];
            reg_columns: string[];
            large_objects: number;
            sequences: number;
            extensions: { name: string; version: string }[];
          }>(PER_DATABASE)
        ).rows[0],
    );
    if (!r) throw new Error(`${primary.label}/${d.name} answered nothing to the database query`);
    databases.push({
      name: d.name,
      tables: r.tables,
      noIdentity: r.no_identity,
      regColumns: r.reg_columns,
      largeObjects: r.large_objects,
      sequences: r.sequences,
      extensions: r.extensions,
      encoding: d.encoding,
      collate: d.collate,
      ctype: d.ctype,
    });
  }
  return {
    walLevel: server.wal_level,
    freeSlots: server.free_slots,
    freeSenders: server.free_senders,
    serverVersionNum: server.vnum,
    dataChecksums: server.checksums,
    databases,
  };
}

/** The databases that are copied: every one that accepts connections (one empty now may not be at the cut-over). */
export const copied = (f: BlueFacts): DatabaseFacts[] => f.databases;

/** What refuses the upgrade, and what only warns, judged against the target build's extensions. */
export function judge(f: BlueFacts, targetExtensions: Record<string, string> | null): { blockers: string[]; warnings: string[] } {
  const blockers: string[] = [];
  const warnings: string[] = [];
  const dbs = copied(f);
  if (f.walLevel !== 'logical')
    blockers.push(
      `wal_level is ${f.walLevel}: logical replication needs logical (ALTER SYSTEM SET wal_level = logical on the primary, then restart it, or switch over to a replica restarted with it)`,
    );
  if (f.freeSlots < dbs.length)
    blockers.push(
      `${f.freeSlots} free replication slot(s) on the primary, ${dbs.length} needed (one a database): raise max_replication_slots (a restart)`,
    );
  if (f.freeSenders < dbs.length)
    blockers.push(
      `${f.freeSenders} free WAL sender(s) on the primary, ${dbs.length} needed (one a database): raise max_wal_senders (a restart)`,
    );
  for (const d of dbs) {
    if (readAsConnectionString(d.name))
      blockers.push(
        `database ${JSON.stringify(d.name)}: libpq reads a name with "=" (or a postgres:// prefix) as a connection string, not a database: rename it before the upgrade`,
      );
    if (d.noIdentity.length)
      blockers.push(
        `${d.name}: ${d.noIdentity.length} table(s) without a primary key or replica identity (${d.noIdentity.slice(0, 5).join(', ')}${d.noIdentity.length > 5 ? ', ...' : ''}): their UPDATE and DELETE cannot be replicated; add a primary key or ALTER TABLE ... REPLICA IDENTITY FULL`,
      );
    if (d.regColumns.length)
      blockers.push(
        `${d.name}: column(s) of a reg* type (${d.regColumns.slice(0, 5).join(', ')}): they hold OIDs of this cluster, which mean nothing in the new one`,
      );
    if (d.largeObjects) blockers.push(`${d.name}: ${d.largeObjects} large object(s): logical replication does not copy large objects`);
    if (targetExtensions)
      for (const e of d.extensions) {
        const there = targetExtensions[e.name];
        if (there === undefined) blockers.push(`${d.name}: extension ${e.name} ${e.version} is not installed with the target build`);
        else if (there !== e.version)
          warnings.push(
            `${d.name}: extension ${e.name} is ${e.version} here, ${there} with the target build: ALTER EXTENSION ${e.name} UPDATE after the cut-over`,
          );
      }
  }
  const seqs = dbs.reduce((n, d) => n + d.sequences, 0);
  if (seqs)
    warnings.push(
      `${seqs} sequence(s): logical replication does not carry them; the cut-over sets each on green to at least blue's value plus the gap, and checks it`,
    );
  warnings.push('schema changes are not replicated: freeze them from now until the cut-over (or the roll back)');
  return { blockers, warnings };
}
