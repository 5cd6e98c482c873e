// The lab's RDS: moto answers the RDS API (create, describe, modify, read replicas, promote, stop and
// start, reboot) and runs no database; this part of the lab's AWS front makes each of its DB instances a
// real lab Postgres, as RDS's own hosts are:
// - DescribeDBInstances says each instance's endpoint is its Postgres's lab address and port (moto makes
//   up a DNS name nothing answers at), and says the status RDS would while a change is under way:
//   `modifying`, `rebooting`, `stopping`, `starting` for `seconds` (default 2), the Postgres restarted,
//   stopped or started meanwhile.
// - ModifyDBInstance of the class is refused (InvalidDBInstanceState) while the instance is not
//   available, as RDS does (moto accepts it); applied now, it restarts the Postgres (a class change takes
//   effect when RDS restarts the instance); not applied now, the old class is said, with the new one
//   pending, until a reboot.
// - StopDBInstance stops the Postgres (moto refuses a read replica, as RDS does), StartDBInstance starts
//   it, RebootDBInstance restarts it (ForceFailover only on a Multi-AZ instance, as RDS says), and
//   PromoteReadReplica promotes it (pg_ctl promote), after checking it is available.
// - CreateDBInstanceReadReplica clones the source's Postgres (pg_basebackup) onto a spare address of the
//   lab and starts it streaming; RDS says `creating`, with no endpoint, until it streams. No spare left
//   is InsufficientDBInstanceCapacity.
// - Faults from the capacity file's `rds`: `insufficient` classes are refused with
//   InsufficientDBInstanceCapacity; an identifier listed under `storageFull` says storage-full (and its
//   Postgres is not touched by anything asked).
// - ModifyDBParameterGroup is written into the Postgres of every DB instance using the group (ALTER
//   SYSTEM and a reload) as RDS applies it: `immediate` at once, `pending-reboot` at its RebootDBInstance;
//   until then DescribeDBInstances says the instance's ParameterApplyStatus is `pending-reboot`.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { binDirOf } from '@/lib/agent/collect';
import path from 'node:path';
import { run, type Identity } from './proc';
import { cloneReplica, query, startNode } from './postgres';

export interface RdsBacking {
  address: string;
  port: number;
  dataDirectory: string;
  logFile: string;
  binDir?: string;
}

/** An address where a new read replica's Postgres can answer, with its certificate. */
export interface RdsSpare {
  environment: string;
  address: string;
  port: number;
  certFile: string;
  keyFile: string;
  pgherdUser: string;
}

export interface RdsFrontConfig {
  identity: Identity;
  /** Where new read replicas' data goes, and the addresses they take (one each, while it lives). */
  dir: string;
  spares: RdsSpare[];
  region: string;
  /** The classes RDS offers for postgres in the region (moto answers DescribeOrderableDBInstanceOptions for Aurora only). */
  classes: string[];
  pgBin: string;
  /** Each DB instance's Postgres, by identifier. */
  backing: Record<string, RdsBacking>;
  /** How long RDS says a change is under way (default 2 s). */
  seconds?: number;
}

export interface RdsFaults {
  insufficient?: string[];
  storageFull?: string[];
}

type Answer = { status: number; headers: http.OutgoingHttpHeaders; body: Buffer };
type Forward = (body: Buffer) => Promise<Answer>;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function rdsError(status: number, code: string, message: string): Answer {
  return {
    status,
    headers: { 'content-type': 'text/xml' },
    body: Buffer.from(
      `<?xml version="1.0"?>\n<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${esc(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    ),
  };
}

/** Each `<DBInstance>` element of an answer passed through `fn` (with its identifier). */
export function eachDbInstance(xml: string, fn: (item: string, identifier: string) => string): string {
  return xml.replace(/<DBInstance>([\s\S]*?)<\/DBInstance>/g, (whole) => {
    const id = /<DBInstanceIdentifier>([^<]+)<\/DBInstanceIdentifier>/.exec(whole)?.[1] ?? '';
    return fn(whole, id);
  });
}

const field = (item: string, tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(item)?.[1];

export function rdsFront(cfg: RdsFrontConfig, faults: () => RdsFaults) {
  const seconds = cfg.seconds ?? 2;
  // Changes under way: what RDS says until when.
  const under = new Map<string, { status: string; until: number; oldClass?: string }>();
  // New read replicas whose Postgres is being cloned (RDS says creating, with no endpoint), or failed to be.
  const creating = new Set<string>();
  const failed = new Set<string>();
  // Read replicas promoted: no longer their source's (moto keeps saying they replicate from it).
  const promoted = new Set<string>();
  // Classes accepted for the next reboot: the old one is said meanwhile.
  const pending = new Map<string, { oldClass: string; newClass: string }>();
  const pgCtl = async (id: string, verb: 'stop' | 'start' | 'restart' | 'promote') => {
    const b = cfg.backing[id];
    if (!b) return;
    const bin = binDirOf(b.dataDirectory) ?? b.binDir ?? cfg.pgBin;
    const argv =
      verb === 'promote'
        ? [`${bin}/pg_ctl`, '-D', b.dataDirectory, '-w', '-t', '60', 'promote']
        : verb === 'stop'
          ? [`${bin}/pg_ctl`, '-D', b.dataDirectory, '-m', 'fast', '-w', '-t', '60', 'stop']
          : [`${bin}/pg_ctl`, '-D', b.dataDirectory, '-l', b.logFile, '-m', 'fast', '-w', '-t', '60', verb];
    await run(cfg.identity, argv).catch((err: unknown) => console.error(`rds-front: ${verb} ${id}: ${(err as Error).message}`));
  };
  /** RDS says `status` for the front's seconds while `work` runs; then what moto says. */
  const underWay = (id: string, status: string, work: () => Promise<void>, oldClass?: string) => {
    const until = Date.now() + seconds * 1000;
    under.set(id, { status, until, ...(oldClass ? { oldClass } : {}) });
    void (async () => {
      await work();
      await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
      if (under.get(id)?.until === until) under.delete(id);
    })();
  };

  const describeOne = async (forward: Forward, id: string) => {
    const a = await forward(
      Buffer.from(new URLSearchParams({ Action: 'DescribeDBInstances', Version: '2014-10-31', DBInstanceIdentifier: id }).toString()),
    );
    const xml = a.body.toString('utf8');
    const item = /<DBInstance>[\s\S]*?<\/DBInstance>/.exec(xml)?.[0];
    if (a.status !== 200 || !item) return null;
    return {
      status: field(item, 'DBInstanceStatus') ?? '',
      instanceClass: field(item, 'DBInstanceClass') ?? '',
      multiAz: field(item, 'MultiAZ') === 'true',
      parameterGroup: field(item, 'DBParameterGroupName') ?? '',
    };
  };
  /** Values of a DB parameter group that wait for the instance's reboot (ApplyMethod pending-reboot), by identifier. */
  const pendingParameters = new Map<string, Map<string, string>>();
  /** ALTER SYSTEM of each value on the instance's Postgres, then a reload. */
  const alterSystem = async (id: string, set: [string, string][]) => {
    const b = cfg.backing[id];
    if (!b || !set.length) return;
    const url = `postgres://postgres@${b.address}:${String(b.port)}/postgres`;
    try {
      for (const [name, value] of set) {
        const [q] = await query<{ q: string }>(url, 'SELECT format($$ALTER SYSTEM SET %I = %L$$, $1::text, $2::text) AS q', [name, value]);
        if (q) await query(url, q.q);
      }
      await query(url, 'SELECT pg_reload_conf()');
    } catch (err) {
      console.error(`rds-front: parameters on ${id}: ${(err as Error).message}`);
    }
  };
  /**
   * ModifyDBParameterGroup, taken by moto, then applied to every DB instance using the group as RDS
   * applies it: an `immediate` value written into its Postgres at once (ALTER SYSTEM, reloaded); a
   * `pending-reboot` one kept until the instance's RebootDBInstance, and written then.
   */
  const modifyGroup = async (p: URLSearchParams, forward: Forward): Promise<Answer> => {
    const a = await forward(Buffer.from(p.toString()));
    if (a.status !== 200) return a;
    const group = p.get('DBParameterGroupName') ?? '';
    const now: [string, string][] = [];
    const later: [string, string][] = [];
    for (const [k, name] of p) {
      const m = /^Parameters\.(Parameter|member)\.(\d+)\.ParameterName$/.exec(k);
      if (!m) continue;
      const at = `Parameters.${m[1] ?? ''}.${m[2] ?? ''}`;
      (p.get(`${at}.ApplyMethod`) === 'pending-reboot' ? later : now).push([name, p.get(`${at}.ParameterValue`) ?? '']);
    }
    for (const id of Object.keys(cfg.backing)) {
      if ((await describeOne(forward, id))?.parameterGroup !== group) continue;
      const waiting = pendingParameters.get(id) ?? new Map<string, string>();
      for (const [name, value] of later) waiting.set(name, value);
      for (const [name] of now) waiting.delete(name);
      pendingParameters.set(id, waiting);
      await alterSystem(id, now);
    }
    return a;
  };
  /** The values waiting for the reboot, written as it restarts the Postgres. */
  const applyPending = async (id: string) => {
    const waiting = pendingParameters.get(id);
    pendingParameters.delete(id);
    if (waiting) await alterSystem(id, [...waiting]);
  };
  const statusOf = (id: string, motoStatus: string) => {
    if (creating.has(id)) return 'creating';
    if (failed.has(id)) return 'failed';
    if ((faults().storageFull ?? []).includes(id)) return 'storage-full';
    const u = under.get(id);
    return u && Date.now() < u.until ? u.status : motoStatus;
  };
  const notAvailable = (id: string, status: string) =>
    rdsError(400, 'InvalidDBInstanceState', `Database instance ${id} is not in available state (it is ${status}).`);

  const rewrite = (xml: string) =>
    eachDbInstance(xml, (item, id) => {
      let out = item;
      const b = cfg.backing[id];
      if (creating.has(id)) out = out.replace(/<Endpoint>[\s\S]*?<\/Endpoint>/, '');
      else if (b)
        out = out.replace(
          /<Endpoint>[\s\S]*?<\/Endpoint>/,
          `<Endpoint><Address>${b.address}</Address><Port>${String(b.port)}</Port></Endpoint>`,
        );
      if (promoted.has(id)) out = out.replace(/<ReadReplicaSourceDBInstanceIdentifier>[^<]*<\/ReadReplicaSourceDBInstanceIdentifier>/, '');
      for (const r of promoted) out = out.split(`<ReadReplicaDBInstanceIdentifier>${r}</ReadReplicaDBInstanceIdentifier>`).join('');
      // moto says in-sync whatever the group holds; RDS says pending-reboot while a static value waits.
      if (pendingParameters.get(id)?.size)
        out = out.replace(
          /<ParameterApplyStatus>[^<]*<\/ParameterApplyStatus>/,
          '<ParameterApplyStatus>pending-reboot</ParameterApplyStatus>',
        );
      const status = statusOf(id, field(item, 'DBInstanceStatus') ?? '');
      out = out.replace(/<DBInstanceStatus>[^<]*<\/DBInstanceStatus>/, `<DBInstanceStatus>${status}</DBInstanceStatus>`);
      const u = under.get(id);
      const p = pending.get(id);
      const oldClass = u && Date.now() < u.until ? u.oldClass : p?.oldClass;
      const newClass = u && Date.now() < u.until && u.oldClass ? field(item, 'DBInstanceClass') : p?.newClass;
      if (oldClass && newClass) {
        out = out.replace(/<DBInstanceClass>[^<]*<\/DBInstanceClass>/, `<DBInstanceClass>${oldClass}</DBInstanceClass>`);
        out = out.replace(/<PendingModifiedValues>[\s\S]*?<\/PendingModifiedValues>|<PendingModifiedValues\/>/, '');
        out = out.replace(
          '</DBInstanceClass>',
          `</DBInstanceClass><PendingModifiedValues><DBInstanceClass>${newClass}</DBInstanceClass></PendingModifiedValues>`,
        );
      }
      return out;
    });

  /** A new read replica: moto records it; its Postgres is cloned from the source's on a spare address. */
  const createReplica = async (p: URLSearchParams, forward: Forward): Promise<Answer> => {
    const id = p.get('DBInstanceIdentifier') ?? '';
    const source = cfg.backing[p.get('SourceDBInstanceIdentifier') ?? ''];
    if (!source) return rdsError(404, 'DBInstanceNotFound', `DBInstance ${p.get('SourceDBInstanceIdentifier') ?? ''} not found.`);
    const cls = p.get('DBInstanceClass') ?? '';
    if ((faults().insufficient ?? []).includes(cls))
      return rdsError(
        400,
        'InsufficientDBInstanceCapacity',
        `Cannot create a ${cls} DB instance: there is not enough capacity in the Availability Zone.`,
      );
    const used = new Set(Object.values(cfg.backing).map((b) => b.address));
    const spare = cfg.spares.find((x) => !used.has(x.address));
    if (!spare)
      return rdsError(
        400,
        'InsufficientDBInstanceCapacity',
        `The lab has no spare address for another read replica (${String(cfg.spares.length)} in all).`,
      );
    const a = await forward(Buffer.from(p.toString()));
    if (a.status !== 200) return a;
    const home = path.join(cfg.dir, id);
    const node = {
      name: id,
      address: spare.address,
      port: spare.port,
      dataDirectory: path.join(home, 'data'),
      socketDirectory: path.join(home, 'run'),
      logFile: path.join(home, 'postgres.log'),
      tls: { certFile: spare.certFile, keyFile: spare.keyFile },
      pgherdUser: spare.pgherdUser,
    };
    cfg.backing[id] = { address: node.address, port: node.port, dataDirectory: node.dataDirectory, logFile: node.logFile };
    // Creating (no endpoint) until its Postgres runs; a clone that fails leaves it failed, as RDS would.
    creating.add(id);
    void (async () => {
      try {
        await cloneReplica(cfg.identity, node, {
          name: id,
          address: source.address,
          port: source.port,
          dataDirectory: source.dataDirectory,
          socketDirectory: '',
          logFile: source.logFile,
        });
        await startNode(cfg.identity, node, cfg.pgBin);
      } catch (err) {
        console.error(`rds-front: creating ${id}: ${(err as Error).message}`);
        failed.add(id);
      } finally {
        creating.delete(id);
      }
    })();
    a.body = Buffer.from(rewrite(a.body.toString('utf8')));
    a.headers['content-length'] = String(a.body.length);
    return a;
  };

  /** DescribeOrderableDBInstanceOptions for postgres: every class of the region, in each of its three zones, Multi-AZ capable. */
  const orderable = (p: URLSearchParams): Answer => {
    const from = Number(p.get('Marker') ?? 0) || 0;
    const size = Math.min(1000, Number(p.get('MaxRecords') ?? 100) || 100);
    const version = p.get('EngineVersion') ?? '15.8';
    const zones = ['a', 'b', 'c'].map((z) => `<AvailabilityZone><Name>${cfg.region}${z}</Name></AvailabilityZone>`).join('');
    const page = cfg.classes.slice(from, from + size);
    const items = page
      .map(
        (c) =>
          `<OrderableDBInstanceOption><Engine>postgres</Engine><EngineVersion>${esc(version)}</EngineVersion><DBInstanceClass>${c}</DBInstanceClass><LicenseModel>postgresql-license</LicenseModel><AvailabilityZones>${zones}</AvailabilityZones><MultiAZCapable>true</MultiAZCapable><ReadReplicaCapable>true</ReadReplicaCapable><Vpc>true</Vpc><StorageType>gp3</StorageType></OrderableDBInstanceOption>`,
      )
      .join('');
    const marker = from + size < cfg.classes.length ? `<Marker>${String(from + size)}</Marker>` : '';
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: Buffer.from(
        `<?xml version="1.0"?>\n<DescribeOrderableDBInstanceOptionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeOrderableDBInstanceOptionsResult><OrderableDBInstanceOptions>${items}</OrderableDBInstanceOptions>${marker}</DescribeOrderableDBInstanceOptionsResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeOrderableDBInstanceOptionsResponse>`,
      ),
    };
  };

  /** The answer to an RDS call, or null to pass it to moto as it came. */
  return async (p: URLSearchParams, forward: Forward): Promise<Answer | null> => {
    const action = p.get('Action');
    if (action === 'DescribeOrderableDBInstanceOptions' && p.get('Engine') === 'postgres') return orderable(p);
    if (action === 'CreateDBInstanceReadReplica') return createReplica(p, forward);
    if (action === 'ModifyDBParameterGroup') return modifyGroup(p, forward);
    const id = p.get('DBInstanceIdentifier') ?? '';
    if (action === 'DescribeDBInstances') {
      const a = await forward(Buffer.from(p.toString()));
      if (a.status === 200) {
        a.body = Buffer.from(rewrite(a.body.toString('utf8')));
        a.headers['content-length'] = String(a.body.length);
      }
      return a;
    }
    const changes = ['ModifyDBInstance', 'StopDBInstance', 'StartDBInstance', 'RebootDBInstance', 'PromoteReadReplica'];
    if (!action || !changes.includes(action)) return null;
    const now = await describeOne(forward, id);
    if (!now) return null; // moto's own answer (DBInstanceNotFound)
    const status = statusOf(id, now.status);
    if (action === 'StartDBInstance') {
      if (status !== 'stopped') return notAvailable(id, status);
      const a = await forward(Buffer.from(p.toString()));
      if (a.status === 200) underWay(id, 'starting', () => pgCtl(id, 'start'));
      return a;
    }
    if (status !== 'available') return notAvailable(id, status);
    if (action === 'ModifyDBInstance') {
      const newClass = p.get('DBInstanceClass');
      if (!newClass || newClass === now.instanceClass) return null;
      if ((faults().insufficient ?? []).includes(newClass))
        return rdsError(
          400,
          'InsufficientDBInstanceCapacity',
          `Cannot modify ${id} to ${newClass}: there is not enough capacity for the requested instance class in the Availability Zone.`,
        );
      const a = await forward(Buffer.from(p.toString()));
      if (a.status !== 200) return a;
      if (p.get('ApplyImmediately') === 'true') {
        pending.delete(id);
        underWay(id, 'modifying', () => pgCtl(id, 'restart'), now.instanceClass);
      } else pending.set(id, { oldClass: pending.get(id)?.oldClass ?? now.instanceClass, newClass });
      a.body = Buffer.from(rewrite(a.body.toString('utf8')));
      a.headers['content-length'] = String(a.body.length);
      return a;
    }
    if (action === 'StopDBInstance') {
      const a = await forward(Buffer.from(p.toString()));
      if (a.status === 200) underWay(id, 'stopping', () => pgCtl(id, 'stop'));
      return a;
    }
    if (action === 'RebootDBInstance') {
      if (p.get('ForceFailover') === 'true' && !now.multiAz)
        return rdsError(
          400,
          'InvalidParameterCombination',
          `Reboot with failover is only supported for Multi-AZ DB instances; ${id} is Single-AZ.`,
        );
      const a = await forward(Buffer.from(p.toString()));
      if (a.status === 200) {
        const was = pending.get(id);
        pending.delete(id);
        underWay(
          id,
          'rebooting',
          async () => {
            await applyPending(id);
            await pgCtl(id, 'restart');
          },
          was?.oldClass,
        );
      }
      return a;
    }
    // PromoteReadReplica
    const a = await forward(Buffer.from(p.toString()));
    if (a.status === 200) {
      promoted.add(id);
      underWay(id, 'modifying', () => pgCtl(id, 'promote'));
    }
    return a;
  };
}
