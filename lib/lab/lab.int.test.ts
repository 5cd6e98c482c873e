// The lab itself: the sandbox fleet lab.json describes is real, replicating PostgreSQL.
import { existsSync } from 'node:fs';
import { inject, describe, expect, it } from 'vitest';
import { currentPid, readLab } from './lab';
import { alive, pidRuns } from './proc';
import { query } from './postgres';
import { isOpsTestHerd } from '@/lib/testing/test-db';

const lab = readLab(inject('labFile'));

describe('the lab', () => {
  it('runs 2 environments x 3 herds x (1 primary + 2 replicas), each member on its own loopback address', async () => {
    expect(lab.instances).toHaveLength(18);
    expect(new Set(lab.instances.map((i) => i.address)).size).toBe(18);
    expect(new Set(lab.instances.map((i) => i.environment))).toEqual(new Set(['production', 'staging']));
    expect(lab.instances.filter((i) => i.role === 'primary')).toHaveLength(6);
    const opsMember = (name: string) => lab.instances.some((i) => i.server === name && isOpsTestHerd(i.environment, i.herd));
    expect(lab.processes.filter((p) => !opsMember(p.name) && !(alive(currentPid(p)) && pidRuns(currentPid(p), p.program)))).toEqual([]);
    // pgherd's database, Redis, BIND, on each of the 18 servers a postmaster and an sshd, and the
    // PgBouncer in front of production/billing on a server of its own (with its sshd), a backup host and
    // two scratch servers and three launch addresses (where EC2 instances the lab launches answer) per
    // environment (an sshd each), OpenLDAP slapd, moto and the lab's AWS front, with an EC2 instance per
    // database server
    expect(lab.processes.map((p) => p.program).sort()).toEqual(
      [
        'postgres',
        ...Array(18).fill('postgres'),
        'redis-server',
        'named',
        'pgbouncer',
        'slapd',
        ...Array(31).fill('sshd'),
        'moto_server',
        'aws-front.ts',
      ].sort(),
    );
    expect(lab.aws!.instances.map((i) => i.server).sort()).toEqual(lab.instances.map((i) => i.server).sort());
    expect(lab.pgbouncer).toEqual([
      expect.objectContaining({ environment: 'production', herd: 'billing', address: '127.0.1.241', databases: ['billing'] }),
    ]);
    expect((await query<{ n: string }>(lab.pgbouncer[0]!.dsn, 'SELECT 1 AS n'))[0]!.n).toBe(1);
  });

  it('has every replica streaming from its primary, which sees it by name', async () => {
    for (const r of lab.instances.filter((i) => i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd))) {
      const primary = lab.instances.find((i) => i.server === r.upstream)!;
      const [w] = await query<{ rec: boolean; status: string; host: string }>(
        r.dsn,
        `SELECT pg_is_in_recovery() AS rec, status, sender_host AS host FROM pg_stat_wal_receiver`,
      );
      expect(w).toEqual({ rec: true, status: 'streaming', host: primary.address });
      const seen = await query(primary.dsn, `SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, [
        r.server,
      ]);
      expect(seen).toHaveLength(1);
    }
  });

  it('replicates a row written on a primary to its replicas', async () => {
    const primary = lab.instances.find((i) => i.role === 'primary' && i.herd === 'billing' && i.environment === 'staging')!;
    await query(primary.dsn, 'CREATE TABLE IF NOT EXISTS lab_probe (v text)');
    await query(primary.dsn, `INSERT INTO lab_probe VALUES ('hello')`);
    for (const r of lab.instances.filter((i) => i.upstream === primary.server)) {
      let rows: unknown[] = [];
      for (let i = 0; i < 100 && !rows.length; i++) {
        rows = await query(r.dsn, `SELECT 1 FROM pg_class WHERE relname = 'lab_probe'`).then((x) =>
          x.length ? query(r.dsn, `SELECT v FROM lab_probe`) : [],
        );
        if (!rows.length) await new Promise((res) => setTimeout(res, 50));
      }
      expect(rows).toEqual([{ v: 'hello' }]);
    }
  });

  it('keeps data directories owned by the unprivileged lab user', () => {
    expect(lab.osUser).not.toBe('root');
    for (const i of lab.instances) expect(existsSync(`${i.dataDirectory}/PG_VERSION`)).toBe(true);
  });
});
