// Patroni's REST address is the member's own, on a lab of its own (etcd, three Patroni members on
// 127.0.41.x with REST on https from the lab's CA, BIND with the herd's write name, a worker). What it
// tries, as someone who may write an address or answer on a port would: an address pointed at a
// listener of the test's own on another port of a member's address (a certificate from the lab's CA for
// it, answering as that member's Patroni would), at another host, over http, behind a certificate of
// another CA; an agent report that would switch the herd to Patroni; one member's word that would move
// the write name. Each is refused, and the listener is asked for nothing that carries pgherd's
// credentials.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { and, eq, gte } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { auditEntries, herds, instances, operations, operationTargets, servers } from '@/db/schema';
import { getEditable } from '@/lib/features/admin/registry';
import { saveObject } from '@/lib/features/admin/mutations';
import { buildReport } from '@/lib/agent/cli';
import { agentConfigSchema } from '@/lib/agent/discover';
import { ingestReports } from '@/lib/features/agents/ingest';
import { acceptPatroniProposal, patroniProposals } from '@/lib/features/agents/patroni-proposal';
import { SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import { lookup, replaceRecordSet } from '@/lib/adapters/dns/rfc2136';
import { PROJECT_ROOT, startLab, stopLab, type LabInfo } from '@/lib/lab/lab';
import { labLeader, patroniGet, waitSettled } from '@/lib/lab/patroni';
import { labIdentity } from '@/lib/lab/proc';
import { waitFor } from '@/lib/testing/wait';
import { seededDatabase } from '@/lib/lab/seed';
import { issueCertificate, makeCa } from '@/lib/lab/tls';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { planOperation } from '@/lib/engine/plan';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { runOperation, startTestWorker, submitPlanned, type TestWorker } from '@/lib/testing/operations';
import { readFileSync } from 'node:fs';
import { PatroniError, reload } from '@/lib/adapters/patroni/client';
import { followPatroni } from '@/lib/features/patroni/follow';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-patroni-trust-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
let herdId = 0;

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['ha'], herds: ['plain'], replicas: 0, sites: ['dc-east', 'dc-west'], subnet: '127.0.42' },
    patroni: [{ environment: 'ha', herd: 'vault', subnet: '127.0.41' }],
  });
  const c = await seededDatabase(lab, 6);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'vault')))[0]!.id;
  worker = await startTestWorker(lab, 'trust', 2);
}, 240_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
}, 120_000);

const pat = () => lab.patroni![0]!;
const members = () => lab.instances.filter((i) => i.herd === 'vault');
const restUrlOf = (server: string) => pat().members.find((m) => m.server === server)!.restUrl;
const def = (m: string) => getEditable(m)!;
const writeName = () => lab.dns!.herds.find((h) => h.herd === 'vault')!.writeName;
const dnsServer = () => ({ host: lab.dns!.server, port: lab.dns!.port });
const answer = async () => lookup(dnsServer(), writeName(), 'CNAME');
const idOf = async (server: string) =>
  (
    await db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .where(eq(servers.hostname, server))
  )[0]!.id;
const urlOf = async (id: number) => (await db.select({ u: instances.patroniUrl }).from(instances).where(eq(instances.id, id)))[0]!.u;
const setUrl = (id: number, patroniUrl: string) => db.update(instances).set({ patroniUrl }).where(eq(instances.id, id));
const settled = async () => {
  await waitSettled(pat());
  return (await labLeader(pat()))!;
};
const access = (role: 'admin' | 'operator'): Access => ({
  userId: null,
  username: `${role}-tester`,
  superuser: false,
  global: role,
  byEnvironment: new Map(),
});

interface Heard {
  method: string;
  path: string;
  authorization: string | null;
}

/**
 * A listener of the test's own at `address` (https with `tls`, else http), answering as the member
 * whose real REST address is `real` would, its own origin put in place of that member's api_url, so
 * that every check asked of the address alone passes. What it heard is kept.
 */
async function impostor(address: string, real: string, tls: { certFile: string; keyFile: string } | null) {
  const heard: Heard[] = [];
  let origin = '';
  const handler: http.RequestListener = (req, res) => {
    heard.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization ?? null });
    void (async () => {
      if (req.method === 'GET' && (req.url === '/patroni' || req.url === '/cluster')) {
        const text = JSON.stringify(await patroniGet<unknown>(pat(), `${real}${req.url}`, req.url))
          .split(real)
          .join(origin);
        res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      } else res.writeHead(400).end('internal secret: 10.1.2.3 db-admin.internal');
    })();
  };
  const server = tls
    ? https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  origin = `${tls ? 'https' : 'http'}://${address}:${String((server.address() as AddressInfo).port)}`;
  return { url: origin, heard, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A certificate for `address` from the lab's own CA (as the member's own REST certificate is). */
const labCertFor = (address: string) =>
  issueCertificate(labIdentity(), lab.tls!, path.join(lab.dir, 'impostor'), `impostor-${randomBytes(3).toString('hex')}`, {
    ips: [address],
    names: [],
  });

describe("Patroni's REST address is the member's own", () => {
  it('refuses at the save an address on another host, over http, or on a port its peers say is not its Patroni; and only an admin sets it', async () => {
    const leader = await settled();
    const replica = members().find((m) => m.server !== leader)!;
    const other = members().find((m) => m.server !== leader && m.server !== replica.server)!;
    const id = await idOf(replica.server);
    const [row] = await db.select().from(instances).where(eq(instances.id, id));
    const listener = await impostor(replica.address, restUrlOf(replica.server), await labCertFor(replica.address));
    const save = (patroniUrl: string, role: 'admin' | 'operator' = 'admin') =>
      saveObject(
        db,
        def('instances'),
        id,
        {
          herdId: row!.herdId,
          serverId: row!.serverId,
          port: row!.port,
          dataDirectory: row!.dataDirectory,
          pgVersion: row!.pgVersion,
          role: row!.role,
          state: row!.state,
          patroniUrl,
          upstreamInstanceId: row!.upstreamInstanceId ?? '',
        },
        { id: null, username: `${role}-tester`, remoteAddr: '10.9.0.1', access: access(role) },
      );
    try {
      const port = new URL(restUrlOf(replica.server)).port;
      const refused = async (patroniUrl: string) => {
        const r = await save(patroniUrl);
        return r.ok ? 'saved' : r.fieldErrors.patroniUrl;
      };
      // Another member's host, a first label of the server's name, http: refused by the field alone.
      expect(await refused(`https://${other.address}:${port}`)).toMatch(/not this instance's server/);
      expect(await refused(`https://${replica.server.split('.')[0]!}:${port}`)).toMatch(/not this instance's server/);
      expect(await refused(`http://${replica.address}:${port}`)).toMatch(/^Enter an address such as https:/);
      // The listener on another port of the replica's own address: its peers' Patroni list it elsewhere.
      expect(await refused(listener.url)).toMatch(/Patroni lists .*REST API elsewhere than/);
      expect(await urlOf(id)).toBe(restUrlOf(replica.server));
      // The address is where the credentials go: an operator may not change it, an admin may.
      await expect(save(restUrlOf(replica.server).replace(/:\d+$/, ':8443'), 'operator')).rejects.toThrow(
        /Changing patroniUrl of this instance needs the admin role/,
      );
      expect(listener.heard.filter((h) => h.authorization !== null)).toEqual([]);
    } finally {
      await listener.close();
      await setUrl(id, restUrlOf(replica.server));
    }
  }, 120_000);

  it('refuses Reload at its pre-flight when the address, written behind the form, is a listener on another port: no credentials reach it', async () => {
    const leader = await settled();
    const replica = members().find((m) => m.server !== leader)!;
    const id = await idOf(replica.server);
    const listener = await impostor(replica.address, restUrlOf(replica.server), await labCertFor(replica.address));
    try {
      await setUrl(id, listener.url);
      const r = await runOperation(db, worker!.queue, reloadAction, { instanceIds: [id] }, {}, { username: 'trust-test' });
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toMatch(/Patroni lists .*REST API elsewhere than .*nothing was changed/);
      // It was asked what a member is asked before anything else (so the listener was reached), and nothing more.
      expect(listener.heard.map((h) => `${h.method} ${h.path}`)).toContain('GET /patroni');
      expect(listener.heard.filter((h) => h.authorization !== null || h.method !== 'GET')).toEqual([]);
    } finally {
      await setUrl(id, restUrlOf(replica.server));
      await listener.close();
    }
  }, 120_000);

  it('sends the credentials to no other host, over no http, and to no certificate of another CA; failures in pgherd words', async () => {
    const leader = await settled();
    const replica = members().find((m) => m.server !== leader)!;
    const other = members().find((m) => m.server !== replica.server)!;
    const id = await idOf(replica.server);
    const creds = { user: pat().restUser, password: pat().restPassword, caFile: pat().caFile };
    const onOther = await impostor(other.address, restUrlOf(other.server), await labCertFor(other.address));
    const plain = await impostor(replica.address, restUrlOf(replica.server), null);
    const foreignCa = await makeCa(labIdentity(), path.join(lab.dir, 'foreign-ca'));
    const foreign = await impostor(
      replica.address,
      restUrlOf(replica.server),
      await issueCertificate(labIdentity(), foreignCa, path.join(lab.dir, 'foreign-ca'), 'foreign', { ips: [replica.address], names: [] }),
    );
    try {
      // The client itself: the host must be the member's, the scheme https, the CA the environment's.
      const refusedBy = async (url: string, a: Parameters<typeof reload>[1]) => {
        const err = await reload(url, a).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(PatroniError);
        return err as PatroniError;
      };
      expect((await refusedBy(onOther.url, { ...creds, host: replica.address })).code).toBe('NOT_MEMBER');
      expect((await refusedBy(plain.url, { ...creds, host: replica.address })).code).toBe('NOT_MEMBER');
      expect((await refusedBy(foreign.url, { ...creds, host: replica.address, caFile: null })).code).toBe('NO_CA');
      const untrusted = await refusedBy(foreign.url, { ...creds, host: replica.address });
      expect(untrusted.kind).toBe('unreachable');
      expect(untrusted.message).toMatch(/^Patroni at https:\/\/127\.0\.41\.\d+:\d+ did not answer \([A-Z_]+\)$/);
      // Written behind the form: another host, and http, refused before anything is asked of them.
      for (const url of [onOther.url, plain.url]) {
        await setUrl(id, url);
        const r = await runOperation(db, worker!.queue, reloadAction, { instanceIds: [id] }, {}, { username: 'trust-test' });
        expect(r.op.status).toBe('failed');
        expect(r.targets[0]!.error).toMatch(/Patroni REST address is refused: .*(not this instance's server|not https)/);
      }
      // What an address answers is never shown: a refusal is said in pgherd's words with its code.
      const answered = await refusedBy(plain.url, {});
      expect(answered.message).toBe(`reload of ${plain.url}: Patroni at ${plain.url} refused: the request is not one it takes (HTTP 400)`);
      expect([...onOther.heard, ...plain.heard, ...foreign.heard].filter((h) => h.authorization !== null)).toEqual([]);
      expect(foreign.heard.filter((h) => h.method !== 'GET')).toEqual([]);
    } finally {
      await setUrl(id, restUrlOf(replica.server));
      await Promise.all([onOther.close(), plain.close(), foreign.close()]);
    }
  }, 180_000);

  it("leaves the herd's driver and the address as they were when an agent reports Patroni, until an admin accepts it; a plan made before is stale", async () => {
    const m = members()[1]!;
    const id = await idOf(m.server);
    const cfg = agentConfigSchema.parse({
      server: 'http://127.0.0.1:1',
      tokenFile: '/nonexistent',
      hostname: m.server,
      lsclusters: false,
      socketDirectories: [m.socketDirectory],
    });
    const report = await buildReport(cfg);
    expect(report.instances.map((i) => i.patroni)).toEqual([{ scope: pat().scope, restUrl: restUrlOf(m.server) }]);
    const [saved] = await db.select({ driver: herds.controlDriver, scope: herds.patroniScope }).from(herds).where(eq(herds.id, herdId));
    await setUrl(id, '');
    await db.update(herds).set({ controlDriver: 'pg_ctl', patroniScope: '' }).where(eq(herds.id, herdId));
    try {
      const [srv] = await db.select({ id: servers.id, hostname: servers.hostname }).from(servers).where(eq(servers.hostname, m.server));
      await ingestReports(db, [{ server: srv!, report }]);
      const herdRow = async () =>
        (await db.select({ driver: herds.controlDriver, scope: herds.patroniScope }).from(herds).where(eq(herds.id, herdId)))[0];
      expect(await herdRow()).toEqual({ driver: 'pg_ctl', scope: '' });
      expect(await urlOf(id)).toBe('');
      const proposals = await patroniProposals(db, herdId);
      expect(proposals).toEqual([
        {
          instanceId: id,
          label: expect.stringContaining(m.server),
          hostname: m.server,
          url: restUrlOf(m.server),
          scope: pat().scope,
          problem: null,
        },
      ]);
      const proposed = await db
        .select({ user: auditEntries.username, changes: auditEntries.changes })
        .from(auditEntries)
        .where(eq(auditEntries.action, 'agent.patroni_proposal'));
      expect(proposed).toEqual([
        {
          user: `agent:${m.server}`,
          changes: { patroniProposedUrl: [null, restUrlOf(m.server)], patroniProposedScope: [null, pat().scope] },
        },
      ]);
      // The plan an admin confirms names the driver and the address as they are.
      const before = await planOperation(db, SYSTEM_ACCESS, reloadAction, [id]);
      // An operator cannot accept it; an admin can, audited as theirs.
      const actor = (role: 'admin' | 'operator') => ({
        id: null,
        username: `${role}-tester`,
        remoteAddr: '10.9.0.1',
        access: access(role),
      });
      await expect(acceptPatroniProposal(db, actor('operator'), id, restUrlOf(m.server))).rejects.toThrow(/needs the admin role/);
      expect(await herdRow()).toEqual({ driver: 'pg_ctl', scope: '' });
      await acceptPatroniProposal(db, actor('admin'), id, restUrlOf(m.server));
      expect(await herdRow()).toEqual({ driver: 'patroni', scope: pat().scope });
      expect(await urlOf(id)).toBe(restUrlOf(m.server));
      expect(await patroniProposals(db, herdId)).toEqual([]);
      const accepted = await db
        .select({ type: auditEntries.objectType, user: auditEntries.username })
        .from(auditEntries)
        .where(eq(auditEntries.action, 'patroni.accept'));
      expect(accepted).toEqual([
        { type: 'instances', user: 'admin-tester' },
        { type: 'herds', user: 'admin-tester' },
      ]);
      // The plan made before the accept is not the plan that would run now.
      const opId = await submitPlanned(db, worker!.queue, reloadAction, { instanceIds: [id] }, {}, before).catch((e: unknown) => e);
      expect(String(opId)).toMatch(/changed since|plan it again/);
      // The same report again proposes nothing new.
      await ingestReports(db, [{ server: srv!, report }]);
      expect(await patroniProposals(db, herdId)).toEqual([]);
    } finally {
      await setUrl(id, restUrlOf(m.server));
      await db.update(herds).set({ controlDriver: saved!.driver, patroniScope: saved!.scope }).where(eq(herds.id, herdId));
    }
  }, 120_000);

  it("moves no write name on one member's word, nor to a Postgres of another system: it says why; confirmed, it moves", async () => {
    const leader = await settled();
    const replica = members().find((m) => m.server !== leader)!;
    const ids = await Promise.all(members().map(async (m) => ({ m, id: await idOf(m.server) })));
    const [{ sysid }] = (await db.select({ sysid: herds.systemIdentifier }).from(herds).where(eq(herds.id, herdId))) as [
      { sysid: string | null },
    ];
    expect(sysid).toMatch(/^\d+$/);
    const since = new Date();
    let restored = since;
    try {
      // Only the leader's Patroni can be read, the herd's system is another; the write name points at a replica.
      for (const { m, id } of ids) if (m.server !== leader) await setUrl(id, restUrlOf(m.server).replace(/:\d+$/, ':1'));
      await db.update(herds).set({ systemIdentifier: '1' }).where(eq(herds.id, herdId));
      await replaceRecordSet(dnsServer(), lab.dns!.zone, lab.dns!.key, {
        name: writeName(),
        type: 'CNAME',
        ttl: 30,
        values: [replica.server],
      });
      const [other] = await followPatroni(db, null, { herdIds: [herdId] });
      expect(other!.outcome).toMatch(/^names not moved: .* leads per Patroni but its Postgres is of another system .*not the herd's \(1\)/);
      expect(other!.operationId).toBeUndefined();
      await db.update(herds).set({ systemIdentifier: sysid }).where(eq(herds.id, herdId));
      const why = new RegExp(`^names not moved: only .*${leader.replace(/\./g, '\\.')}.*a name moves on the word of two members or more`);
      const [r] = await followPatroni(db, null, { herdIds: [herdId] });
      expect(r!.outcome).toMatch(why);
      expect(r!.operationId).toBeUndefined();
      // Said on the herd, where its changelist and page show it.
      const [problem] = await db.select({ p: herds.patroniProblem }).from(herds).where(eq(herds.id, herdId));
      expect(problem!.p).toMatch(why);
      expect((await answer())[0]).toBe(replica.server);
    } finally {
      await db.update(herds).set({ systemIdentifier: sysid }).where(eq(herds.id, herdId));
      restored = new Date();
      for (const { m, id } of ids) await setUrl(id, restUrlOf(m.server));
    }
    // With the other members read again, the worker's follower moves it: the one operation since, started after.
    await waitFor('the write name answers the leader', async () => ((await answer())[0] === leader ? true : undefined), 60_000);
    const started = await db
      .select({ id: operations.id, at: operations.createdAt })
      .from(operations)
      .innerJoin(operationTargets, eq(operationTargets.operationId, operations.id))
      .where(and(eq(operationTargets.herdId, herdId), gte(operations.createdAt, since)));
    expect(started).toHaveLength(1);
    expect(started[0]!.at.getTime()).toBeGreaterThanOrEqual(restored.getTime());
  }, 180_000);
});
