// Patroni on this host: the agent finds each running Patroni from its command line
// (`patroni /etc/patroni/config.yml`) and the configuration files the agent's configuration names,
// reads its YAML, and reports, for the instance whose data directory (else port) it runs, the cluster's
// scope and the REST address pgherd should use (https when Patroni has a certificate). Environment
// overrides of Patroni's configuration (PATRONI_RESTAPI_...) are not read.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

/** What a Patroni configuration says of the instance it runs. */
export interface PatroniFound {
  configFile: string;
  scope: string;
  restUrl: string;
  dataDirectory: string | null;
  port: number | null;
}

/** The REST address as pgherd stores it (instances.patroni_url's CHECK). */
export const REST_URL = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/;

const configSchema = z.looseObject({
  scope: z.string().min(1).max(128),
  restapi: z
    .looseObject({ listen: z.string().optional(), connect_address: z.string().optional(), certfile: z.string().optional() })
    .optional(),
  postgresql: z
    .looseObject({ data_dir: z.string().optional(), listen: z.string().optional(), connect_address: z.string().optional() })
    .optional(),
});

/** host:port -> [host, port]; the port alone when the host is a wildcard (0.0.0.0, ::, *) or absent. */
function hostPort(a: string | undefined): { host: string | null; port: number | null } {
  if (!a) return { host: null, port: null };
  const first = (a.split(',')[0] ?? '').trim();
  const m = /^(.*):(\d{1,5})$/.exec(first);
  const host = (m?.[1] ?? first).replace(/^\[|\]$/g, '');
  const port = m?.[2] ? Number(m[2]) : null;
  return { host: ['', '0.0.0.0', '::', '*'].includes(host) ? null : host, port };
}

/** One configuration file read: what it says, or null when it is not Patroni's or cannot be read. */
export function readPatroniConfig(file: string, hostname: string): PatroniFound | null {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const c = configSchema.safeParse(raw);
  if (!c.success) return null;
  const rest = hostPort(c.data.restapi?.connect_address);
  const listen = hostPort(c.data.restapi?.listen);
  const host = rest.host ?? listen.host ?? hostname;
  const port = rest.port ?? listen.port ?? 8008;
  const restUrl = `${c.data.restapi?.certfile ? 'https' : 'http'}://${host}:${String(port)}`;
  if (!REST_URL.test(restUrl)) return null;
  const pg = hostPort(c.data.postgresql?.listen);
  return {
    configFile: file,
    scope: c.data.scope,
    restUrl,
    dataDirectory: c.data.postgresql?.data_dir ? path.resolve(c.data.postgresql.data_dir) : null,
    port: pg.port ?? hostPort(c.data.postgresql?.connect_address).port,
  };
}

/** The configuration files of the Patroni processes running here (the argument after the program that is a file). */
function fromProcesses(): string[] {
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const pid of pids) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const k = argv.findIndex((a) => path.basename(a) === 'patroni');
    if (k < 0) continue;
    const file = argv.slice(k + 1).find((a) => /\.(ya?ml|json)$/.test(a));
    if (file) files.push(path.isAbsolute(file) ? file : path.resolve(`/proc/${pid}/cwd`, file));
  }
  return files;
}

/** Every Patroni configuration found (running processes first, then the files named), read. */
export function discoverPatroni(configFiles: string[], hostname: string): PatroniFound[] {
  const seen = new Set<string>();
  const out: PatroniFound[] = [];
  for (const f of [...fromProcesses(), ...configFiles]) {
    if (seen.has(f)) continue;
    seen.add(f);
    const found = readPatroniConfig(f, hostname);
    if (found) out.push(found);
  }
  return out;
}

/** The Patroni that runs this instance: the same data directory, else the same port. */
export function patroniFor(found: PatroniFound[], i: { dataDirectory: string; port: number }): PatroniFound | null {
  const dir = path.resolve(i.dataDirectory);
  return found.find((p) => p.dataDirectory === dir) ?? found.find((p) => p.dataDirectory === null && p.port === i.port) ?? null;
}
