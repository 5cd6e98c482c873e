// Where each DNS zone is updated, and with which key: from the file PGHERD_DNS_CONFIG names (keys
// stay in configuration, never in the database or a page). Validated whole at load.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { DnsServer } from './rfc2136';
import type { TsigKey } from './tsig';
import { setting } from '@/lib/settings/settings';

const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/, 'a host name or address');
const zoneName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}\.?$/, 'a domain name');

const envName = z.string().min(1).max(63);

const owned = {
  zone: zoneName,
  /** The environments whose herds' names may live anywhere in the zone. */
  environments: z.array(envName).max(100).optional(),
  /** Parts of the zone owned by other environments: the longest matching suffix decides. */
  names: z
    .array(z.object({ suffix: zoneName, environments: z.array(envName).min(1).max(100) }).strict())
    .max(1000)
    .optional(),
};

/** A zone in Route 53: its hosted zone; credentials from the AWS SDK's default chain, never here. */
const route53ZoneSchema = z
  .object({
    ...owned,
    provider: z.literal('route53'),
    hostedZoneId: z
      .string()
      .regex(/^(\/hostedzone\/)?[A-Z0-9]{1,32}$/, 'a hosted zone id such as Z0123456789ABCDEFGHIJ')
      .transform((v) => v.replace(/^\/hostedzone\//, '')),
  })
  .strict();

const rfc2136ZoneSchema = z
  .object({
    ...owned,
    provider: z.literal('rfc2136'),
    server: z.object({ host: hostname, port: z.number().int().min(1).max(65535).default(53) }).strict(),
    key: z
      .object({
        name: zoneName,
        algorithm: z.literal('hmac-sha256'),
        secret: z
          .string()
          .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64')
          .optional(),
        secretFile: z.string().startsWith('/').optional(),
      })
      .strict()
      .refine((k) => !!k.secret !== !!k.secretFile, 'give exactly one of secret and secretFile'),
  })
  .strict();

export const dnsConfigSchema = z
  .object({ zones: z.array(z.discriminatedUnion('provider', [rfc2136ZoneSchema, route53ZoneSchema])).max(1000) })
  .strict();

interface ZoneBase {
  zone: string;
  /** Who owns which names: the zone itself (its `environments`) and suffixes inside it; the longest suffix wins. */
  owners: { suffix: string; environments: string[] }[];
}

/** A zone updated with RFC 2136 UPDATEs signed with a TSIG key, at its primary server. */
export interface Rfc2136Zone extends ZoneBase {
  provider: 'rfc2136';
  server: DnsServer;
  key: TsigKey;
}

/** A zone in Route 53. */
export interface Route53Zone extends ZoneBase {
  provider: 'route53';
  hostedZoneId: string;
}

export type ZoneConfig = Rfc2136Zone | Route53Zone;

const norm = (n: string) => n.replace(/\.$/, '').toLowerCase();

export function parseDnsConfig(json: unknown, readSecret: (path: string) => string = (p) => readFileSync(p, 'utf8').trim()): ZoneConfig[] {
  const r = dnsConfigSchema.safeParse(json);
  if (!r.success) throw new Error(`DNS configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data.zones.map((z): ZoneConfig => {
    const base = {
      zone: norm(z.zone),
      owners: [
        ...(z.environments ? [{ suffix: norm(z.zone), environments: z.environments }] : []),
        ...(z.names ?? []).map((n) => ({ suffix: norm(n.suffix), environments: n.environments })),
      ],
    };
    if (z.provider === 'route53') return { ...base, provider: 'route53', hostedZoneId: z.hostedZoneId };
    return {
      ...base,
      provider: 'rfc2136',
      server: { host: z.server.host, port: z.server.port },
      key: { name: norm(z.key.name), algorithm: z.key.algorithm, secret: z.key.secret ?? readSecret(z.key.secretFile ?? '') },
    };
  });
}

let cached: { file: string; zones: ZoneConfig[] } | null = null;

/** The zones from PGHERD_DNS_CONFIG (none when it is not set). */
export function dnsZones(): ZoneConfig[] {
  const file = setting('PGHERD_DNS_CONFIG');
  if (!file) return [];
  if (cached?.file !== file) cached = { file, zones: parseDnsConfig(JSON.parse(readFileSync(file, 'utf8'))) };
  return cached.zones;
}

/** The configuration of `zone`, or an error that says what to configure. */
export function zoneConfig(zone: string, zones = dnsZones()): ZoneConfig {
  const z = zones.find((c) => c.zone === norm(zone));
  if (!z) throw new Error(`no DNS server is configured for zone ${norm(zone)} (PGHERD_DNS_CONFIG)`);
  return z;
}

const within = (name: string, suffix: string) => name === suffix || name.endsWith(`.${suffix}`);

/** The environments that own `name` in `zone` (the longest configured suffix decides); [] for none. */
export function nameOwners(name: string, zone: ZoneConfig): string[] {
  const n = norm(name);
  const best = zone.owners
    .filter((o) => within(n, o.suffix) && within(o.suffix, zone.zone))
    .sort((a, b) => b.suffix.length - a.suffix.length)[0];
  return best?.environments ?? [];
}

/**
 * Why `environment`'s herds may not have `name` (created in pgherd, or sent in an UPDATE), or null
 * when they may: the name must be in the zone, and the zone (or a suffix in it) assigned to the environment.
 */
export function ownershipProblem(name: string, zoneName: string, environment: string, zones = dnsZones()): string | null {
  const zone = zones.find((c) => c.zone === norm(zoneName));
  if (!zone) return `no DNS server is configured for zone ${norm(zoneName)} (PGHERD_DNS_CONFIG)`;
  if (!within(norm(name), zone.zone)) return `${norm(name)} is not in zone ${zone.zone}`;
  const owners = nameOwners(name, zone);
  if (!owners.length)
    return `${norm(name)} belongs to no environment: assign zone ${zone.zone} (or a suffix in it) to environments in PGHERD_DNS_CONFIG`;
  if (!owners.includes(environment)) return `${norm(name)} belongs to ${owners.join(', ')}, not to ${environment}`;
  return null;
}
