// BIND 9 for the lab: one primary zone with an A record per lab server and a write name per herd,
// updatable only with the lab's TSIG key (HMAC-SHA256), run by the lab user on a free port.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { asLabUser, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';

export interface LabDns {
  server: string;
  port: number;
  zone: string;
  key: { name: string; algorithm: 'hmac-sha256'; secret: string };
  /** The file PGHERD_DNS_CONFIG points at for the console and the worker. */
  configFile: string;
  /** Each herd's write name, which follows its primary. */
  herds: { environment: string; herd: string; writeName: string }[];
}

export interface ZoneContents {
  zone: string;
  /** host name (in the zone) -> address */
  hosts: { name: string; address: string }[];
  /** CNAMEs: write name (or a replica's read name) -> host name, with their TTL (30 s unless said) */
  aliases: { name: string; target: string; ttl?: number }[];
  /** Each herd's write name: the configuration gives each environment its part of the zone. */
  herds: { environment: string; herd: string; writeName: string }[];
}

const rel = (name: string, zone: string) => {
  const n = name.replace(/\.$/, '');
  if (!n.endsWith(`.${zone}`)) throw new Error(`${name} is not in zone ${zone}`);
  return n.slice(0, -(zone.length + 1));
};

export async function startBind(
  id: Identity,
  dir: string,
  port: number,
  contents: ZoneContents,
): Promise<{ pid: number; dns: Omit<LabDns, 'herds'> }> {
  const home = path.join(dir, 'bind');
  mkdirSync(home, { recursive: true });
  const key = { name: 'pgherd-lab', algorithm: 'hmac-sha256' as const, secret: randomBytes(32).toString('base64') };
  const { zone } = contents;
  writeFileSync(
    path.join(home, 'named.conf'),
    `
options {
  directory "${home}";
  pid-file "${home}/named.pid";
  session-keyfile "${home}/session.key";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
key "${key.name}" { algorithm ${key.algorithm}; secret "${key.secret}"; };
controls { };
zone "${zone}" {
  type primary;
  file "${home}/${zone}.zone";
  allow-update { key "${key.name}"; };
};
`,
  );
  writeFileSync(
    path.join(home, `${zone}.zone`),
    [
      '$TTL 60',
      `@ IN SOA ns.${zone}. hostmaster.${zone}. 1 60 60 600 30`,
      `@ IN NS ns.${zone}.`,
      'ns IN A 127.0.0.1',
      ...contents.hosts.map((h) => `${rel(h.name, zone)} IN A ${h.address}`),
      ...contents.aliases.map((a) => `${rel(a.name, zone)} ${a.ttl ?? 30} IN CNAME ${a.target.replace(/\.$/, '')}.`),
      '',
    ].join('\n'),
  );
  chownDirAndFiles(home, id);
  const out = openSync(path.join(dir, 'named.log'), 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/named', '-g', '-4', '-c', path.join(home, 'named.conf')]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const server = { host: '127.0.0.1', port };
  await waitFor(
    `named on port ${port}`,
    async () => ((await lookup(server, `ns.${zone}`, 'A', 300).catch(() => [])).length ? true : undefined),
    15_000,
  );
  const configFile = path.join(dir, 'dns.json');
  // Each environment owns its part of the zone (<herd>.<environment>.db.<zone>), and nothing else.
  const names = [...new Set(contents.herds.map((h) => h.environment))].map((e) => ({ suffix: `${e}.db.${zone}`, environments: [e] }));
  writeFileSync(configFile, JSON.stringify({ zones: [{ zone, provider: 'rfc2136', server, key, names }] }, null, 2), { mode: 0o600 });
  return { pid: child.pid!, dns: { server: server.host, port, zone, key, configFile } };
}

/** The directory and the files in it (the zone, named.conf): named writes its journal beside them. */
function chownDirAndFiles(p: string, id: Identity) {
  chownSync(p, id.uid, id.gid);
  for (const f of readdirSync(p)) chownSync(path.join(p, f), id.uid, id.gid);
}
