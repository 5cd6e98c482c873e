// pgherd's Patroni REST client against the lab's Patroni herd: etcd and three Patroni members on their
// own loopback addresses, the first leading and the others streaming; the client reads the cluster,
// tells bad credentials and a dead endpoint apart without changing anything, pauses and resumes,
// restarts only what is pending, and switches over; `patronictl` agrees.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, startPatroniHerd, stopPatroniHerd, waitCluster, type PatroniHerd } from '@/lib/lab/patroni';
import { freePort, portFreeOnAll } from '@/lib/lab/ports';
import { query } from '@/lib/lab/postgres';
import { labIdentity, stopPid } from '@/lib/lab/proc';
import { observeFor, waitFor } from '@/lib/testing/wait';
import { makeCa } from '@/lib/lab/tls';
import { member as ref } from '@/lib/testing/refs';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { environments, herds, instances, servers } from '@/db/schema';
import { herdNow } from '@/lib/fleet/herds/topology';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import { getAction } from '@/lib/actions/registry';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { runAction } from '@/lib/testing/run-action';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { restartAction } from '@/lib/actions/control/restart.action';
import { rebuildAction } from '@/lib/actions/topology/rebuild.action';
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import { patroniPauseAction, patroniResumeAction } from '@/lib/actions/drivers/patroni/pause.action';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import type { AnyAction } from '@/lib/engine/define-action';
import { patroniNow } from '@/lib/fleet/patroni-view';
import {
  checkCredentials,
  getCluster,
  leaderOf,
  PatroniError,
  reload,
  restart,
  setPaused,
  switchover,
  type PatroniAccess,
} from '@/lib/adapters/patroni/client';

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
  const ca = await makeCa(id, path.join(dir, 'ca'));
  const pgPort = await portFreeOnAll(ADDRESSES, [5432, 5433, 5434]);
  const restPort = await portFreeOnAll(ADDRESSES, [8008, 8009, 8010]);
  herd = await startPatroniHerd(id, dir, {
    scope: 'lab-patroni',
    members: ADDRESSES.map((address, k) => ({ name: `patroni-${String(k + 1)}`, address, pgPort, restPort })),
    etcd: etcd.url,
    restUser: 'pgherd',
    restPassword: 'lab-rest-secret',
    ca,
  });
}, 240_000);

afterAll(async () => {
  if (inv) {
    process.env.PGHERD_PG_CONFIG = inv.savedConfig;
    await inv.t.close();
  }
  if (herd) await stopPatroniHerd(herd);
  if (etcd) await stopPid(etcd.pid, 'SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

let inv: { t: TestDb; herdId: number; ids: number[]; savedConfig: string | undefined } | null = null;

/** pgherd's inventory of the Patroni herd, in a database of this file's own (made once). */
async function inventory() {
  if (inv) return inv;
  const t = await freshDatabase();
  const savedConfig = process.env.PGHERD_PG_CONFIG;
  // The environment's REST credentials and CA, beside the lab's own (its Postgres: trust on loopback, no TLS).
  const config = JSON.parse(readFileSync(savedConfig!, 'utf8')) as { environments: Record<string, unknown> };
  config.environments['patroni-lab'] = {
    user: 'postgres',
    patroni: { user: h().restUser, password: h().restPassword, caFile: h().caFile },
  };
  const file = path.join(dir, 'pg-access.json');
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  process.env.PGHERD_PG_CONFIG = file;
  const [env] = await t.db.insert(environments).values({ name: 'patroni-lab' }).returning();
  const [herd] = await t.db
    .insert(herds)
    .values({ environmentId: env!.id, name: 'pat', controlDriver: 'patroni', patroniScope: 'lab-patroni' })
    .returning();
  const ids: number[] = [];
  for (const m of h().members) {
    const [s] = await t.db
      .insert(servers)
      .values({ hostname: m.name, environmentId: env!.id, address: m.address, sshHostKeyFingerprint: `SHA256:${m.name}` })
      .returning();
    const [i] = await t.db
      .insert(instances)
      .values({
        herdId: herd!.id,
        serverId: s!.id,
        port: m.pgPort,
        role: m.name === 'patroni-1' ? 'primary' : 'replica',
        state: 'running',
        patroniUrl: m.restUrl,
      })
      .returning();
    ids.push(i!.id);
  }
  inv = { t, herdId: herd!.id, ids, savedConfig };
  return inv;
}

const h = () => {
  if (!herd) throw new Error('the Patroni herd did not start');
  return herd;
};
/** The environment's REST access, for the member at `url` (credentials go to its own server only). */
const access = (url?: string): PatroniAccess => ({
  user: h().restUser,
  password: h().restPassword,
  caFile: h().caFile,
  ...(url ? { host: new URL(url).hostname } : {}),
});
const url = (m: { address: string; pgPort: number }) => `postgres://postgres@${m.address}:${String(m.pgPort)}/postgres`;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (err: unknown) => (err instanceof PatroniError ? { kind: err.kind, message: err.message } : { kind: 'other', message: String(err) }),
  );

describe("Patroni's REST API, through pgherd's client, on the lab's herd", () => {
  it('reads the cluster: its first member leading and the others streaming from it, as Postgres itself says', async () => {
    const cluster = await getCluster(h().members[1]!.restUrl, access(h().members[1]!.restUrl));
    expect(cluster.members.map((m) => [m.name, m.role, m.timeline])).toEqual([
      ['patroni-1', 'leader', 1],
      ['patroni-2', 'replica', 1],
      ['patroni-3', 'replica', 1],
    ]);
    expect(leaderOf(cluster)?.name).toBe('patroni-1');
    expect(cluster.pause).toBeUndefined();
    const [leader, ...replicas] = h().members;
    expect((await query<{ r: boolean }>(url(leader!), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    // Patroni lists a replica once it runs; it streams a moment later (catchup first): wait for that state.
    const want = replicas.map((m) => m.name).join(',');
    const streaming = await waitFor('both replicas streaming from the leader', async () => {
      const rows = await query<{ application_name: string }>(
        url(leader!),
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
      );
      const names = rows.map((r) => r.application_name).join(',');
      return names === want ? names : undefined;
    });
    expect(streaming).toBe(want);
  });

  it('tells bad credentials, a dead endpoint and a stranger apart, changing nothing', async () => {
    const member = h().members[0]!;
    expect(await failure(checkCredentials(member.restUrl, access(member.restUrl)))).toBeNull();
    expect(await failure(checkCredentials(member.restUrl, { ...access(member.restUrl), password: 'wrong' }))).toEqual({
      kind: 'credentials',
      message: `${member.restUrl}: Patroni refused the REST credentials (HTTP 401)`,
    });
    // Writes without credentials are refused by Patroni; the cluster's reads are open (as Patroni has them).
    expect(await failure(reload(member.restUrl, { caFile: h().caFile }))).toEqual({
      kind: 'credentials',
      message: expect.stringMatching(/refused the REST credentials \(HTTP 401\)/),
    });
    // Its certificate checked: a CA that did not sign it refuses the member before any password is sent.
    const otherCa = await makeCa(labIdentity(), path.join(dir, 'other-ca'), 'another CA');
    expect(await failure(checkCredentials(member.restUrl, { ...access(member.restUrl), caFile: otherCa.caFile }))).toEqual({
      kind: 'unreachable',
      message: expect.stringMatching(
        /^Patroni at https:\/\/\S+ did not answer \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT)\)$/,
      ),
    });
    // A password is never sent over plain http: refused before connecting (a listener records what reached it).
    const heard: string[] = [];
    const { createServer } = await import('node:http');
    const plain = createServer((req, res) => {
      heard.push(req.headers.authorization ?? '(none)');
      res.statusCode = 400;
      res.end();
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const plainUrl = `http://127.0.0.1:${String((plain.address() as { port: number }).port)}`;
    expect(await failure(checkCredentials(plainUrl, access(plainUrl)))).toEqual({
      kind: 'credentials',
      message: expect.stringMatching(/not https/),
    });
    plain.close();
    expect(heard).toEqual([]);
    const closed = `https://${member.address}:${String(await freePort(member.address))}`;
    expect(await failure(checkCredentials(closed, access(closed)))).toEqual({
      kind: 'unreachable',
      message: expect.stringMatching(/ECONNREFUSED/),
    });
    expect(await failure(getCluster('ftp://example.invalid', null))).toEqual({
      kind: 'unreachable',
      message: expect.stringMatching(/http or https/),
    });
    // Something else answering on the address: not taken for a cluster.
    const stranger = createServer((_req, res) => res.end('{"hello":"world"}'));
    await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', r));
    const port = (stranger.address() as { port: number }).port;
    expect(await failure(getCluster(`http://127.0.0.1:${String(port)}`, null))).toEqual({
      kind: 'answer',
      message: expect.stringMatching(/not Patroni's cluster view/),
    });
    stranger.close();
    expect(leaderOf(await getCluster(member.restUrl, access(member.restUrl)))?.name).toBe('patroni-1');
  });

  it('pauses and resumes the cluster; reloads; restarts only a member Patroni marks pending', async () => {
    const [leader, replica] = h().members;
    await setPaused(leader!.restUrl, access(leader!.restUrl), true);
    await waitCluster(h(), 'paused', (c) => c.pause === true, 20_000);
    await setPaused(leader!.restUrl, access(leader!.restUrl), false);
    await waitCluster(h(), 'resumed', (c) => c.pause === undefined, 20_000);
    expect(await reload(replica!.restUrl, access(replica!.restUrl))).toBe('reload scheduled');
    // Nothing pending: Patroni declines, and the postmaster is the same one.
    const started = async () => (await query<{ t: string }>(url(replica!), 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t;
    const before = await started();
    expect(await failure(restart(replica!.restUrl, access(replica!.restUrl), { pendingOnly: true }))).toEqual({
      kind: 'refused',
      message: expect.stringMatching(/^restart of .*: Patroni's restart conditions do not hold \(HTTP 503\)$/),
    });
    expect(await started()).toBe(before);
    await restart(replica!.restUrl, access(replica!.restUrl), { pendingOnly: false });
    expect(await started()).not.toBe(before);
    await waitCluster(h(), 'the restarted replica streaming again', (c) => c.members.find((m) => m.name === replica!.name)?.lag === 0);
  });

  it("matches Patroni's members to pgherd's instances, asking the next member when one does not answer", async () => {
    const [one, two, three] = h().members;
    const asRef = (m: typeof one, id: number, patroniUrl: string) =>
      ref(id, id === 1 ? 'primary' : 'replica', {
        address: m!.address,
        host: m!.address,
        port: m!.pgPort,
        label: `${m!.name}:${String(m!.pgPort)}`,
        patroniUrl,
      });
    const closed = `https://${one!.address}:${String(await freePort(one!.address))}`;
    // pgherd knows the first two (the first with a dead REST address) and a fourth Patroni does not list.
    const refs = [
      asRef(one, 1, closed),
      asRef(two, 2, two!.restUrl),
      ref(4, 'replica', { address: '127.0.5.9', host: '127.0.5.9', patroniUrl: '' }),
    ];
    const now = await patroniNow(refs, access());
    expect(now.askedOf).toBe(two!.restUrl);
    expect(now.problems).toEqual([expect.stringMatching(/^patroni-1:\d+: .*ECONNREFUSED/)]);
    expect(now.leader).toBe('patroni-1');
    expect(now.paused).toBe(false);
    expect(now.members.map((m) => [m.name, m.role, m.instanceId, m.lag === null ? 'leader' : typeof m.lag])).toEqual([
      ['patroni-1', 'leader', 1, 'leader'],
      ['patroni-2', 'replica', 2, 'number'],
      ['patroni-3', 'replica', null, 'number'],
    ]);
    expect(now.members[2]!.label).toBe(`${three!.address}:${String(three!.pgPort)}`);
    expect(now.unknownToPatroni).toEqual([{ instanceId: 4, label: 'db-4.example.com:5432' }]);
    // Nobody answering: Patroni's view is empty, each member's reason kept.
    const none = await patroniNow([asRef(one, 1, closed), ref(4, 'replica', { patroniUrl: '' })], access());
    expect([none.askedOf, none.leader, none.members, none.problems.length]).toEqual([null, null, [], 1]);
  });

  it("shows on the herd's page as Patroni has it, next to pgherd's own view of each member; pg_ctl is refused", async () => {
    const { t, herdId, ids } = await inventory();
    const now = await herdNow(t.db, herdId);
    expect(now!.patroni).toMatchObject({
      askedOf: h().members[0]!.restUrl,
      leader: 'patroni-1',
      paused: false,
      unknownToPatroni: [],
      problems: [],
    });
    expect(now!.patroni!.members.map((m) => [m.name, m.role, m.instanceId])).toEqual([
      ['patroni-1', 'leader', ids[0]],
      ['patroni-2', 'replica', ids[1]],
      ['patroni-3', 'replica', ids[2]],
    ]);
    // pgherd's own view of the same members, observed on Postgres.
    expect(now!.members.map((m) => [m.ref.id, m.role])).toEqual([
      [ids[0], 'primary'],
      [ids[1], 'replica'],
      [ids[2], 'replica'],
    ]);
    // pg_ctl behind Patroni's back: refused target by target, saying why; a herd action that stops members too.
    const patroniOwns = /^Patroni runs this herd: pgherd does not run pg_ctl behind Patroni's back/;
    for (const name of ['stop', 'start', 'promote']) {
      const plan = await planOperation(t.db, SYSTEM_ACCESS, getAction(name)!, ids, {}, null);
      expect(
        plan.targets.map((x) => x.refused),
        name,
      ).toEqual(ids.map(() => expect.stringMatching(patroniOwns)));
    }
    // A herd action that would stop members with pg_ctl (a resize) is refused; a switchover asks Patroni.
    const resizePlan = await planOperation(t.db, SYSTEM_ACCESS, getAction('resize-herd')!, [herdId], { instanceType: 'm6i.large' }, null);
    expect(resizePlan.targets[0]!.refused).toMatch(patroniOwns);
    const switchoverPlan = await planOperation(t.db, SYSTEM_ACCESS, getAction('switchover')!, [herdId], {}, null);
    expect(switchoverPlan.targets[0]!.refused).toBeUndefined();
    expect(switchoverPlan.targets[0]!.steps.join('\n')).toMatch(/POST \/switchover to Patroni/);
    // Restart and reload plan what Patroni will be asked, after a pre-flight that changes nothing.
    const restartPlan = await planOperation(t.db, SYSTEM_ACCESS, getAction('restart')!, [ids[1]!], { pendingOnly: true }, null);
    expect(restartPlan.targets[0]!.steps).toEqual([
      `check that ${h().members[1]!.restUrl} is ${h().members[1]!.name}:${String(h().members[1]!.pgPort)}'s Patroni and takes pgherd's credentials (changes nothing)`,
      'read the postmaster start time (it must be running: use start otherwise)',
      'ask Patroni to restart it (POST /restart, only if Patroni marks a restart pending)',
      'wait until the postmaster start time has moved',
      'record what it is now in the inventory',
    ]);
  });

  it('reloads and restarts through Patroni: only a member Patroni marks pending when asked so; bad credentials change nothing', async () => {
    const { t, ids } = await inventory();
    const [, two, three] = h().members;
    const loaded = async (m: typeof two) => (await query<{ t: string }>(url(m!), 'SELECT pg_conf_load_time()::text AS t'))[0]!.t;
    const started = async (m: typeof two) => (await query<{ t: string }>(url(m!), 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t;
    const ssh = new SshPool({ privateKey: readFileSync(t.lab.ssh!.privateKeyPath) });
    try {
      // Reload: Patroni asked, and Postgres's configuration load time moved.
      const before = await loaded(two);
      const reloaded = await runAction(t.db, ssh, reloadAction, ids[1]!);
      expect(reloaded.res.error).toBeUndefined();
      expect(reloaded.steps.find((x) => x.name === 'reload')!.stdoutTail).toBe('Patroni answered: reload scheduled');
      expect(await loaded(two)).not.toBe(before);
      // Only if pending, nothing pending: left alone, the postmaster the same one.
      const first = await started(three);
      const idle = await runAction(t.db, ssh, restartAction, ids[2]!, { pendingOnly: true });
      expect(idle.res.error).toBeUndefined();
      expect(idle.steps.find((x) => x.name === 'restart')!.stdoutTail).toBe(
        'Patroni answered: Patroni marks no restart pending: left alone',
      );
      expect(await started(three)).toBe(first);
      // A setting that needs a restart, on patroni-3 alone: Patroni marks it pending, and the restart happens.
      await query(url(three!), "ALTER SYSTEM SET shared_buffers = '17MB'");
      await reload(three!.restUrl, access(three!.restUrl));
      await waitCluster(h(), 'patroni-3 pending a restart', (c) => c.members.find((m) => m.name === 'patroni-3')?.pending_restart === true);
      const pending = await runAction(t.db, ssh, restartAction, ids[2]!, { pendingOnly: true });
      expect(pending.res.error).toBeUndefined();
      expect(await started(three)).not.toBe(first);
      expect((await query<{ v: string }>(url(three!), "SELECT current_setting('shared_buffers') AS v"))[0]!.v).toBe('17MB');
      await waitCluster(h(), 'patroni-3 streaming again', (c) => c.members.find((m) => m.name === 'patroni-3')?.lag === 0);
      // Bad credentials: the pre-flight fails with the reason, and nothing is changed.
      const saved = process.env.PGHERD_PG_CONFIG!;
      const config = JSON.parse(readFileSync(saved, 'utf8')) as { environments: Record<string, { patroni: { password: string } }> };
      config.environments['patroni-lab']!.patroni.password = 'wrong';
      const wrong = path.join(dir, 'pg-access-wrong.json');
      writeFileSync(wrong, JSON.stringify(config), { mode: 0o600 });
      process.env.PGHERD_PG_CONFIG = wrong;
      try {
        const again = await started(three);
        const refused = await runAction(t.db, ssh, restartAction, ids[2]!);
        expect(refused.res.error?.message).toMatch(/pre-flight: .*Patroni refused the REST credentials \(HTTP 401\); nothing was changed/);
        expect(refused.steps.map((x) => x.name)).toEqual(["check Patroni's REST API"]);
        expect(await started(three)).toBe(again);
      } finally {
        process.env.PGHERD_PG_CONFIG = saved;
      }
    } finally {
      await ssh.close();
    }
  });

  it('rebuilds a replica through Patroni: its data directory cloned again from the leader, and it streams; the leader is refused', async () => {
    const { t, ids } = await inventory();
    const [one, , three] = h().members;
    const leaderPlan = await planOperation(t.db, SYSTEM_ACCESS, rebuildAction, [ids[0]!], {}, null);
    expect(leaderPlan.targets[0]!.refused).toMatch(/Patroni reinitializes replicas only/);
    // A file of its own in its data directory: a copy made afresh from the leader does not have it.
    const marker = path.join(three!.dataDirectory, 'pgherd-test-marker');
    writeFileSync(marker, 'not on the leader\n');
    const ssh = new SshPool({ privateKey: readFileSync(t.lab.ssh!.privateKeyPath) });
    try {
      const { res, steps } = await runAction(t.db, ssh, rebuildAction, ids[2]!);
      expect(res.error).toBeUndefined();
      expect(steps.map((x) => x.name)).toEqual([
        "check Patroni's REST API",
        'check that Patroni lists it as a replica',
        'reinitialize',
        'wait until it streams again',
        'record the observed state in the inventory',
      ]);
      expect(steps.find((x) => x.name === 'reinitialize')!.stdoutTail).toBe('Patroni answered: reinitialize started');
    } finally {
      await ssh.close();
    }
    expect(existsSync(marker)).toBe(false);
    expect((await query<{ r: boolean }>(url(three!), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    const streaming = await query<{ n: string }>(
      url(one!),
      "SELECT application_name AS n FROM pg_stat_replication WHERE state = 'streaming'",
    );
    expect(streaming.map((r) => r.n)).toContain('patroni-3');
  });

  it('switches over: the candidate leads, Postgres agrees, and patronictl lists it so', async () => {
    expect(
      await failure(switchover(h().members[0]!.restUrl, access(h().members[0]!.restUrl), { leader: 'patroni-3', candidate: 'patroni-2' })),
    ).toEqual({
      kind: 'refused',
      message: `switchover patroni-3 -> patroni-2: Patroni at ${h().members[0]!.restUrl} refused: a condition Patroni checks does not hold (the leader or candidate named, or the member state) (HTTP 412)`,
    });
    expect(
      await switchover(h().members[0]!.restUrl, access(h().members[0]!.restUrl), { leader: 'patroni-1', candidate: 'patroni-2' }),
    ).toBe('Successfully switched over to "patroni-2"');
    const cluster = await waitCluster(h(), 'patroni-2 leading, patroni-1 streaming again', (c) =>
      c.members.every((m) => (m.name === 'patroni-2' ? m.role === 'leader' : m.role !== 'leader' && m.state !== 'stopped' && m.lag === 0)),
    );
    expect(cluster.members.find((m) => m.role === 'leader')?.name).toBe('patroni-2');
    expect(cluster.members.find((m) => m.name === 'patroni-2')!.timeline).toBe(2);
    expect((await query<{ r: boolean }>(url(h().members[1]!), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    const { stdout } = await execFileP('patronictl', ['-c', h().members[0]!.configFile, 'list', '--format', 'json']);
    expect((JSON.parse(stdout) as { Member: string; Role: string }[]).find((m) => m.Role === 'Leader')?.Member).toBe('patroni-2');
  });
  it('paused through pgherd, the herd does not fail over when its leader dies; resumed, Patroni fails over by itself', async () => {
    const { t, herdId } = await inventory();
    const prefix = `t-patroni-${randomBytes(3).toString('hex')}`;
    const queue = targetQueue(producerConnection(t.lab.redis!.url), prefix);
    const worker = await startWorker({
      databaseUrl: t.url,
      redisUrl: t.lab.redis!.url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      concurrency: 2,
      refreshEveryMs: 0,
      queuePrefix: prefix,
      quiet: true,
    });
    const run = async (action: AnyAction) => {
      const plan = await planOperation(t.db, SYSTEM_ACCESS, action, [herdId]);
      const { id } = await submitOperation(
        t.db,
        queue,
        action,
        { herdIds: [herdId], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: randomBytes(8).toString('hex') },
        { id: null, username: 'patroni-test', access: SYSTEM_ACCESS },
      );
      for (;;) {
        const [op] = await t.db.select().from(operations).where(eq(operations.id, id));
        if (op!.finishedAt) {
          const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
          const steps = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, target!.id)).orderBy(operationSteps.seq);
          return { op: op!, target: target!, steps };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      const paused = await run(patroniPauseAction);
      expect(paused.op.status, paused.target.error ?? '').toBe('succeeded');
      expect(paused.steps.map((x) => x.name)).toEqual(["check Patroni's REST API", 'pause', 'wait until paused']);
      const leaderName = (await waitCluster(h(), 'paused', (c) => c.pause === true)).members.find((m) => m.role === 'leader')!.name;
      const leader = h().members.find((m) => m.name === leaderName)!;
      const others = h().members.filter((m) => m !== leader);
      // The leader's host dies: its Patroni and its Postgres killed.
      const postmaster = Number(readFileSync(path.join(leader.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(leader.pid, 'SIGKILL');
      process.kill(postmaster, 'SIGKILL');
      // Its leader key runs out (ttl 10 s after its last renewal): /cluster names it leader no more.
      await waitFor(
        "the dead leader's key to expire",
        async () => !(await getCluster(others[0]!.restUrl, access())).members.some((m) => m.role === 'leader' && m.name === leaderName),
        30_000,
      );
      // Unpaused, a member would take the key at its next loop (loop_wait 2 s) and promote. Patroni says
      // nothing while it does nothing, so three loops are watched: no member leads, every Postgres still
      // in recovery (a takeover fails the test when it is seen).
      await observeFor(6_000, "nobody takes over while paused, for three of Patroni's 2 s loops after the key expired", async () => {
        if ((await getCluster(others[0]!.restUrl, access())).members.some((m) => m.role === 'leader')) return false;
        for (const m of others) if (!(await query<{ r: boolean }>(url(m), 'SELECT pg_is_in_recovery() AS r'))[0]!.r) return false;
        return true;
      });
      const during = await getCluster(others[0]!.restUrl, access());
      expect([during.pause, during.members.filter((m) => m.role === 'leader' && m.name !== leaderName)]).toEqual([true, []]);
      // Resumed (asked of a member that answers): Patroni fails over to another member by itself.
      const resumed = await run(patroniResumeAction);
      expect(resumed.op.status, resumed.target.error ?? '').toBe('succeeded');
      const after = await waitCluster(
        h(),
        'a new leader',
        (c) => c.members.some((m) => m.role === 'leader' && m.name !== leaderName),
        60_000,
        others[0],
      );
      const newLeader = h().members.find((m) => m.name === after.members.find((x) => x.role === 'leader')!.name)!;
      // Patroni names the leader once it holds the leader key, before its promotion has ended: the new
      // leader accepts writes a moment later. Wait for that state, not for the name.
      const inRecovery = await waitFor(
        `${newLeader.name} to leave recovery`,
        async () => {
          const [r] = await query<{ r: boolean }>(url(newLeader), 'SELECT pg_is_in_recovery() AS r');
          return r?.r === false ? r : undefined;
        },
        30_000,
      );
      expect(inRecovery.r).toBe(false);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  }, 120_000);
});
