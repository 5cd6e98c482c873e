// A site of the lab's control plane lost the way a machine goes: every process lab.json places on it
// (pgherd's console and worker there, its Patroni member with its Postgres, etcd, HAProxy, Redis,
// Sentinel) SIGKILLed with everything it started, no goodbye. What was killed leaves lab.json, so the
// lab's stop does not look for it again. It returns once every one of them is gone.
import { readLab, refreshPids, updateLab, type LabProcess } from './lab';
import { alive, descendants, pidRuns } from './proc';

export function killSite(file: string, site: string): LabProcess[] {
  refreshPids(file); // a Postgres Patroni restarted since has another PID (its postmaster.pid says which)
  const lab = readLab(file);
  const known = lab.controlPlane?.sites.map((s) => s.name) ?? [];
  if (!known.includes(site))
    throw new Error(
      known.length
        ? `no site ${JSON.stringify(site)} in ${file}: its sites are ${known.join(', ')}`
        : `${file} has no control plane across sites (start it with npm run demo -- --ha)`,
    );
  const on = lab.processes.filter((p) => p.site === site && pidRuns(p.pid, p.program));
  // Children first listed, then killed all at once: none gets to notice its parent went.
  const pids = on.flatMap((p) => [p.pid, ...descendants(p.pid)]);
  for (const pid of pids)
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  // Gone before this returns: a process SIGKILLed takes a moment to die (a large one unmaps its memory
  // first), and whoever looks next must not find it still running.
  const until = Date.now() + 10_000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (pids.some(alive) && Date.now() < until) Atomics.wait(nap, 0, 0, 20);
  updateLab(file, (info) => {
    info.processes = info.processes.filter((p) => p.site !== site);
  });
  return on;
}
