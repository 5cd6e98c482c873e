// One physical host, one environment: a staging admin who aims a staging row at production's host
// (its address, then its host key through Check SSH) is refused at the save and again at the
// connection, and production's hosts refuse staging's SSH key whatever the rows say.
import { readFileSync } from 'node:fs';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, environments, servers } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { labSshFor } from '@/lib/lab/sshd';
import { saveObject } from '@/lib/features/admin/mutations';
import type { Actor } from '@/lib/engine/access';
import { getEditable } from '@/lib/features/admin/registry';
import { accessFrom, AccessDenied } from '@/lib/engine/access';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fleetSsh } from '@/lib/fleet/fleet-ssh';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { HostBindingError } from '@/lib/fleet/host-binding';

let t: TestDb;
let stagingId: number;
let productionId: number;
let prodServer: typeof servers.$inferSelect;
let stagingAdmin: Actor;
let stagingOperator: Actor;
const def = () => getEditable('servers')!;
const pools: SshPool[] = [];

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const envs = await t.db.select().from(environments);
  stagingId = envs.find((e) => e.name === 'staging')!.id;
  productionId = envs.find((e) => e.name === 'production')!.id;
  prodServer = (await t.db.select().from(servers).where(eq(servers.environmentId, productionId)).orderBy(servers.id).limit(1))[0]!;
  const as = (username: string, role: 'admin' | 'operator'): Actor => ({
    id: null,
    username,
    access: accessFrom({ id: null, username, superuser: false }, [{ role, environmentId: stagingId }]),
  });
  stagingAdmin = as('stage-admin', 'admin');
  stagingOperator = as('stage-operator', 'operator');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await ifAssigned(t)?.close();
});

const form = (hostname: string, address: string) => ({
  hostname,
  environmentId: stagingId,
  address,
  site: 'dc-east',
  sshPort: t.lab.ssh!.port,
  sshUser: t.lab.osUser,
});

describe('an address belongs to one environment', () => {
  it("refuses a staging server at production's address, for a staging admin; nothing is written", async () => {
    const r = await saveObject(t.db, def(), null, form('sneaky.staging.lab.internal', prodServer.address), stagingAdmin);
    expect(r).toEqual({
      ok: false,
      fieldErrors: {
        address: `${prodServer.address} is the address of ${prodServer.hostname} (production): a host belongs to one environment.`,
      },
    });
    expect(await t.db.$count(servers, eq(servers.hostname, 'sneaky.staging.lab.internal'))).toBe(0);
  });

  it('refuses a host name that is a production server\u2019s (no address: the name is where pgherd connects)', async () => {
    const r = await saveObject(
      t.db,
      def(),
      null,
      { ...form(prodServer.hostname.toUpperCase(), ''), hostname: `${prodServer.hostname}.` },
      stagingAdmin,
    );
    expect(r.ok).toBe(false);
  });

  it("refuses a staging server named as production's address (its own address elsewhere), and production's address in IPv6's mapped form", async () => {
    const named = await saveObject(t.db, def(), null, { ...form(prodServer.address, '192.0.2.77') }, stagingAdmin);
    expect(named).toMatchObject({ ok: false, fieldErrors: { hostname: expect.stringContaining('a host belongs to one environment') } });
    const mapped = await saveObject(t.db, def(), null, form('mapped.staging.lab.internal', `::ffff:${prodServer.address}`), stagingAdmin);
    expect(mapped).toMatchObject({
      ok: false,
      fieldErrors: { address: expect.stringContaining(`is the address of ${prodServer.hostname}`) },
    });
    expect(await t.db.$count(servers, eq(servers.hostname, 'mapped.staging.lab.internal'))).toBe(0);
  });

  it('refuses a change of a staging server\u2019s address to production\u2019s', async () => {
    const [stg] = await t.db.select().from(servers).where(eq(servers.environmentId, stagingId)).orderBy(servers.id).limit(1);
    const r = await saveObject(t.db, def(), stg!.id, { ...form(stg!.hostname, prodServer.address) }, stagingAdmin);
    expect(r.ok).toBe(false);
    const [after] = await t.db.select().from(servers).where(eq(servers.id, stg!.id));
    expect(after!.address).toBe(stg!.address);
  });

  it('makes creating a server an admin\u2019s act: a staging operator is refused, and the refusal names the fields', async () => {
    await expect(saveObject(t.db, def(), null, form('new.staging.lab.internal', '192.0.2.10'), stagingOperator)).rejects.toThrow(
      AccessDenied,
    );
    await expect(saveObject(t.db, def(), null, form('new.staging.lab.internal', '192.0.2.10'), stagingOperator)).rejects.toThrow(
      /Setting hostname, address, sshPort, sshUser of a new server/,
    );
    const ok = await saveObject(t.db, def(), null, form('new.staging.lab.internal', '192.0.2.10'), stagingAdmin);
    expect(ok.ok).toBe(true);
    const audit = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, 'servers'), eq(auditEntries.action, 'inventory.create')));
    expect(audit.map((a) => a.objectLabel)).toContain('new.staging.lab.internal');
  });
});

describe("a host key belongs to one environment, and each environment's hosts take its own SSH key only", () => {
  // A row that got past the save (written before this rule, or straight into the database): staging,
  // unpinned, at production's address.
  const plant = async (hostname: string) => {
    const [row] = await t.db
      .insert(servers)
      .values({ ...form(hostname, prodServer.address), sshHostKeyFingerprint: null })
      .returning();
    return row!;
  };
  const targetOf = (s: typeof servers.$inferSelect, environment: string) => ({
    host: s.address,
    port: s.sshPort,
    username: s.sshUser,
    hostKeyFingerprint: s.sshHostKeyFingerprint,
    serverId: s.id,
    environment,
  });

  it("production's host refuses staging's key: Check SSH from a staging row gets nothing, and pins nothing", async () => {
    const planted = await plant('planted-1.staging.lab.internal');
    const ssh = fleetSsh(t.db, () => {});
    pools.push(ssh);
    await expect(ssh.exec(targetOf(planted, 'staging'), ['true'], { readOnly: true })).rejects.toThrow(/authentication methods failed/);
    const [after] = await t.db.select().from(servers).where(eq(servers.id, planted.id));
    expect(after!.sshHostKeyFingerprint).toBeNull();
    await t.db.delete(servers).where(eq(servers.id, planted.id));
  });

  it('with one key for every environment (an install that shares it), the host key pinned to production refuses the connection before any command, and is not pinned to the staging row', async () => {
    const planted = await plant('planted-2.staging.lab.internal');
    const events: string[] = [];
    const shared = fleetSsh(t.db, (e) => events.push(e), {
      fallback: readFileSync(t.lab.ssh!.privateKeyPath),
      byEnvironment: new Map(),
    });
    pools.push(shared);
    const marker = `/tmp/pgherd-binding-${process.pid}`;
    const err = await shared.exec(targetOf(planted, 'staging'), ['true'], { readOnly: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostBindingError);
    expect((err as Error).message).toContain(`host key ${labSshFor(t.lab.ssh!, 'production').hostKeyFingerprint} is pinned to`);
    expect((err as Error).message).toContain('(production)');
    expect(events).toContain('ssh.host.refused');
    const [after] = await t.db.select().from(servers).where(eq(servers.id, planted.id));
    expect(after!.sshHostKeyFingerprint).toBeNull();
    // Pinned by hand to production's key, it is still refused: the key is production's.
    await t.db.update(servers).set({ sshHostKeyFingerprint: prodServer.sshHostKeyFingerprint }).where(eq(servers.id, planted.id));
    const pinned = { ...targetOf(planted, 'staging'), hostKeyFingerprint: prodServer.sshHostKeyFingerprint };
    await expect(shared.exec(pinned, ['touch', marker])).rejects.toBeInstanceOf(HostBindingError);
    expect(() => readFileSync(marker)).toThrow();
    // While two environments claim one key, neither is served: production's own row is refused too.
    await expect(shared.exec(targetOf(prodServer, 'production'), ['true'])).rejects.toBeInstanceOf(HostBindingError);
    await t.db.delete(servers).where(eq(servers.id, planted.id));
  });

  it("gives no agent token to a server at another environment's host: its agent would speak for production", async () => {
    const planted = await plant('planted-3.staging.lab.internal');
    await expect(createAgentToken(t.db, planted.id, { id: null, username: 'stage-admin' })).rejects.toThrow(HostBindingError);
    const [after] = await t.db.select().from(servers).where(eq(servers.id, planted.id));
    expect(after!.agentTokenHash).toBeNull();
    await t.db.delete(servers).where(eq(servers.id, planted.id));
  });

  it('a production row still reaches its host with production\u2019s key (the check lets the rightful owner through)', async () => {
    const ssh = fleetSsh(t.db, () => {});
    pools.push(ssh);
    const r = await ssh.execOk(targetOf(prodServer, 'production'), ['id', '-un']);
    expect(r.stdout.trim()).toBe(t.lab.osUser);
  });
});
