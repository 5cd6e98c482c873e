// Switchover, DR failover and refresh DNS in an environment whose names Route 53 serves: a lab of its own
// (environment "r53", herds alpha and beta on 127.0.11.x) with its write names in a hosted zone of the
// lab's moto, behind the lab's front (a change PENDING for a second before INSYNC, AWS errors on demand).
// The same actions as the BIND tests (herd-failover.int.test.ts), through the other provider.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ChangeResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { auditEntries, dnsRecords, herds } from '@/db/schema';
import { route53Client } from '@/lib/adapters/aws/config';
import { listRecordSet } from '@/lib/adapters/aws/route53';
import { ROUTE53_SYNC_MS } from '@/lib/lab/aws-front';
import { crash, livePrimary } from '@/lib/lab/faults';
import { PROJECT_ROOT, startLab, stopLab, writeNameOf, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { startReconnectingWriter } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import type { AnyAction } from '@/lib/engine/define-action';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { refreshDnsAction } from './refresh-dns.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-route53-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
const herdIds = new Map<string, number>();

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    fleet: { environments: ['r53'], herds: ['alpha', 'beta'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.11' },
    pgbouncer: [],
    ldap: false,
    route53: 'r53',
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  for (const h of await db.select({ id: herds.id, name: herds.name }).from(herds)) herdIds.set(h.name, h.id);
  worker = await startTestWorker(lab, 'route53', 4);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const runOp = (action: AnyAction, herd: string, params: Record<string, unknown> = {}) =>
  runOperation(db, worker!.queue, action, { herdIds: [herdIds.get(herd)!] }, params, { username: 'route53-test' });

const r53 = () => lab.aws!.route53!;
const writeName = (herd: string) => writeNameOf('r53', herd);
/** What Route 53 holds for the herd's write name (ListResourceRecordSets). */
const held = (herd: string) => listRecordSet(route53Client(), r53().hostedZoneId, writeName(herd), 'CNAME');
const faults = (route53: { error?: string }) => writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: [], route53 }));
const byHost = () => new Map(lab.instances.map((i) => [i.server, i]));
const inRecovery = async (i: LabInstance) => (await query<{ r: boolean }>(i.dsn, 'SELECT pg_is_in_recovery() AS r'))[0]!.r;

describe('the lab', () => {
  it('keeps r53\u2019s write names in Route 53, and pgherd\u2019s records say so', async () => {
    const recs = await db.select().from(dnsRecords);
    expect(recs.map((r) => [r.name, r.zone, r.provider]).sort()).toEqual(
      ['alpha', 'beta'].map((h) => [writeName(h), r53().zone, 'route53']),
    );
    expect(await held('alpha')).toEqual([(await livePrimary(lab, 'alpha')).server]);
  });
});

describe('an AWS error', () => {
  it('AccessDenied or Throttling on changes: the switchover is refused in its pre-flight with the AWS code, nothing changed', async () => {
    const old = await livePrimary(lab, 'alpha');
    for (const error of ['AccessDenied', 'Throttling']) {
      faults({ error });
      try {
        const { op, targets, steps } = await runOp(switchoverAction, 'alpha');
        expect(op.status).toBe('failed');
        expect(targets[0]!.error).toMatch(
          new RegExp(`^refused: Route 53 refused a change of ${writeName('alpha')}: ${error}: .*; nothing was changed$`),
        );
        expect(steps.map((s) => s.name)).toEqual(['pre-flight']);
        // AccessDenied names the caller's ARN: the worker's log has it, the records people read do not.
        for (const recorded of [targets[0]!.error, ...steps.flatMap((s) => [s.stdoutTail, s.stderrTail, s.command])])
          expect(recorded ?? '').not.toMatch(/arn:aws|123456789012/);
      } finally {
        faults({});
      }
      expect((await livePrimary(lab, 'alpha')).server).toBe(old.server);
      expect(await inRecovery(old)).toBe(false);
      expect(await held('alpha')).toEqual([old.server]);
    }
  }, 120_000);

  it('Throttling while refresh DNS mends a name: the step fails with the code and the record stays as it was', async () => {
    const primary = await livePrimary(lab, 'beta');
    const wrong = lab.instances.find((i) => i.herd === 'beta' && i.server !== primary.server)!;
    await route53Client().send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: r53().hostedZoneId,
        ChangeBatch: {
          Changes: [
            {
              Action: 'UPSERT',
              ResourceRecordSet: {
                Name: `${writeName('beta')}.`,
                Type: 'CNAME',
                TTL: 30,
                ResourceRecords: [{ Value: `${wrong.server}.` }],
              },
            },
          ],
        },
      }),
    );
    faults({ error: 'Throttling' });
    try {
      const { op, steps } = await runOp(refreshDnsAction, 'beta');
      expect(op.status).toBe('failed');
      const step = steps.find((s) => s.name === `DNS: ${writeName('beta')}`)!;
      expect(step.status).toBe('failed');
      expect(step.stderrTail).toMatch(/Route 53 refused the change of .*: Throttling: Rate exceeded/);
      expect(await held('beta')).toEqual([wrong.server]);
    } finally {
      faults({});
    }
    const mended = await runOp(refreshDnsAction, 'beta');
    expect(mended.op.status).toBe('succeeded');
    expect(await held('beta')).toEqual([primary.server]);
  }, 120_000);
});

describe('switchover', () => {
  it('moves alpha\u2019s write name in Route 53 (UPSERT, INSYNC, read back); a writer through the name loses no acknowledged commit', async () => {
    const old = await livePrimary(lab, 'alpha');
    await query(old.dsn, 'CREATE TABLE r53_writes (n int)');
    const hosts = byHost();
    const writer = startReconnectingWriter(
      async () => hosts.get((await held('alpha'))[0] ?? '')?.dsn ?? 'postgres://nowhere.invalid/x',
      'r53_writes',
    );
    let run: Awaited<ReturnType<typeof runOp>>;
    try {
      // The writer under way before the switchover: a commit acknowledged.
      await waitFor('the writer commits', () => writer.acked.length > 0);
      run = await runOp(switchoverAction, 'alpha');
    } finally {
      await writer.stop();
    }
    const { op, targets, steps } = run;
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stderrTail]))).toEqual(['succeeded', null]);
    const neu = await livePrimary(lab, 'alpha');
    expect(neu.server).not.toBe(old.server);
    expect(await held('alpha')).toEqual([neu.server]);
    const dns = steps.find((s) => s.name === `DNS: ${writeName('alpha')}`)!;
    expect(dns.command).toBe(
      `route53 change-resource-record-sets --hosted-zone-id ${r53().hostedZoneId} UPSERT ${writeName('alpha')}. 30 CNAME ${neu.server}.`,
    );
    expect(dns.stdoutTail).toBe(`was: ${old.server}\nnow answers: ${neu.server}`);
    // It waited for INSYNC: the lab's Route 53 keeps a change PENDING for ROUTE53_SYNC_MS.
    expect(dns.finishedAt!.getTime() - dns.startedAt.getTime()).toBeGreaterThanOrEqual(ROUTE53_SYNC_MS);
    const audit = (await db.select().from(auditEntries).where(eq(auditEntries.action, 'dns.update')).orderBy(auditEntries.id)).at(-1);
    expect(audit?.changes).toEqual({ values: [old.server, neu.server] });
    const { n } = (
      await query<{ n: string }>(neu.dsn, 'SELECT count(*) AS n FROM r53_writes WHERE n = ANY($1::int[])', [writer.acked])
    )[0]!;
    expect(writer.acked.length).toBeGreaterThan(50);
    expect(Number(n)).toBe(writer.acked.length);
    expect(await inRecovery(old)).toBe(true);
  }, 120_000);
});

describe('DR failover', () => {
  it('with beta\u2019s primary killed: a replica is promoted and the write name follows it in Route 53', async () => {
    const old = await livePrimary(lab, 'beta');
    await crash(lab, old);
    const { op, targets, steps } = await runOp(drFailoverAction, 'beta');
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stderrTail]))).toEqual(['succeeded', null]);
    const neu = await livePrimary(lab, 'beta');
    expect(neu.server).not.toBe(old.server);
    expect(await held('beta')).toEqual([neu.server]);
  }, 120_000);
});
