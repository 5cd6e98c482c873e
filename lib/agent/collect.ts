// The agent's reading of one running instance: one query, read-only, over the connection it is given
// (the local socket on a database host). Kept apart from discovery so that tests read the lab's real
// instances the way the agent does.
import pg from 'pg';
import { TIMELINE_SQL } from '@/lib/agent/timeline-sql';
import type { InstanceReport } from './report';
import { readFileSync, realpathSync, statfsSync } from 'node:fs';
import path from 'node:path';

/**
 * The bin directory the postmaster of `dataDirectory` runs from: its PID from postmaster.pid, its
 * executable from /proc (readable by the agent when it runs as the instance's user or root); null when
 * the host does not say.
 */
export function binDirOf(dataDirectory: string): string | null {
  try {
    const pid = readFileSync(path.join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]?.trim();
    if (!pid || !/^\d+$/.test(pid)) return null;
    const exe = realpathSync(`/proc/${pid}/exe`);
    return path.dirname(exe);
  } catch {
    return null;
  }
}

const QUERY = `
  SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
         current_setting('server_version_num')::int / 10000 AS major,
         current_setting('server_version_num')::int AS vnum,
         current_setting('data_directory') AS datadir,
         current_setting('port')::int AS port,
         pg_is_in_recovery() AS rec,
         ${TIMELINE_SQL} AS tli,
         CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
         pg_last_wal_receive_lsn()::text AS received,
         pg_last_wal_replay_lsn()::text AS replayed,
         (SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming' LIMIT 1) AS up_host,
         (SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming' LIMIT 1) AS up_port,
         (SELECT coalesce(json_agg(json_build_object('clientAddr', host(client_addr), 'applicationName', application_name, 'state', state,
                  'sentLsn', sent_lsn::text, 'replayLsn', replay_lsn::text) ORDER BY pid), '[]'::json) FROM pg_stat_replication) AS replicas,
         (SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM pg_settings WHERE pending_restart) AS pending,
         pg_postmaster_start_time() AS started,
         pg_conf_load_time() AS conf`;

interface Row {
  sysid: string;
  major: number;
  vnum: number;
  datadir: string;
  port: number;
  rec: boolean;
  tli: number;
  current: string | null;
  received: string | null;
  replayed: string | null;
  up_host: string | null;
  up_port: number | null;
  replicas: { clientAddr: string | null; applicationName: string; state: string; sentLsn: string | null; replayLsn: string | null }[];
  pending: string[];
  started: Date;
  conf: Date;
}

type Mount = { device?: string; fsType?: string; mountPoint?: string; volumeId?: string };
type Space = { freeBytes: number; totalBytes: number } & Mount;

/** A filesystem's space as statfs says (what an unprivileged writer may still use: bavail, and its size), and its mount. */
function space(dir: string): Space {
  const s = statfsSync(dir);
  return { freeBytes: s.bavail * s.bsize, totalBytes: Math.max(1, s.blocks * s.bsize), ...mountOf(dir) };
}

/** mountinfo escapes a space, tab, newline and backslash in a path as octal. */
const unescapeMount = (p: string) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * The mount `dir` (its real path) is on, as /proc/self/mountinfo says: the longest mount point that holds
 * it, its device and filesystem type; and for an NVMe device, the EBS volume its serial names. Nothing
 * where the host does not say (not Linux, a device not under /dev).
 */
export function mountOf(dir: string, mountinfo = '/proc/self/mountinfo'): Mount {
  let real: string;
  let table: string;
  try {
    real = realpathSync(dir);
    table = readFileSync(mountinfo, 'utf8');
  } catch {
    return {};
  }
  let best: { mountPoint: string; fsType: string; source: string } | null = null;
  for (const line of table.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = unescapeMount(left.split(' ')[4] ?? '');
    const [fsType = '', source = ''] = right.split(' ');
    const holds = mountPoint === '/' || real === mountPoint || real.startsWith(`${mountPoint}/`);
    // The last of equal length wins: a mount over another at the same point hides it.
    if (holds && (!best || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, fsType, source: unescapeMount(source) };
  }
  if (!best) return {};
  const out: Mount = { mountPoint: best.mountPoint };
  if (/^[a-z0-9_.]{1,32}$/.test(best.fsType)) out.fsType = best.fsType;
  if (/^\/dev\/[A-Za-z0-9/_.:-]+$/.test(best.source)) {
    out.device = best.source;
    const volume = ebsVolumeOf(best.source);
    if (volume) out.volumeId = volume;
  }
  return out;
}

/** The EBS volume an NVMe device is (Nitro instances say it in the device's serial: vol0123... for vol-0123...). */
function ebsVolumeOf(device: string): string | undefined {
  const name = path.basename(device);
  if (!/^nvme\d+n\d+$/.test(name)) return undefined;
  try {
    const serial = readFileSync(`/sys/class/block/${name}/device/serial`, 'utf8').trim();
    const m = /^vol-?([0-9a-f]{8,17})$/.exec(serial)?.[1];
    return m ? `vol-${m}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The data directory's filesystem and pg_wal's (it may link to another; its own only where the agent may
 * look inside the data directory: as the instance's user or root). Left out when the host does not say.
 */
export function diskOf(dataDirectory: string): { disk?: { data: Space; wal?: Space } } {
  let data: Space;
  try {
    data = space(dataDirectory);
  } catch {
    return {};
  }
  try {
    return { disk: { data, wal: space(path.join(dataDirectory, 'pg_wal')) } };
  } catch {
    return { disk: { data } };
  }
}

function binDirField(dataDirectory: string): { binDir?: string } {
  const d = binDirOf(dataDirectory);
  return d ? { binDir: d } : {};
}

export async function collectInstance(conn: pg.ClientConfig): Promise<InstanceReport> {
  const client = new pg.Client({ ...conn, application_name: 'pgherd-agent', statement_timeout: 5000, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const {
      rows: [r],
    } = await client.query<Row>(QUERY);
    if (!r) throw new Error('collectInstance: the instance query returned no row');
    return {
      port: r.port,
      dataDirectory: r.datadir,
      state: 'running',
      majorVersion: r.major,
      serverVersionNum: r.vnum,
      ...binDirField(r.datadir),
      ...diskOf(r.datadir),
      systemIdentifier: r.sysid,
      inRecovery: r.rec,
      timeline: r.tli,
      currentLsn: r.current,
      receivedLsn: r.rec ? r.received : null,
      replayedLsn: r.rec ? r.replayed : null,
      upstream: r.up_host && r.up_port ? { host: r.up_host, port: r.up_port } : null,
      replicas: r.replicas,
      pendingRestart: r.pending,
      startedAt: r.started.toISOString(),
      confLoadedAt: r.conf.toISOString(),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
