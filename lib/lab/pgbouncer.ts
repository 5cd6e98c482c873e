// PgBouncer for the lab: in front of one herd, run by the lab user on the pooler's own loopback
// address (where the lab's sshd also listens, so pgherd edits its configuration over SSH as it would
// on a real host). Transaction pooling: PAUSE returns once running transactions end.
import { spawn } from 'node:child_process';
import { chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listening } from './ports';
import { asLabUser, mkdirOwned, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';

export interface LabPgbouncer {
  environment: string;
  herd: string;
  /** The pooler's server (host name in the lab zone), its address and site. */
  server: string;
  site: string;
  address: string;
  port: number;
  /** What an application would use: through the pooler to the herd's primary. */
  dsn: string;
  configFile: string;
  adminUser: string;
  /** The [databases] entries that point at the primary. */
  databases: string[];
}

export interface PoolerSpec {
  environment: string;
  herd: string;
  site: string;
  server: string;
  address: string;
  port: number;
  primary: { address: string; port: number };
  /**
   * The admin console over TLS with SCRAM (the admin user's verifier in userlist.txt, as a real pooler
   * keeps it), everything else as before: applications still connect without a password.
   */
  admin?: { verifier: string; certFile: string; keyFile: string };
}

export async function startPgbouncer(id: Identity, dir: string, spec: PoolerSpec): Promise<{ pid: number; pooler: LabPgbouncer }> {
  const home = path.join(dir, 'pgbouncer', spec.server);
  mkdirOwned(id, home, 0o755);
  const entry = spec.herd.replace(/[^A-Za-z0-9_]/g, '_');
  const configFile = path.join(home, 'pgbouncer.ini');
  const authFile = path.join(home, 'userlist.txt');
  // Readable by PgBouncer's user alone: an auth user's password is kept there in the clear.
  writeFileSync(authFile, `"postgres" ""\n"pgbouncer" "${spec.admin?.verifier ?? ''}"\n`, { mode: 0o600 });
  const hbaFile = path.join(home, 'hba.conf');
  if (spec.admin)
    writeFileSync(
      hbaFile,
      [
        'hostssl pgbouncer pgbouncer 0.0.0.0/0 scram-sha-256',
        'host pgbouncer pgbouncer 0.0.0.0/0 reject',
        // Users not in userlist.txt, looked up through auth_user and auth_query (a rotated login of the herd's).
        'host all app_pooled 0.0.0.0/0 scram-sha-256',
        'host all app_pooled2 0.0.0.0/0 scram-sha-256',
        'host all all 0.0.0.0/0 trust',
        '',
      ].join('\n'),
    );
  writeFileSync(
    configFile,
    [
      `; PgBouncer in front of ${spec.environment}/${spec.herd} (pgherd lab)`,
      '[databases]',
      `${entry} = host=${spec.primary.address} port=${spec.primary.port} dbname=postgres`,
      '',
      '[pgbouncer]',
      `listen_addr = ${spec.address}`,
      `listen_port = ${spec.port}`,
      `unix_socket_dir =`,
      ...(spec.admin
        ? [
            'auth_type = hba',
            `auth_hba_file = ${hbaFile}`,
            'client_tls_sslmode = allow',
            `client_tls_cert_file = ${spec.admin.certFile}`,
            `client_tls_key_file = ${spec.admin.keyFile}`,
            // Where auth_user (set by Rotate credentials) looks users up: a function the herd grants it.
            'auth_query = SELECT usename, passwd FROM public.pgbouncer_lookup($1)',
          ]
        : ['auth_type = trust']),
      `auth_file = ${authFile}`,
      'admin_users = pgbouncer',
      'pool_mode = transaction',
      'default_pool_size = 10',
      'server_connect_timeout = 3',
      'server_login_retry = 1',
      `pidfile = ${path.join(home, 'pgbouncer.pid')}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  for (const f of [configFile, authFile, ...(spec.admin ? [hbaFile] : [])]) chownSync(f, id.uid, id.gid);
  const log = path.join(dir, 'log', `pgbouncer-${spec.server}.log`);
  const out = openSync(log, 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/pgbouncer', configFile]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  await waitFor(
    `pgbouncer on ${spec.address}:${spec.port}`,
    async () => {
      if (exited !== null) throw new Error(`pgbouncer exited (${exited}): ${readFileSync(log, 'utf8').trim().slice(-2000)}`);
      return (await listening(spec.address, spec.port)) ? true : undefined;
    },
    15_000,
  );
  return {
    pid: child.pid!,
    pooler: {
      environment: spec.environment,
      herd: spec.herd,
      server: spec.server,
      site: spec.site,
      address: spec.address,
      port: spec.port,
      dsn: `postgres://postgres@${spec.address}:${spec.port}/${entry}`,
      configFile,
      adminUser: 'pgbouncer',
      databases: [entry],
    },
  };
}
