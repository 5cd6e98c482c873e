// The connection strings pgherd writes onto a host (a subscription's CONNECTION, the armed PgBouncer
// RESUME's psql) are read by that host's libpq, not by pgherd: they carry pgherd's own rule themselves.
// TLS verifies the server's certificate for the address against the environment's CA (verify-full,
// the CA's file on that host); a password is only ever answered through SCRAM, bound to the TLS
// channel. libpq 13 has channel_binding, which alone refuses a server that asks for the password in
// clear or as an MD5 hash; libpq 16 adds require_auth, which says so by name and also refuses a server
// that asks for nothing. A host whose libpq is older than 13 cannot keep the rule: refused, saying why.
import { Refusal } from '@/lib/fleet/refusal';
import { conninfo } from '@/lib/adapters/libpq/conninfo';

export interface LibpqRule {
  /** The environment's CA (PEM) when its connections verify TLS; null when they do not use TLS. */
  caPem: string | null;
  /** Where that CA's file is on the host whose libpq reads the string. */
  caPath: string | null;
  /** Whether a password is sent (then TLS and SCRAM are required). */
  password: boolean;
  /** The major version of the host's libpq (the server's for a subscription, psql's for the RESUME). */
  libpqMajor: number;
  /** Whether the server offers SCRAM bound to the channel (Postgres does over TLS; PgBouncer does not). */
  channelBinding: boolean;
  /** Names the string in a refusal: "blue's subscription to green". */
  what: string;
}

/** The security words of a connection string written onto a host, or the refusal saying why the host cannot keep them. */
export function libpqRuleWords(r: LibpqRule): Record<string, string> {
  if (r.password && r.caPem === null)
    throw new Refusal(
      'not-applicable',
      `${r.what}: a password goes only over TLS that verifies the server's certificate against the environment's CA (PGHERD_PG_CONFIG tls.mode verify-full with caFile)`,
    );
  const words: Record<string, string> = {};
  if (r.caPem !== null) {
    if (!r.caPath) throw new Error(`${r.what}: the environment's CA has no file on the host`);
    words.sslmode = 'verify-full';
    words.sslrootcert = r.caPath;
  } else words.sslmode = 'disable';
  if (!r.password) {
    // Nothing to answer with: a server that asks for a password gets none (never ~/.pgpass).
    if (r.libpqMajor >= 16) words.require_auth = 'none';
    return words;
  }
  if (r.channelBinding) {
    if (r.libpqMajor < 13)
      throw new Refusal(
        'not-applicable',
        `${r.what}: the host's libpq is ${String(r.libpqMajor)}, which cannot require SCRAM bound to the channel (channel_binding needs libpq 13, require_auth 16): upgrade its client library`,
      );
    words.channel_binding = 'require';
  } else if (r.libpqMajor < 16)
    throw new Refusal(
      'not-applicable',
      `${r.what}: the host's libpq is ${String(r.libpqMajor)}, which cannot refuse a password asked for in clear or as an MD5 hash (require_auth needs libpq 16) and the server binds no channel: install libpq 16 or later there`,
    );
  if (r.libpqMajor >= 16) words.require_auth = 'scram-sha-256';
  return words;
}

/** A whole connection string: `fields` (host, port, dbname, user, ...) and the rule's words, each value quoted. */
export function ruledConninfo(fields: Record<string, string>, rule: LibpqRule): string {
  return conninfo({ ...fields, ...libpqRuleWords(rule) });
}

/** The major version in `psql --version`'s or `pg_config --version`'s answer ("psql (PostgreSQL) 15.18 (Debian ...)"). */
export function libpqMajorOf(versionLine: string): number | null {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.\d+)?|PostgreSQL\s+(\d+)(?:\.\d+)?/.exec(versionLine);
  const v = m?.[1] ?? m?.[2];
  return v === undefined ? null : Number(v);
}
