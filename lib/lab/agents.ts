// The lab's agents: pgherd-agent's own code (discover, collect, send) run for every lab server, each
// with its configuration and token file under <lab>/agents/<server>/, so the sandbox fleet is
// discovered the way a real one is. One loop in the calling process rather than a process per server:
// 18 Node processes would cost more than the fleet they watch.
import { buildsRoot } from './builds';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { servers } from '@/db/schema';
import { buildReport, readConfig, reportNow } from '@/lib/agent/cli';
import { ingestReport } from '@/lib/features/agents/ingest';
import { agentConfigSchema, type AgentConfig } from '@/lib/agent/discover';
import { DEFAULT_BUILD_PATTERNS } from '@/lib/agent/builds';
import { PG_SUPERUSER } from './postgres';
import type { LabInfo } from './lab';

export interface LabAgent {
  server: string;
  configFile: string;
  config: AgentConfig;
}

/** Where a lab host's builds are: Debian's, and the lab's others (every lab server is this one machine). */
const labBuildDirectories = () => [...DEFAULT_BUILD_PATTERNS, `${buildsRoot()}/*/bin`];

/**
 * Writes each lab server's agent configuration (its socket directory, its name, the console's URL)
 * and token file (mode 600), as an admin would on a host. `tokens`: server -> agent token.
 */
export function writeLabAgents(lab: LabInfo, consoleUrl: string, tokens: Map<string, string>, intervalSeconds = 30): LabAgent[] {
  const agents: LabAgent[] = [];
  for (const i of lab.instances) {
    const token = tokens.get(i.server);
    if (!token) continue;
    const dir = path.join(lab.dir, 'agents', i.server);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    const configFile = path.join(dir, 'agent.json');
    const raw = {
      server: consoleUrl,
      hostname: i.server,
      tokenFile,
      user: PG_SUPERUSER,
      intervalSeconds,
      lsclusters: false,
      socketDirectories: [i.socketDirectory],
      buildDirectories: labBuildDirectories(),
    };
    writeFileSync(configFile, `${JSON.stringify(raw, null, 2)}\n`);
    agents.push({ server: i.server, configFile, config: readConfig(configFile) });
  }
  return agents;
}

/** One report from every agent, one after another; the failures, by server. */
export async function reportAll(agents: LabAgent[]): Promise<{ server: string; error: string }[]> {
  const failed: { server: string; error: string }[] = [];
  for (const a of agents) {
    try {
      await reportNow(a.config);
    } catch (err) {
      failed.push({ server: a.server, error: (err as Error).message });
    }
  }
  return failed;
}

/** Every agent reports every `intervalSeconds` (as `pgherd-agent --interval` does) until stop(). */
export function runLabAgents(agents: LabAgent[], log: (m: string) => void): { stop: () => Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> = Promise.resolve();
  const interval = (agents[0]?.config.intervalSeconds ?? 30) * 1000;
  const tick = () => {
    round = reportAll(agents).then((failed) => {
      for (const f of failed) log(`agent ${f.server}: ${f.error}`);
      if (!stopped) timer = setTimeout(tick, interval);
    });
  };
  timer = setTimeout(tick, interval);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}

/**
 * Each lab server's agent reports once, straight into the ingest (no console needed): the instances
 * of the fleet's servers, and the builds of every server (the scratch servers' too). For the tests and
 * benchmarks that start a lab of their own. `alsoBuilds`: more build directories, as an admin adds one to
 * an agent's buildDirectories (the lab's Debian 17, say).
 */
export async function ingestLabReports(db: Db, lab: LabInfo, opts: { alsoBuilds?: string[] } = {}): Promise<void> {
  const hosts = [
    ...lab.instances.map((i) => ({ server: i.server, sockets: [i.socketDirectory] })),
    ...(lab.backup?.scratch ?? []).map((s) => ({ server: s.server, sockets: [] as string[] })),
  ];
  for (const h of hosts) {
    const cfg = agentConfigSchema.parse({
      server: 'http://127.0.0.1:9',
      tokenFile: '/nonexistent',
      hostname: h.server,
      lsclusters: false,
      user: PG_SUPERUSER,
      socketDirectories: h.sockets,
      buildDirectories: [...labBuildDirectories(), ...(opts.alsoBuilds ?? [])],
    });
    const [s] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, h.server));
    if (!s) throw new Error(`ingestLabReports: no server ${h.server} in the inventory`);
    await ingestReport(db, { id: s.id, hostname: h.server }, await buildReport(cfg));
  }
}
