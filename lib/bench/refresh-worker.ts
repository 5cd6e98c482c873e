// One worker's share of the refresh, as its own process, for the benchmark's several workers over one
// inventory: node --import tsx lib/bench/refresh-worker.ts <holder> <interval ms> <run for ms>, with
// DATABASE_URL and PGHERD_PG_CONFIG. It runs rounds every 200 ms (the worker's chore runs them every
// second) and prints, at the end, one line of JSON: its claims (herd id, the database's time in ms),
// rounds, observations and CPU.
import { createDb } from '@/db/client';
import { refreshShare } from '@/lib/fleet/refresh-share';

async function main() {
  const [holder, interval, runFor] = process.argv.slice(2);
  const { db, pool } = createDb(process.env.DATABASE_URL!, 4);
  const share = refreshShare(db, { holder: holder!, intervalMs: Number(interval), concurrency: 64 });
  const end = Date.now() + Number(runFor);
  const claims: [number, number][] = [];
  let observed = 0;
  let opened = 0;
  const cpu0 = process.cpuUsage();
  while (Date.now() < end) {
    const r = await share.round();
    observed += r.observed;
    opened += r.opened;
    for (const c of share.takeClaims()) claims.push([c.herdId, c.claimedAt.getTime()]);
    await new Promise((res) => setTimeout(res, 200));
  }
  const cpu = process.cpuUsage(cpu0);
  share.close();
  await pool.end();
  console.log(JSON.stringify({ holder, claims, observed, opened, cpuMs: (cpu.user + cpu.system) / 1000 }));
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
