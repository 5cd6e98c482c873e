// The sandbox fleet's shape: environments x herds x members, each member on its own loopback address.
import type { LabBuildName } from './builds';

export interface FleetSpec {
  environments: string[];
  herds: string[];
  replicas: number;
  sites: string[];
  /** The first three octets of the members' loopback addresses (default 127.0.1): a second lab uses another. */
  subnet?: string;
  /** Herds ("environment/herd") that run on another of the lab's Postgres builds than Debian's (lib/lab/builds.ts). */
  builds?: Record<string, LabBuildName>;
}

export const DEFAULT_FLEET: FleetSpec = {
  environments: ['production', 'staging'],
  herds: ['billing', 'orders', 'identity'],
  replicas: 2,
  sites: ['dc-east', 'dc-west'],
  // One herd a minor release behind Debian's 15.18: what the pending maintenance page lists.
  builds: { 'staging/orders': '15-older' },
};

export interface PlannedMember {
  environment: string;
  herd: string;
  hostname: string;
  address: string;
  site: string;
  role: 'primary' | 'replica';
  index: number;
}

const SHORT: Record<string, string> = { production: 'prod', staging: 'stg' };
/** An environment's short name in the lab's host names (production: prod). */
export const shortEnv = (environment: string) => SHORT[environment] ?? environment;

/** Every member of the fleet, primaries first within a herd; address <subnet>.N is unique per member. */
export function planFleet(spec: FleetSpec = DEFAULT_FLEET): PlannedMember[] {
  const out: PlannedMember[] = [];
  let n = 0;
  for (const environment of spec.environments) {
    for (const herd of spec.herds) {
      for (let i = 0; i <= spec.replicas; i++) {
        n++;
        if (n > 229)
          throw new Error(
            'the lab fleet is limited to 229 members (x.x.x.1-229; the rest is for scratch servers, poolers and backup hosts)',
          );
        out.push({
          environment,
          herd,
          hostname: `db-${SHORT[environment] ?? environment}-${herd}-${i + 1}.lab.internal`,
          address: `${spec.subnet ?? '127.0.1'}.${n}`,
          site: spec.sites[i % spec.sites.length]!,
          role: i === 0 ? 'primary' : 'replica',
          index: i,
        });
      }
    }
  }
  return out;
}

/** A lab pooler's server: its host name and address (after the members' addresses). */
export function poolerServer(spec: FleetSpec, environment: string, herd: string, k: number) {
  return {
    hostname: `pgbouncer-${SHORT[environment] ?? environment}-${herd}.lab.internal`,
    address: `${spec.subnet ?? '127.0.1'}.${241 + k}`,
  };
}
