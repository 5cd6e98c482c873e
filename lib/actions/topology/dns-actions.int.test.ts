// Herd actions through the engine: refresh DNS points a herd's write name at its primary, signed
// with TSIG, verified against the lab's BIND 9, audited; a key BIND rejects fails the step and
// changes nothing. Uses production/billing, whose Postgres instances it does not touch.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, dnsRecords, herds, operations, operationSteps, operationTargets } from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { lookup, replaceRecordSet } from '@/lib/adapters/dns/rfc2136';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import type { AnyAction } from '@/lib/engine/define-action';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { refreshDnsAction } from './refresh-dns.action';
import { checkDnsRecords } from '@/lib/fleet/refresher';
import { changeList } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { parseListParams } from '@/lib/features/admin/list-params';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { dnsConfigWithWrongKey } from '@/lib/lab/faults';

let t: TestDb;
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let queue: ReturnType<typeof targetQueue>;
let herdId: number;
const prefix = `t-dns-${randomBytes(3).toString('hex')}`;
const actor = { id: null, username: 'dns-test', access: SYSTEM_ACCESS };

beforeAll(async () => {
  t = await freshDatabase();
  process.env.PGHERD_DNS_CONFIG = t.lab.dns!.configFile;
  await seedLabFleet(t.db, t.lab);
  ({ id: herdId } = (await t.db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'billing')).orderBy(herds.id).limit(1))[0]!);
  queue = targetQueue(producerConnection(t.lab.redis!.url), prefix);
  worker = await startWorker({
    databaseUrl: t.url,
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    concurrency: 4,
    refreshEveryMs: 0,
    queuePrefix: prefix,
  });
});
afterAll(async () => {
  await worker?.close();
  await ifAssigned(queue)
    ?.obliterate({ force: true })
    .catch(() => {});
  await ifAssigned(queue)?.close();
  await ifAssigned(t)?.close();
});

const dns = () => t.lab.dns!;
const server = () => ({ host: dns().server, port: dns().port });
const billing = () => t.lab.instances.filter((i) => i.environment === 'production' && i.herd === 'billing');
const writeName = () => dns().herds.find((h) => h.environment === 'production' && h.herd === 'billing')!.writeName;

async function run(action: AnyAction, herdIds: number[]) {
  const plan = await planOperation(t.db, SYSTEM_ACCESS, action, herdIds);
  const { id } = await submitOperation(
    t.db,
    queue,
    action,
    { herdIds, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: randomBytes(8).toString('hex') },
    actor,
  );
  for (let i = 0; i < 300; i++) {
    const [op] = await t.db.select().from(operations).where(eq(operations.id, id));
    if (op!.finishedAt) {
      const targets = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      const steps = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, targets[0]!.id)).orderBy(operationSteps.seq);
      return { plan, op, targets, steps };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`operation ${id} did not finish`);
}

describe('refresh DNS', () => {
  it('points a write name that drifted back at the primary, verified at the server and audited', async () => {
    const primary = billing().find((i) => i.role === 'primary')!;
    const replica = billing().find((i) => i.role === 'replica')!;
    await replaceRecordSet(server(), dns().zone, dns().key, { name: writeName(), type: 'CNAME', ttl: 30, values: [replica.server] });
    expect(await lookup(server(), writeName(), 'CNAME')).toEqual([replica.server]);

    const { plan, op, steps } = await run(refreshDnsAction, [herdId]);
    expect(plan.targets[0]!.steps[1]).toContain(`point ${writeName()} (CNAME, TTL 30 s) at ${primary.server}`);
    expect(op!.status).toBe('succeeded');
    expect(await lookup(server(), writeName(), 'CNAME')).toEqual([primary.server]);
    const dnsStep = steps.find((s) => s.name === `DNS: ${writeName()}`)!;
    expect(dnsStep.command).toBe(
      `DNS UPDATE zone ${dns().zone} at ${dns().server}:${dns().port}: ${writeName()} 30 CNAME ${primary.server}`,
    );
    expect(dnsStep.stdoutTail).toBe(`was: ${replica.server}\nnow answers: ${primary.server}`);
    expect(JSON.stringify(steps)).not.toContain(dns().key.secret);
    const [audit] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'dns.update'), eq(auditEntries.username, 'dns-test')));
    expect(audit!.changes).toEqual({ values: [replica.server, primary.server] });
  });

  it('fails the step with the server\u2019s answer when BIND rejects the key, and nothing changes', async () => {
    const primary = billing().find((i) => i.role === 'primary')!;
    const replica = billing().find((i) => i.role === 'replica')!;
    await replaceRecordSet(server(), dns().zone, dns().key, { name: writeName(), type: 'CNAME', ttl: 30, values: [replica.server] });
    const wrong = path.join(t.lab.dir, `dns-wrong-${prefix}.json`);
    dnsConfigWithWrongKey(t.lab, wrong);
    process.env.PGHERD_DNS_CONFIG = wrong;
    try {
      const { op, targets, steps } = await run(refreshDnsAction, [herdId]);
      expect(op!.status).toBe('failed');
      expect(targets[0]!.error).toMatch(/refused the update of .*: NOTAUTH/);
      expect(steps.at(-1)).toMatchObject({ name: `DNS: ${writeName()}`, status: 'failed' });
    } finally {
      process.env.PGHERD_DNS_CONFIG = dns().configFile;
    }
    expect(await lookup(server(), writeName(), 'CNAME')).toEqual([replica.server]);
    expect(primary.server).not.toBe(replica.server);
    // Put it back for whoever comes next.
    await run(refreshDnsAction, [herdId]);
  });

  it('the refresher records what each name answers and flags drift, which the herds changelist and the API show', async () => {
    const replica = billing().find((i) => i.role === 'replica')!;
    const flag = async () =>
      (await changeList(t.db, getAdmin('herds')!, parseListParams(getAdmin('herds')!, { q: 'billing' }, SYSTEM_ACCESS))).rows.find(
        (r) => r.environment === 'production',
      )!.dnsDrift;
    expect(await flag()).toBeNull(); // not asked yet
    await replaceRecordSet(server(), dns().zone, dns().key, { name: writeName(), type: 'CNAME', ttl: 30, values: [replica.server] });
    expect(await checkDnsRecords(t.db, { herdIds: [herdId] })).toEqual({ checked: 1, drifted: 1 });
    const [rec] = await t.db.select().from(dnsRecords).where(eq(dnsRecords.herdId, herdId));
    expect(rec).toMatchObject({ lastAnswer: [replica.server], drifted: true });
    expect(await flag()).toBe('drifted');
    await run(refreshDnsAction, [herdId]);
    await checkDnsRecords(t.db, { herdIds: [herdId] });
    expect(await flag()).toBe('ok');
  });

  it('is refused at planning for a herd without DNS records, and for instance ids given as herd ids', async () => {
    await t.db.delete(dnsRecords).where(eq(dnsRecords.herdId, herdId));
    const plan = await planOperation(t.db, SYSTEM_ACCESS, refreshDnsAction, [herdId]);
    expect(plan.targets[0]!.refused).toBe('the herd has no DNS records');
    await expect(
      submitOperation(
        t.db,
        queue,
        refreshDnsAction,
        { instanceIds: [1], digest: plan.digest, confirmation: '', idempotencyKey: 'x'.repeat(10) },
        actor,
      ),
    ).rejects.toThrow('refresh-dns runs on herds: give herdIds');
  });
});
