// pgherd-agent: reports the Postgres instances on this host to pgherd. Built into one file that runs
// with plain node (npm run build:agent -> dist/pgherd-agent.js; see docs/agent.md).
//
//   pgherd-agent --config /etc/pgherd/agent.json --once        (cron, a systemd timer)
//   pgherd-agent --config /etc/pgherd/agent.json --interval    (a daemon: every intervalSeconds)
//   pgherd-agent --config /etc/pgherd/agent.json --dry-run     (print the report, send nothing)
//
// Exit codes: 0 sent (or printed); 2 bad command line or configuration; 3 token file unsafe or
// unreadable; 4 the server refused the report (4xx); 5 the server could not be reached or failed (5xx).
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { availableParallelism, hostname, loadavg, totalmem } from 'node:os';
import { collectInstance } from './collect';
import { discoverBuilds } from './builds';
import { agentConfigSchema, discover, type AgentConfig } from './discover';
import { discoverPatroni, patroniFor } from './patroni';
import type { InstanceReport, Report } from './report';
import { relaySpotNotice } from './spot';

export const AGENT_VERSION = '1.0.0';

export class AgentExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function readConfig(file: string): AgentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentExit(2, `cannot read the configuration ${file}: ${(err as Error).message}`);
  }
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new AgentExit(
      2,
      `configuration ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** The token, from a file only its owner can read (and that is the agent's own user). */
export function readToken(file: string): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new AgentExit(3, `cannot read the token file ${file}: ${(err as Error).message}`);
  }
  if (st.mode & 0o077)
    throw new AgentExit(3, `the token file ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
  if (process.getuid && st.uid !== process.getuid()) throw new AgentExit(3, `the token file ${file} belongs to another user`);
  const token = readFileSync(file, 'utf8').trim();
  if (!/^pgha_[A-Za-z0-9_-]{43}$/.test(token)) throw new AgentExit(3, `the token file ${file} does not hold an agent token`);
  return token;
}

export async function buildReport(cfg: AgentConfig): Promise<Report> {
  const found = await discover(cfg);
  const host =
    cfg.hostname ??
    (hostname()
      .replace(/[^A-Za-z0-9.:_%-]/g, '-')
      .slice(0, 253) ||
      'unknown');
  const patroni = cfg.patroni ? discoverPatroni(cfg.patroniConfigFiles, host) : [];
  const instances: InstanceReport[] = [];
  for (const f of found) {
    if (f.running && f.socketDirectory) {
      try {
        const i = await collectInstance({ host: f.socketDirectory, port: f.port, user: cfg.user, database: cfg.database });
        const p = patroniFor(patroni, i);
        instances.push(p ? { ...i, patroni: { scope: p.scope, restUrl: p.restUrl } } : i);
        continue;
      } catch (err) {
        // It runs (its lock says so) but does not answer us: report what is known, as not running.
        process.stderr.write(`pgherd-agent: port ${f.port}: ${(err as Error).message}\n`);
      }
    }
    if (f.majorVersion && f.dataDirectory)
      instances.push({
        port: f.port,
        dataDirectory: f.dataDirectory,
        state: 'stopped',
        majorVersion: f.majorVersion,
        replicas: [],
        pendingRestart: [],
      });
  }
  return {
    format: 1,
    agentVersion: AGENT_VERSION,
    hostname: host,
    observedAt: new Date().toISOString(),
    intervalSeconds: cfg.intervalSeconds,
    loadAverage: loadavg(),
    memoryMb: Math.round(totalmem() / 1048576),
    cpus: availableParallelism(),
    instances,
    builds: await discoverBuilds(cfg.buildDirectories),
  };
}

export function send(cfg: AgentConfig, token: string, report: Report): Promise<{ status: number; body: string }> {
  const url = new URL('/api/agent/v1/report', cfg.server);
  const body = JSON.stringify(report);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 30_000,
        ...(url.protocol === 'https:' && cfg.caFile ? { ca: readFileSync(cfg.caFile) } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Discovers, collects and sends one report; throws AgentExit 3 (token), 4 (refused) or 5 (unreachable). */
export async function reportNow(cfg: AgentConfig): Promise<{ report: Report; answer: string }> {
  const report = await buildReport(cfg);
  const token = readToken(cfg.tokenFile);
  let res;
  try {
    res = await send(cfg, token, report);
  } catch (err) {
    throw new AgentExit(5, `cannot reach ${cfg.server}: ${(err as Error).message}`);
  }
  if (res.status >= 500) throw new AgentExit(5, `${cfg.server} failed (${res.status}): ${res.body.slice(0, 500)}`);
  if (res.status >= 400) throw new AgentExit(4, `${cfg.server} refused the report (${res.status}): ${res.body.slice(0, 2000)}`);
  return { report, answer: res.body };
}

/**
 * The data directories pgherd's answer names (the clusters it has on record on this host: one it made,
 * whose socket directory the configuration does not list, included): absolute paths only, at most 64.
 */
export function learnedDirectories(answer: string): string[] {
  try {
    const body = JSON.parse(answer) as { dataDirectories?: unknown };
    if (!Array.isArray(body.dataDirectories)) return [];
    return body.dataDirectories
      .filter((d): d is string => typeof d === 'string' && /^\/[^\0\n]{0,4095}$/.test(d) && !d.split('/').includes('..'))
      .slice(0, 64);
  } catch {
    return [];
  }
}

async function once(cfg: AgentConfig, dryRun: boolean, configured: string[] = cfg.dataDirectories): Promise<void> {
  if (dryRun) {
    process.stdout.write(`${JSON.stringify(await buildReport(cfg), null, 2)}\n`);
    return;
  }
  const { report, answer } = await reportNow(cfg);
  // The next round also reads the lock files of the clusters pgherd knows here.
  cfg.dataDirectories = [...new Set([...configured, ...learnedDirectories(answer)])];
  process.stdout.write(`pgherd-agent: reported ${report.instances.length} instance(s): ${answer}\n`);
}

/** Watches the instance metadata for a spot notice and relays it once pgherd has taken it (a daemon's side loop). */
async function watchSpot(cfg: AgentConfig, everyMs: number): Promise<void> {
  for (;;) {
    try {
      const answer = await relaySpotNotice(cfg, readToken(cfg.tokenFile));
      if (answer && answer.status < 300) {
        process.stdout.write(`pgherd-agent: relayed the spot interruption notice: ${answer.body}\n`);
        return;
      }
      if (answer) process.stderr.write(`pgherd-agent: pgherd refused the spot notice (${answer.status}): ${answer.body.slice(0, 500)}\n`);
    } catch (err) {
      process.stderr.write(`pgherd-agent: spot watch: ${(err as Error).message}\n`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function main(argv: string[]): Promise<number> {
  const args = new Set(argv.filter((a) => a.startsWith('--') && !a.includes('=')));
  const at = argv.indexOf('--config');
  const file = at >= 0 ? argv[at + 1] : '/etc/pgherd/agent.json';
  const known = new Set(['--config', '--once', '--interval', '--dry-run', '--help']);
  try {
    if (args.has('--help')) {
      process.stdout.write('usage: pgherd-agent [--config FILE] (--once | --interval | --dry-run)\n');
      return 0;
    }
    const unknown = [...args].filter((a) => !known.has(a));
    if (unknown.length || !file || (at >= 0 && file.startsWith('--')))
      throw new AgentExit(
        2,
        `usage: pgherd-agent [--config FILE] (--once | --interval | --dry-run)${unknown.length ? `; unknown: ${unknown.join(' ')}` : ''}`,
      );
    const cfg = readConfig(file);
    if (!args.has('--interval')) {
      await once(cfg, args.has('--dry-run'));
      return 0;
    }
    if (cfg.spot) void watchSpot(cfg, cfg.spot.everySeconds * 1000);
    const configured = [...cfg.dataDirectories];
    for (;;) {
      try {
        await once(cfg, false, configured);
      } catch (err) {
        // A daemon keeps going: the next report may get through. Configuration errors stop it.
        if (err instanceof AgentExit && err.code <= 3) throw err;
        process.stderr.write(`pgherd-agent: ${(err as Error).message}\n`);
      }
      await new Promise((r) => setTimeout(r, cfg.intervalSeconds * 1000));
    }
  } catch (err) {
    process.stderr.write(`pgherd-agent: ${(err as Error).message}\n`);
    return err instanceof AgentExit ? err.code : 1;
  }
}

if (process.argv[1] && /pgherd-agent(\.js)?$|cli\.ts$/.test(process.argv[1])) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
