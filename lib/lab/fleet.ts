// The sandbox fleet's shape: environments x herds x members, each member on its own loopback address.

export interface FleetSpec {
  environments: string[];
  herds: string[];
  replicas: number;
  sites: string[];
}

export const DEFAULT_FLEET: FleetSpec = {
  environments: ['production', 'staging'],
  herds: ['billing', 'orders', 'identity'],
  replicas: 2,
  sites: ['dc-east', 'dc-west'],
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

/** Every member of the fleet, primaries first within a herd; address 127.0.1.N is unique per member. */
export function planFleet(spec: FleetSpec = DEFAULT_FLEET): PlannedMember[] {
  const out: PlannedMember[] = [];
  let n = 0;
  for (const environment of spec.environments) {
    for (const herd of spec.herds) {
      for (let i = 0; i <= spec.replicas; i++) {
        n++;
        if (n > 250) throw new Error('the lab fleet is limited to 250 members (127.0.1.1-250)');
        out.push({
          environment,
          herd,
          hostname: `db-${SHORT[environment] ?? environment}-${herd}-${i + 1}.lab.internal`,
          address: `127.0.1.${n}`,
          site: spec.sites[i % spec.sites.length],
          role: i === 0 ? 'primary' : 'replica',
          index: i,
        });
      }
    }
  }
  return out;
}
