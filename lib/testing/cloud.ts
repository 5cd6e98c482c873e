// An EC2 instance type as lib/adapters/aws/ec2 describes it, for tests of the ranking and the resize plan:
// x86_64, HVM, ENA required, not burstable unless said.
import { eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instances, servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import type { TypeInfo } from '@/lib/adapters/aws/ec2';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import type { LabInfo } from '@/lib/lab/lab';
import { priceList } from '@/lib/fleet/cloud/prices';
import { rankTypes } from '@/lib/fleet/cloud/rank';
import type { ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

export const instanceType = (name: string, vcpus: number, memoryGiB: number, more: Partial<TypeInfo> = {}): TypeInfo => ({
  name,
  vcpus,
  memoryGiB,
  architectures: ['x86_64'],
  burstable: false,
  ena: 'required',
  virtualization: ['hvm'],
  currentGeneration: true,
  ...more,
});

/** What resize's prepare reads, for a replica on an EC2 instance with hooks on its herd. */
export function resizePrepared(h: HerdRef, t: InstanceRef | InstanceRef[], state = 'running'): ResizePrepared {
  const on = Array.isArray(t) ? t : [t];
  const live = {
    instanceId: 'i-0abc',
    region: 'eu-west-1',
    availabilityZone: 'eu-west-1a',
    instanceType: 'm6i.large',
    architecture: 'x86_64',
    state,
    privateAddress: on[0]!.address,
    tags: {},
    enaSupport: true,
    virtualization: 'hvm',
    stateReason: '',
    vpcId: 'vpc-0abc',
    account: '123456789012',
  };

  const types = new Map([instanceType('m6i.large', 2, 8), instanceType('m6i.xlarge', 4, 16)].map((x) => [x.name, x]));
  const prices = priceList({});
  const ranking = rankTypes(
    live,
    { instanceType: 'm6i.xlarge' },
    { types, offered: new Set(types.keys()), perHour: (n) => prices.perHour('eu-west-1', n) },
  );
  return {
    rds: new Map(),
    byServer: new Map(
      on.map((m, k) => [
        m.serverId,
        {
          region: 'eu-west-1',
          instanceId: `i-0abc${k}`,
          live: { ...live, instanceId: `i-0abc${k}` },
          ranking,
          recordedType: live.instanceType,
          neighbours: [],
          identity: null,
        },
      ]),
    ),
    herds: new Map([[h.id, { ...h, hooks: { pre: '/opt/hooks/pre', post: '/opt/hooks/post', on: 'worker' as const, timeoutSeconds: 5 } }]]),
    prices: { source: prices.source, date: prices.date },
  };
}

/**
 * The lab's servers given their cloud identity, as EC2 discovery gives it (each server's EC2 instance in
 * the lab's moto), and each instance's id by its server's host name.
 */
export async function discoverLabServers(db: Db, lab: LabInfo): Promise<Map<string, number>> {
  const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) })!;
  await discoverEc2(db, cfg, (region) => ec2Client(region));
  const ids = new Map<string, number>();
  for (const i of await db
    .select({ id: instances.id, host: servers.hostname })
    .from(instances)
    .innerJoin(servers, eq(servers.id, instances.serverId)))
    ids.set(i.host, i.id);
  return ids;
}
