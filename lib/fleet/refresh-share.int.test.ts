// The refresh shared by several workers, over the lab's real fleet: each herd observed by one worker an
// interval and never twice, a stopped worker's herds taken by the others before they grow old, one kept
// session an instance across rounds, and what is old flagged in fleet health and the metrics. And a
// frozen postmaster: the refresh's kept session still answers, a probe that opens a connection does not.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { eq, inArray, sql } from 'drizzle-orm';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { environments, herds, instances, servers } from '@/db/schema';
import { fleetHealth } from '@/lib/features/agents/health';
import { registerFleetGauges } from '@/lib/features/metrics/fleet';
import { observationPool, observe, postmasterAnswers } from '@/lib/fleet/observe';
import { claimDueHerds, REFRESH_APPLICATION, refreshShare, type Claim, type RefreshShare } from '@/lib/fleet/refresh-share';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { recordPass } from '@/lib/fleet/refresher';
import { restoredCopy } from '@/lib/lab/faults';
import { query } from '@/lib/lab/postgres';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';

let t: TestDb;
const made: RefreshShare[] = [];
beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
});
afterEach(() => {
  for (const s of made.splice(0)) s.close();
});
afterAll(async () => ifAssigned(t)?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function share(holder: string, intervalMs: number, batchHerds = 256): RefreshShare {
  const s = refreshShare(t.db, { holder, intervalMs, batchHerds, timeoutMs: 2000 });
  made.push(s);
  return s;
}

/** Runs each worker's rounds every 100 ms until `ms` have passed (a worker leaves when its `until` is past). */
async function run(workers: { holder: string; s: RefreshShare; until?: number }[], ms: number): Promise<(Claim & { holder: string })[]> {
  const end = Date.now() + ms;
  const claims: (Claim & { holder: string })[] = [];
  await Promise.all(
    workers.map(async (w) => {
      while (Date.now() < Math.min(end, w.until ?? end)) {
        await w.s.round();
        claims.push(...w.s.takeClaims().map((c) => ({ ...c, holder: w.holder })));
        await sleep(100);
      }
    }),
  );
  return claims;
}

function byHerd(claims: (Claim & { holder: string })[]): Map<number, (Claim & { holder: string })[]> {
  const m = new Map<number, (Claim & { holder: string })[]>();
  for (const c of claims) m.set(c.herdId, [...(m.get(c.herdId) ?? []), c]);
  for (const list of m.values()) list.sort((a, b) => a.claimedAt.getTime() - b.claimedAt.getTime());
  return m;
}

const gaps = (list: Claim[]) => list.slice(1).map((c, k) => c.claimedAt.getTime() - list[k]!.claimedAt.getTime());

async function allDue() {
  await t.db.update(herds).set({ observeDueAt: sql`'-infinity'`, observedBy: null });
}

async function withInterval<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const before = process.env.PGHERD_REFRESH_INTERVAL_MS;
  process.env.PGHERD_REFRESH_INTERVAL_MS = String(ms);
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.PGHERD_REFRESH_INTERVAL_MS;
    else process.env.PGHERD_REFRESH_INTERVAL_MS = before;
  }
}

async function scrapedUnobserved(): Promise<Map<string, number>> {
  const registry = new Registry();
  registerFleetGauges(
    registry,
    () => t.db,
    () => [],
  );
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'pgherd_instances_unobserved') as
    { values: { labels: Record<string, string>; value: number }[] } | undefined;
  return new Map((metric?.values ?? []).map((v) => [v.labels.environment!, v.value]));
}

describe('the refresh, shared by three workers', () => {
  it('observes each herd once an interval, never twice, every herd every interval, the work spread across the workers', async () => {
    await allDue();
    const interval = 1500;
    const workers = ['w1', 'w2', 'w3'].map((holder) => ({ holder, s: share(holder, interval, 2) }));
    const since = new Date();
    const claims = await run(workers, 4 * interval + 300);
    const all = await t.db.select({ id: herds.id }).from(herds);
    const seen = byHerd(claims);
    expect([...seen.keys()].sort()).toEqual(all.map((h) => h.id).sort());
    for (const [herd, list] of seen) {
      // Claimed at 0, 1, 2, 3 and 4 intervals: never two within one interval (the database's clock).
      for (const g of gaps(list)) expect(g, `herd ${herd}: ${gaps(list).join(', ')} ms apart`).toBeGreaterThanOrEqual(interval - 1);
      expect(list.length, `herd ${herd}`).toBeGreaterThanOrEqual(4);
    }
    expect(new Set(claims.map((c) => c.holder)).size).toBeGreaterThan(1);
    // Every instance was written by the rounds, with what it says now.
    const rows = await t.db.select({ id: instances.id, at: instances.lastObservedAt }).from(instances);
    for (const r of rows) expect(r.at!.getTime(), `instance ${r.id}`).toBeGreaterThan(since.getTime());
  }, 60_000);

  it('a worker that stops: the others take its herds before any is two intervals old, and none is flagged', async () => {
    await allDue();
    const interval = 1500;
    const start = Date.now();
    const workers = [
      // w1 leaves after its first rounds: the herds it claimed must not wait for it.
      { holder: 'w1', s: share('w1', interval), until: start + 500 },
      { holder: 'w2', s: share('w2', interval, 2), until: start + 500 + 2 * interval },
      { holder: 'w3', s: share('w3', interval, 2) },
    ];
    // w1 claims everything first (a batch of 256): it starts alone.
    await workers[0]!.s.round();
    const first = workers[0]!.s.takeClaims().map((c) => ({ ...c, holder: 'w1' }));
    const later = await run(workers, 5 * interval);
    const claims = [...first, ...later];
    const w1Herds = new Set(first.map((c) => c.herdId));
    expect(w1Herds.size).toBe((await t.db.select({ id: herds.id }).from(herds)).length);
    for (const [herd, list] of byHerd(claims)) {
      // Due again one interval after w1's claim, taken by another half an interval later (and a round's time).
      for (const g of gaps(list)) expect(g, `herd ${herd}: ${gaps(list).join(', ')} ms apart`).toBeLessThan(1.5 * interval + 1000);
      expect(list.some((c) => c.holder !== 'w1')).toBe(true);
      // And w2, gone too after two intervals: w3 has them all at the end.
      expect(list.at(-1)!.holder).toBe('w3');
    }
    await withInterval(interval, async () => {
      const h = await fleetHealth(t.db, null);
      expect(h.unobserved).toEqual({ rows: [], total: 0 });
      expect([...(await scrapedUnobserved()).values()].every((n) => n === 0)).toBe(true);
    });
  }, 60_000);

  it('keeps one session an instance across rounds: the second round opens none', async () => {
    await allDue();
    const s = share('w1', 60_000);
    const lab = t.lab;
    // A replica no operations test restarts (a restart would end the session).
    const quiet = lab.instances.find((i) => i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd))!;
    const sessions = async () =>
      (
        await query<{ pid: number }>(
          quiet.dsn,
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = 'postgres' ORDER BY pid`,
          [REFRESH_APPLICATION],
        )
      ).map((r) => r.pid);
    const before = await sessions();
    const count = (await t.db.select({ id: instances.id }).from(instances)).length;
    const one = await s.round();
    expect(one.observed).toBe(count);
    expect(one.opened).toBe(one.reachable);
    const mine = (await sessions()).filter((p) => !before.includes(p));
    expect(mine).toHaveLength(1);
    await allDue();
    const two = await s.round();
    expect(two.observed).toBe(count);
    // (Only an instance an operations test restarted meanwhile may need a new one.)
    expect(two.opened).toBeLessThanOrEqual(lab.instances.filter((i) => isOpsTestHerd(i.environment, i.herd)).length);
    expect((await sessions()).filter((p) => !before.includes(p))).toEqual(mine);
    s.close();
    await expect.poll(async () => (await sessions()).filter((p) => !before.includes(p))).toEqual([]);
  }, 60_000);
});

/**
 * A herd of its own in staging whose one member is a host that takes the connection and never says a
 * word (a hung machine), due before every other herd; `drop` removes it and closes the host.
 */
async function hungHerd(name: string, address: string) {
  const tarpit = net.createServer(() => {});
  await new Promise<void>((r) => tarpit.listen(0, address, r));
  const port = (tarpit.address() as net.AddressInfo).port;
  const [env] = await t.db.select().from(environments).where(eq(environments.name, 'staging'));
  const [herd] = await t.db.insert(herds).values({ environmentId: env!.id, name }).returning();
  const [srv] = await t.db
    .insert(servers)
    .values({ hostname: `${name}.lab.internal`, environmentId: env!.id, address, site: 'lab' })
    .returning();
  const [hung] = await t.db
    .insert(instances)
    .values({ herdId: herd!.id, serverId: srv!.id, port, role: 'primary', state: 'running' })
    .returning();
  await t.db.update(herds).set({ observeDueAt: sql`now() - interval '1 second'`, observedBy: null });
  await t.db
    .update(herds)
    .set({ observeDueAt: sql`'-infinity'` })
    .where(eq(herds.id, herd!.id));
  return {
    hung: hung!,
    drop: async () => {
      tarpit.close();
      await t.db.delete(herds).where(eq(herds.id, herd!.id));
      await t.db.delete(servers).where(eq(servers.id, srv!.id));
    },
  };
}

describe('a worker past its capacity, a worker thawed, a fence cleared meanwhile', () => {
  it("claims the oldest due first, never its own herds before one nobody has observed, another worker's overdue ones last", async () => {
    await allDue();
    const [a, b, c] = await t.db.select({ id: herds.id }).from(herds).orderBy(herds.id).limit(3);
    await t.db.update(herds).set({ observeDueAt: sql`'infinity'` });
    // a: w1's own, due a second ago; b: never observed, due since for ever.
    await t.db
      .update(herds)
      .set({ observeDueAt: sql`now() - interval '1 second'`, observedBy: 'w1' })
      .where(eq(herds.id, a!.id));
    await t.db
      .update(herds)
      .set({ observeDueAt: sql`'-infinity'`, observedBy: null })
      .where(eq(herds.id, b!.id));
    // c: w2's, overdue far longer than a: w1 observes its own first (its sessions are there).
    await t.db
      .update(herds)
      .set({ observeDueAt: sql`now() - interval '1 hour'`, observedBy: 'w2' })
      .where(eq(herds.id, c!.id));
    expect((await claimDueHerds(t.db, 'w1', 60_000, 1)).map((x) => x.herdId)).toEqual([b!.id]);
    expect((await claimDueHerds(t.db, 'w1', 60_000, 1)).map((x) => x.herdId)).toEqual([a!.id]);
    expect((await claimDueHerds(t.db, 'w1', 60_000, 1)).map((x) => x.herdId)).toEqual([c!.id]);
    expect(await claimDueHerds(t.db, 'w1', 60_000, 1)).toEqual([]);
  });

  it('a member that never answers holds its own batch only: every other herd is written meanwhile', async () => {
    await allDue();
    // Its herd is claimed first, in a batch of its own.
    const { hung, drop } = await hungHerd('tarpit', '127.0.1.225');
    try {
      await t.db.update(instances).set({ lastObservedAt: null });
      const s = refreshShare(t.db, { holder: 'w1', intervalMs: 60_000, batchHerds: 1, timeoutMs: 3000 });
      made.push(s);
      const t0 = Date.now();
      const round = s.round();
      // Every other instance is written long before the hung one's 3 s are up.
      await expect
        .poll(
          async () =>
            (
              await t.db
                .select({ id: instances.id })
                .from(instances)
                .where(sql`last_observed_at IS NULL AND id <> ${hung.id}`)
            ).length,
          {
            timeout: 2500,
            interval: 50,
          },
        )
        .toBe(0);
      expect(Date.now() - t0).toBeLessThan(2500);
      const [waiting] = await t.db.select().from(instances).where(eq(instances.id, hung.id));
      expect(waiting!.lastObservedAt).toBeNull();
      await round;
      const [after] = await t.db.select().from(instances).where(eq(instances.id, hung.id));
      expect(after).toMatchObject({ state: 'unreachable' });
    } finally {
      await drop();
    }
  }, 60_000);

  it('claims no further ahead than it observes: its one slot held by a hung member, one herd claimed next and none after', async () => {
    await allDue();
    // Every herd due; the hung one first.
    const { drop } = await hungHerd('tarpit-ahead', '127.0.1.226');
    try {
      const s = refreshShare(t.db, { holder: 'ahead', intervalMs: 60_000, batchHerds: 1, concurrency: 1, timeoutMs: 3000 });
      made.push(s);
      await s.round();
      // The claims' own times (the database's): the hung herd first, the next one at once (it waits for
      // the slot), and the third only once the hung member's 3 s freed the slot.
      const [hung, next, third] = s.takeClaims().map((c) => c.claimedAt.getTime());
      expect(next! - hung!).toBeLessThan(1000);
      expect(third! - hung!).toBeGreaterThanOrEqual(2500);
      // And the round goes on to every herd once the slot is free.
      expect(
        (
          await t.db
            .select({ id: herds.id })
            .from(herds)
            .where(sql`observed_by IS DISTINCT FROM 'ahead'`)
        ).length,
      ).toBe(0);
    } finally {
      await drop();
    }
  }, 60_000);

  it('writes nothing for a herd another worker claimed meanwhile (a worker frozen past its claims, then thawed)', async () => {
    await allDue();
    const [one] = await t.db.select().from(instances).where(eq(instances.state, 'running')).limit(1);
    await t.db.update(herds).set({ observeDueAt: sql`'infinity'` });
    await t.db
      .update(herds)
      .set({ observeDueAt: sql`'-infinity'` })
      .where(eq(herds.id, one!.herdId));
    const [claimed] = await claimDueHerds(t.db, 'w1', 60_000, 10);
    expect(claimed!.herdId).toBe(one!.herdId);
    const refs = await loadInstanceRefs(t.db, [], { herdIds: [one!.herdId] });
    // w1 read the herd: every member stopped (a reading to tell apart from the truth).
    const old = refs.map((r) => ({ r, o: { reachable: false, refused: true, error: 'connection refused' } }));
    await t.db
      .update(instances)
      .set({ lastObservedAt: sql`now() - interval '1 hour'` })
      .where(eq(instances.herdId, one!.herdId));
    // Meanwhile w2 took the herd.
    await t.db.update(herds).set({ observedBy: 'w2' }).where(eq(herds.id, one!.herdId));
    await recordPass(t.db, old, new Set(), { holder: 'w1' });
    const after = await t.db.select().from(instances).where(eq(instances.herdId, one!.herdId));
    for (const m of after) expect([m.state, m.lastObservedAt!.getTime() < Date.now() - 3_000_000]).toEqual(['running', true]);
    // Still w1's: written, with the database's time.
    await t.db.update(herds).set({ observedBy: 'w1' }).where(eq(herds.id, one!.herdId));
    await recordPass(t.db, old, new Set(), { holder: 'w1' });
    const written = await t.db.select().from(instances).where(eq(instances.herdId, one!.herdId));
    for (const m of written) expect([m.state, m.lastObservedAt!.getTime() > Date.now() - 60_000]).toEqual(['stopped', true]);
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.herdId, one!.herdId));
  });

  it('does not bring back a fence a rebuild cleared while the pass observed', async () => {
    const [one] = await t.db.select().from(instances).where(eq(instances.state, 'running')).limit(1);
    await t.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, one!.id));
    const [ref] = await loadInstanceRefs(t.db, [one!.id]);
    expect(ref!.state).toBe('fenced');
    // The rebuild ends: the member runs as a replica again, cleared by the rebuild itself.
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, one!.id));
    await recordPass(t.db, [{ r: ref!, o: await observe(ref!) }]);
    const [after] = await t.db.select().from(instances).where(eq(instances.id, one!.id));
    expect(after!.state).toBe('running');
    // A fence set while the pass observed stays.
    await t.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, one!.id));
    await recordPass(t.db, [{ r: { ...ref!, state: 'running' }, o: await observe(ref!) }]);
    const [kept] = await t.db.select().from(instances).where(eq(instances.id, one!.id));
    expect(kept!.state).toBe('fenced');
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, one!.id));
  });
});

describe('what the refresh has not observed lately', () => {
  it('is flagged in fleet health and the metric after two intervals, never-observed rows too; a round clears it', async () => {
    await allDue();
    const [row] = await t.db
      .select({ id: instances.id, herdId: instances.herdId, port: instances.port, env: environments.name, host: servers.hostname })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .innerJoin(environments, eq(environments.id, herds.environmentId))
      .innerJoin(servers, eq(servers.id, instances.serverId))
      .limit(1);
    const [other] = await t.db
      .select({ id: instances.id })
      .from(instances)
      .where(sql`${instances.herdId} <> ${row!.herdId}`)
      .limit(1);
    await t.db.update(instances).set({ lastObservedAt: sql`now()` });
    await t.db
      .update(instances)
      .set({ lastObservedAt: sql`now() - interval '61 seconds'` })
      .where(eq(instances.id, row!.id));
    // Never observed, its row made long ago.
    await t.db
      .update(instances)
      .set({ lastObservedAt: null, createdAt: sql`now() - interval '1 hour'` })
      .where(eq(instances.id, other!.id));
    await withInterval(30_000, async () => {
      const h = await fleetHealth(t.db, null);
      expect(h.unobserved.total).toBe(2);
      expect(h.unobserved.rows.map((r) => r.id)).toEqual([other!.id, row!.id]);
      expect(h.unobserved.rows[0]!.lastObservedAt).toBeNull();
      expect(h.unobserved.rows[1]).toMatchObject({ label: `${row!.host}:${row!.port}`, herdId: row!.herdId });
      const scraped = await scrapedUnobserved();
      expect([...scraped.values()].reduce((a, b) => a + b, 0)).toBe(2);
      expect(scraped.get(row!.env)).toBeGreaterThanOrEqual(1);
      // Within one interval: nothing flagged.
      await t.db
        .update(instances)
        .set({ lastObservedAt: sql`now() - interval '59 seconds'` })
        .where(inArray(instances.id, [row!.id, other!.id]));
      expect((await fleetHealth(t.db, null)).unobserved.total).toBe(0);
    });
    await withInterval(5000, async () => {
      expect((await fleetHealth(t.db, null)).unobserved.total).toBe(2);
      await share('w1', 5000).round();
      expect((await fleetHealth(t.db, null)).unobserved.total).toBe(0);
    });
    // The refresh off: nothing is old.
    await t.db.update(instances).set({ lastObservedAt: sql`now() - interval '1 day'` });
    await withInterval(0, async () => {
      expect((await fleetHealth(t.db, null)).unobserved.total).toBe(0);
      expect((await scrapedUnobserved()).size).toBe(0);
    });
  }, 60_000);
});

describe('a frozen postmaster (SIGSTOP)', () => {
  it('the refresh\u2019s kept session still answers; every probe that opens a connection says it takes none', async () => {
    const lab = t.lab;
    const source = lab.instances.find((i) => i.role === 'replica' && !isOpsTestHerd(i.environment, i.herd))!;
    const copy = await restoredCopy(lab, inject('labFile'), source, 'db-frozen-copy.lab.internal', '127.0.1.226');
    const postmaster = Number(readFileSync(`${copy.node.dataDirectory}/postmaster.pid`, 'utf8').split('\n')[0]);
    try {
      const [env] = await t.db.select().from(environments).where(eq(environments.name, source.environment));
      const [herd] = await t.db.insert(herds).values({ environmentId: env!.id, name: 'frozen-copy' }).returning();
      const [srv] = await t.db
        .insert(servers)
        .values({ hostname: 'db-frozen-copy.lab.internal', environmentId: env!.id, address: '127.0.1.226', site: 'lab' })
        .returning();
      const [inst] = await t.db
        .insert(instances)
        .values({ herdId: herd!.id, serverId: srv!.id, port: copy.node.port, role: 'primary', state: 'running' })
        .returning();
      // Only the copy's herd is due: the rounds below look at it alone.
      await t.db.update(herds).set({ observeDueAt: sql`now() + interval '1 hour'` });
      const due = () =>
        t.db
          .update(herds)
          .set({ observeDueAt: sql`'-infinity'` })
          .where(eq(herds.id, herd!.id));
      await due();
      const s = share('w1', 60_000);
      expect(await s.round()).toMatchObject({ herds: 1, observed: 1, reachable: 1, opened: 1 });
      const e = { host: '127.0.1.226', port: copy.node.port, serverEnvironment: source.environment };
      // The gate's kept sessions probe the postmaster with each reading: one open before the freeze.
      const gate = observationPool();
      expect(await gate.look(e, 1000)).toMatchObject({ reachable: true });

      process.kill(postmaster, 'SIGSTOP');
      try {
        await due();
        // The kept session's backend runs on: the refresh reads the instance as running.
        expect(await s.round()).toMatchObject({ herds: 1, observed: 1, reachable: 1, opened: 0 });
        const [after] = await t.db.select().from(instances).where(eq(instances.id, inst!.id));
        expect(after).toMatchObject({ state: 'running', role: 'primary' });
        // A new connection (every fence, liveness and pre-flight probe): not accepting.
        expect(await postmasterAnswers(e, 1000)).toBe('no answer to a new connection within 1000 ms');
        expect(await observe(e, 1000)).toMatchObject({ reachable: false });
        const judged = await gate.look(e, 1000);
        expect(judged).toMatchObject({ reachable: false });
        expect(judged.error).toMatch(/\(an open session still answers\)/);
      } finally {
        process.kill(postmaster, 'SIGCONT');
        gate.close();
      }
      expect(await postmasterAnswers(e, 3000)).toBeNull();
      expect(await observe(e, 3000)).toMatchObject({ reachable: true, inRecovery: false });
    } finally {
      for (const s of made.splice(0)) s.close();
      await copy.remove();
      await t.db.update(herds).set({ observeDueAt: sql`'-infinity'` });
    }
  }, 120_000);
});
