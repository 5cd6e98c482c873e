// The lab's Patroni herd (issue 18's first part): etcd and three Patroni members on their own loopback
// addresses come up with the first member leading and the others streaming, Patroni's REST API takes
// the herd's credentials only, and `patronictl switchover` moves the leader (what pgherd will drive).
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patroniGet, startEtcd, startPatroniHerd, stopPatroniHerd, waitCluster, type PatroniCluster, type PatroniHerd } from './patroni';
import { freePort, portFreeOnAll } from './ports';
import { query } from './postgres';
import { labIdentity, stopPid } from './proc';

const execFileP = promisify(execFile);
const ADDRESSES = ['127.0.5.1', '127.0.5.2', '127.0.5.3'];

let dir = '';
let etcd: { pid: number; url: string } | null = null;
let herd: PatroniHerd | null = null;

beforeAll(async () => {
  const id = labIdentity();
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-patroni-'));
  chmodSync(dir, 0o755);
  etcd = await startEtcd(id, dir, await freePort(), await freePort());
  const pgPort = await portFreeOnAll(ADDRESSES, [5432, 5433, 5434]);
  const restPort = await portFreeOnAll(ADDRESSES, [8008, 8009, 8010]);
  herd = await startPatroniHerd(id, dir, {
    scope: 'lab-patroni',
    members: ADDRESSES.map((address, k) => ({ name: `patroni-${String(k + 1)}`, address, pgPort, restPort })),
    etcd: etcd.url,
    restUser: 'pgherd',
    restPassword: 'lab-rest-secret',
  });
}, 240_000);

afterAll(async () => {
  if (herd) await stopPatroniHerd(herd);
  if (etcd) await stopPid(etcd.pid, 'SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

const h = () => {
  if (!herd) throw new Error('the Patroni herd did not start');
  return herd;
};

describe('the lab: a herd under Patroni', () => {
  it('comes up with its first member leading and the others streaming from it, as Postgres itself says', async () => {
    const cluster = await patroniGet<PatroniCluster>(h(), h().members[1]!.restUrl, '/cluster');
    expect(cluster.members.map((m) => [m.name, m.role]).sort()).toEqual([
      ['patroni-1', 'leader'],
      ['patroni-2', 'replica'],
      ['patroni-3', 'replica'],
    ]);
    const [leader, ...replicas] = h().members;
    const url = (m: { address: string; pgPort: number }) => `postgres://postgres@${m.address}:${String(m.pgPort)}/postgres`;
    expect((await query<{ r: boolean }>(url(leader!), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    const streaming = await query<{ application_name: string }>(
      url(leader!),
      "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
    );
    expect(streaming.map((r) => r.application_name)).toEqual(replicas.map((m) => m.name));
  });

  it("answers its REST API's writes only with the herd's credentials", async () => {
    const member = h().members[0]!;
    const post = (auth?: string) =>
      fetch(`${member.restUrl}/reload`, {
        method: 'POST',
        headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {},
      });
    expect((await post()).status).toBe(401);
    expect((await post('pgherd:wrong')).status).toBe(401);
    expect((await post(`${h().restUser}:${h().restPassword}`)).status).toBe(202);
  });

  it('switches over with patronictl: the candidate leads and the old leader streams from it', async () => {
    const config = h().members[0]!.configFile;
    await execFileP('patronictl', ['-c', config, 'switchover', '--leader', 'patroni-1', '--candidate', 'patroni-2', '--force'], {
      env: { ...process.env, PATRONICTL_CONFIG_FILE: config },
    });
    const cluster = await waitCluster(h(), 'patroni-2 leading, patroni-1 streaming again', (c) =>
      c.members.every((m) => (m.name === 'patroni-2' ? m.role === 'leader' : m.role !== 'leader' && m.state !== 'stopped' && m.lag === 0)),
    );
    expect(cluster.members.find((m) => m.role === 'leader')?.name).toBe('patroni-2');
    expect(cluster.members.find((m) => m.name === 'patroni-2')!.timeline).toBe(2);
  });
});
