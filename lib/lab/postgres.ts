// Real PostgreSQL servers for the lab: initdb, start with pg_ctl, clone replicas with pg_basebackup.
import { readFileSync, writeFileSync, appendFileSync, chownSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { mkdirOwned, run, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';
import type { LabCertificate } from './tls';
import { setting } from '@/lib/settings/settings';

export const PG_BIN = setting('PGHERD_PG_BIN');
export const PG_SUPERUSER = 'postgres';

export interface PgNode {
  name: string;
  address: string;
  port: number;
  dataDirectory: string;
  socketDirectory: string;
  logFile: string;
  /** Fleet instances: a certificate for the node's address, signed by the lab CA. */
  tls?: LabCertificate;
  /** Fleet instances: the role pgherd connects as, only over TLS with a password (scram-sha-256). */
  pgherdUser?: string;
}

/** The node's own settings. Written after every clone, since pg_basebackup copies the source's. */
export function nodeConfig(node: PgNode): string {
  return [
    `listen_addresses = '${node.address}'`,
    `port = ${node.port}`,
    `unix_socket_directories = '${node.socketDirectory}'`,
    `wal_level = replica`,
    `wal_log_hints = on`,
    `wal_keep_size = '512MB'`,
    `max_wal_senders = 10`,
    `max_replication_slots = 10`,
    `hot_standby = on`,
    `max_connections = 40`,
    `shared_buffers = '16MB'`,
    `fsync = off`,
    `synchronous_commit = off`,
    `full_page_writes = on`,
    // Ready for a backup policy, as a fleet that plans for archiving is: turning it on takes a restart,
    // while pgherd's Configure backups sets archive_command with a reload (until then WAL is kept).
    `archive_mode = on`,
    `cluster_name = '${node.name}'`,
    `logging_collector = off`,
    `log_line_prefix = '%m [%p] '`,
    ...(node.tls ? ['ssl = on', `ssl_cert_file = '${node.tls.certFile}'`, `ssl_key_file = '${node.tls.keyFile}'`] : []),
    '',
  ].join('\n');
}

/**
 * Who may connect: pgherd's role only over TLS with its password (the same role without TLS is
 * rejected); the lab's own clients (tests, agents, PgBouncer, replication) as before, without one.
 */
export function hbaFor(node: Pick<PgNode, 'pgherdUser'>): string {
  return [
    'local all all trust',
    ...(node.pgherdUser
      ? [
          `hostssl all ${node.pgherdUser} 127.0.0.0/8 scram-sha-256`,
          `host all ${node.pgherdUser} 0.0.0.0/0 reject`,
          // The roles a major upgrade's subscriptions connect as (group pgherd_upgrade): as pgherd's own.
          'hostssl all +pgherd_upgrade 127.0.0.0/8 scram-sha-256',
          'host all +pgherd_upgrade 0.0.0.0/0 reject',
        ]
      : []),
    'host all all 127.0.0.0/8 trust',
    'local replication all trust',
    'host replication all 127.0.0.0/8 trust',
    '',
  ].join('\n');
}

function prepareDirs(id: Identity, node: PgNode) {
  mkdirOwned(id, path.dirname(node.dataDirectory));
  mkdirOwned(id, node.socketDirectory);
  mkdirOwned(id, path.dirname(node.logFile), 0o755);
}

function writeOwnSettings(id: Identity, node: PgNode, extra: string[] = []) {
  const conf = path.join(node.dataDirectory, 'postgresql.conf');
  // Later lines win: `extra` overrides the fleet's defaults.
  writeFileSync(conf, nodeConfig(node) + extra.map((l) => `${l}\n`).join(''));
  writeFileSync(path.join(node.dataDirectory, 'pg_hba.conf'), hbaFor(node));
  chownSync(conf, id.uid, id.gid);
}

export async function initPrimary(id: Identity, node: PgNode, extra: string[] = [], bin = PG_BIN): Promise<void> {
  prepareDirs(id, node);
  await run(id, [
    `${bin}/initdb`,
    '-D',
    node.dataDirectory,
    '-U',
    PG_SUPERUSER,
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    // As a fleet's should be (a herd without them is a risk: lib/features/risks).
    '--data-checksums',
    '--no-sync',
  ]);
  writeOwnSettings(id, node, extra);
}

export async function cloneReplica(id: Identity, node: PgNode, upstream: PgNode): Promise<void> {
  prepareDirs(id, node);
  await run(id, [
    `${PG_BIN}/pg_basebackup`,
    '-h',
    upstream.address,
    '-p',
    String(upstream.port),
    '-U',
    PG_SUPERUSER,
    '-D',
    node.dataDirectory,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  writeOwnSettings(id, node);
  // Name the walreceiver after the node, so pg_stat_replication tells replicas apart.
  const auto = path.join(node.dataDirectory, 'postgresql.auto.conf');
  const text = readFileSync(auto, 'utf8').replace(/primary_conninfo = '/, `primary_conninfo = 'application_name=${node.name} `);
  writeFileSync(auto, text);
}

/** Starts the node (on `bin`'s build: Debian's unless said) and returns the postmaster's PID. */
export async function startNode(id: Identity, node: PgNode, bin = PG_BIN): Promise<number> {
  await run(id, [`${bin}/pg_ctl`, '-D', node.dataDirectory, '-l', node.logFile, '-w', '-t', '60', 'start']);
  const pid = Number(readFileSync(path.join(node.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return pid;
}

export function touchLog(id: Identity, file: string) {
  appendFileSync(file, '');
  chownSync(file, id.uid, id.gid);
}

export function dsn(node: Pick<PgNode, 'address' | 'port'>, database = 'postgres'): string {
  return `postgres://${PG_SUPERUSER}@${node.address}:${node.port}/${database}`;
}

export async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  // A server shutting down (pgherd restarts lab instances) also emits 'error' on the client; the
  // query below rejects with it, so the event itself must not crash the process.
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

export async function waitStreaming(primary: PgNode, replicas: string[]): Promise<void> {
  await waitFor(
    `${replicas.join(', ')} streaming from ${primary.name}`,
    async () => {
      const rows = await query<{ application_name: string }>(
        dsn(primary),
        `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`,
      );
      const names = new Set(rows.map((r) => r.application_name));
      return replicas.every((r) => names.has(r)) ? true : undefined;
    },
    60_000,
  );
}
