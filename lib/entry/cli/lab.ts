// npm run lab -- up [--file F] [--no-fleet] | down [--file F] | status [--file F] | worker [--file F] | kill-site SITE [--file F]
import { startWorkerProcess } from '@/lib/lab/console';
import { DEFAULT_LAB_FILE, readLab, refreshPids, startLab, stopLab, updateLab } from '@/lib/lab/lab';
import { killSite } from '@/lib/lab/kill-site';

async function main() {
  const [cmd = 'status', ...rest] = process.argv.slice(2);
  const fileAt = rest.indexOf('--file');
  const file = (fileAt >= 0 ? rest[fileAt + 1] : undefined) ?? DEFAULT_LAB_FILE;
  const log = (m: string) => console.log(`lab: ${m}`);
  if (cmd === 'up') {
    const t0 = Date.now();
    const info = await startLab({ file, fleet: rest.includes('--no-fleet') ? false : undefined, log });
    console.log(`lab: up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${info.instances.length} fleet instances; described in ${file}`);
  } else if (cmd === 'down') {
    await stopLab(file, log);
    console.log('lab: down');
  } else if (cmd === 'worker') {
    // One more worker over the running lab (the demo's, say), configured as the demo configures its
    // own; in the foreground until Ctrl-C or SIGTERM, which it passes on. In lab.json while it runs,
    // so that the lab's stop finds it if this command is killed.
    const name = `worker-${String(process.pid)}`;
    const child = await startWorkerProcess(readLab(file), { labFile: file, name });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    log(`worker started (PID ${String(child.pid)})`);
    const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
    updateLab(file, (info) => {
      info.processes = info.processes.filter((p) => p.name !== name);
    });
    process.exit(code);
  } else if (cmd === 'kill-site') {
    // A site lost the way a machine goes: every process of it SIGKILLed, with what it started, no goodbye.
    const site = rest[0];
    if (!site || site.startsWith('--')) throw new Error('kill-site needs a site: a, b or c (lab.json `controlPlane.sites`)');
    const killed = killSite(file, site);
    log(`site ${site} lost: ${killed.map((p) => `${p.name} (${String(p.pid)})`).join(', ')} SIGKILLed`);
  } else if (cmd === 'status') {
    refreshPids(file); // postmasters restarted since lab.json was written: their PIDs now
    console.log(JSON.stringify(readLab(file), null, 2));
  } else {
    console.error('usage: npm run lab -- up|down|status|worker|kill-site SITE [--file FILE] [--no-fleet]');
    process.exit(2);
  }
}

main().catch((err: unknown) => {
  console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
