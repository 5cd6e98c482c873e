// The lab's AWS: moto (`moto_server`, the AWS emulator) on loopback behind the lab's front
// (aws-front.ts), with an EC2 instance per lab database server (tags for discovery, a type, an
// availability zone per site). The SDK clients of pgherd talk to the front as their endpoint.
import { spawn } from 'node:child_process';
import { existsSync, openSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateSubnetCommand, CreateVpcCommand, DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { freePort } from './ports';
import { type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';
import type { AwsFrontConfig } from './aws-front';
import type { LabRoute53 } from './route53';
import { setting } from '@/lib/settings/settings';

// The SDK warns once per process that its 2027 releases need Node 22: true, and said in the README; the
// lab's own processes (the demo, the tests, the front) need not repeat it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface LabAws {
  /** The endpoint pgherd's clients use (the front). */
  endpoint: string;
  /** moto itself (tests that look behind the front). */
  motoUrl: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A test lists types (or type@zone) here to make StartInstances fail for capacity. */
  capacityFile: string;
  instances: { server: string; instanceId: string; instanceType: string; availabilityZone: string }[];
  /** The tags discovery looks for on every lab database server. */
  discoveryTags: Record<string, string>;
  /**
   * A VPC per environment and site (a subnet is in one zone, and a site's members are in its zone), each
   * with one subnet whose instances have their server's loopback address as private address: what
   * PGHERD_AWS_ENVIRONMENTS maps to the environment. moto's account is 123456789012.
   */
  vpcs?: { environment: string; site: string; vpcId: string; subnetId: string; availabilityZone: string; cidr: string }[];
  /** The environment whose names Route 53 serves (a hosted zone in moto), when the lab has one. */
  route53?: LabRoute53;
}

export const LAB_REGION = 'eu-west-1';
export const LAB_INSTANCE_TYPE = 'm6i.large';
const zoneOfSite = (sites: string[], site: string) => `${LAB_REGION}${'abc'[Math.max(0, sites.indexOf(site)) % 3]!}`;

/** moto_server: PGHERD_MOTO_SERVER, else on PATH, else the bootstrap's own virtual environment. */
export function motoServerPath(): string {
  const given = setting('PGHERD_MOTO_SERVER');
  if (given) return given;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, 'moto_server');
    if (dir && existsSync(p)) return p;
  }
  const venv = path.join(os.homedir(), '.cache', 'pgherd', 'moto', 'bin', 'moto_server');
  if (existsSync(venv)) return venv;
  throw new Error(
    "moto_server not found: run `npm test` or `npm run demo` once (their bootstrap installs it), or pip install 'moto[server]'",
  );
}

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.status < 500;
  } catch {
    return false;
  }
}

export async function startAws(
  id: Identity,
  dir: string,
  servers: { hostname: string; address: string; site: string; environment: string; herd: string; dataDirectory: string; logFile: string }[],
  sites: string[],
  pgBin: string,
  track: (p: { name: string; pid: number; program: string; signal: NodeJS.Signals }) => void,
): Promise<LabAws> {
  const motoPort = await freePort();
  const frontPort = await freePort();
  const log = openSync(path.join(dir, 'log', 'moto.log'), 'a');
  const moto = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', String(motoPort)], { detached: true, stdio: ['ignore', log, log] });
  moto.unref();
  track({ name: 'moto', pid: moto.pid!, program: 'moto_server', signal: 'SIGTERM' });
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  await waitFor('moto_server', async () => ((await answers(`${motoUrl}/moto-api/`)) ? true : undefined), 30_000);

  const credentials = { accessKeyId: 'lab', secretAccessKey: 'lab' };
  const ec2 = new EC2Client({ endpoint: motoUrl, region: LAB_REGION, credentials });
  const images = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
  const image = images.Images?.find((i) => !/windows/i.test(i.Name ?? ''))?.ImageId ?? images.Images?.[0]?.ImageId;
  if (!image) throw new Error('moto offers no x86_64 image');
  const discoveryTags = { Role: 'PostgreSQL' };
  const instances: LabAws['instances'] = [];
  const hosts: AwsFrontConfig['hosts'] = {};
  const vpcs: NonNullable<LabAws['vpcs']> = [];
  for (const s of servers) {
    const availabilityZone = zoneOfSite(sites, s.site);
    const vpc = vpcs.find((v) => v.environment === s.environment && v.site === s.site) ?? (await labVpc(ec2, s, availabilityZone));
    if (!vpcs.includes(vpc)) vpcs.push(vpc);
    const r = await ec2.send(
      new RunInstancesCommand({
        ImageId: image,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: LAB_INSTANCE_TYPE,
        SubnetId: vpc.subnetId,
        PrivateIpAddress: s.address,
        Placement: { AvailabilityZone: availabilityZone },
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'Name', Value: s.hostname },
              { Key: 'Role', Value: 'PostgreSQL' },
              { Key: 'pgherd:environment', Value: s.environment },
              { Key: 'pgherd:herd', Value: s.herd },
              { Key: 'pgherd:site', Value: s.site },
            ],
          },
        ],
      }),
    );
    const instanceId = r.Instances?.[0]?.InstanceId;
    if (!instanceId) throw new Error(`moto ran no instance for ${s.hostname}`);
    instances.push({ server: s.hostname, instanceId, instanceType: LAB_INSTANCE_TYPE, availabilityZone });
    hosts[instanceId] = [...(hosts[instanceId] ?? []), { dataDirectory: s.dataDirectory, logFile: s.logFile }];
  }
  ec2.destroy();

  const capacityFile = path.join(dir, 'aws-capacity.json');
  writeFileSync(capacityFile, JSON.stringify({ insufficient: [] }));
  const cfg: AwsFrontConfig = { port: frontPort, motoUrl, region: LAB_REGION, pgBin, identity: id, capacityFile, hosts };
  const cfgFile = path.join(dir, 'aws-front.json');
  writeFileSync(cfgFile, JSON.stringify(cfg));
  const root = path.resolve(__dirname, '..', '..');
  const front = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'lib', 'lab', 'aws-front.ts'), cfgFile], {
    cwd: root,
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  front.unref();
  track({ name: 'aws-front', pid: front.pid!, program: 'aws-front.ts', signal: 'SIGTERM' });
  const endpoint = `http://127.0.0.1:${frontPort}`;
  await waitFor('the lab AWS front', async () => ((await answers(`${endpoint}/moto-api/`)) ? true : undefined), 30_000);
  return { endpoint, motoUrl, region: LAB_REGION, ...credentials, capacityFile, instances, discoveryTags, vpcs };
}

/** moto's account when no other is asked for: every lab instance is in it. */
export const LAB_ACCOUNT = '123456789012';

/** An environment's VPC for one site: the /24 of its members' loopback addresses (VPCs may overlap). */
async function labVpc(ec2: EC2Client, s: { environment: string; site: string; address: string }, availabilityZone: string) {
  const cidr = `${s.address.split('.').slice(0, 3).join('.')}.0/24`;
  const v = await ec2.send(new CreateVpcCommand({ CidrBlock: cidr }));
  const vpcId = v.Vpc?.VpcId;
  if (!vpcId) throw new Error(`moto made no VPC for ${s.environment} in ${s.site}`);
  const sub = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: cidr, AvailabilityZone: availabilityZone }));
  const subnetId = sub.Subnet?.SubnetId;
  if (!subnetId) throw new Error(`moto made no subnet in ${vpcId}`);
  return { environment: s.environment, site: s.site, vpcId, subnetId, availabilityZone, cidr };
}

/**
 * The lab's PGHERD_AWS_ENVIRONMENTS: each environment's VPCs. The account itself is no environment's:
 * an instance outside those VPCs (moto's default VPC) is nobody's.
 */
export function labAwsEnvironments(aws: LabAws): string {
  return JSON.stringify((aws.vpcs ?? []).map((v) => ({ environment: v.environment, vpc: v.vpcId })));
}

/** The settings that point pgherd's AWS clients at the lab (credentials through the SDK's environment provider). */
export function labAwsEnv(aws: LabAws): Record<string, string> {
  return {
    PGHERD_AWS_ENDPOINT: aws.endpoint,
    PGHERD_AWS_REGION: aws.region,
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    // The lab's EC2 answers at once: ask every second, not every 5.
    PGHERD_EC2_POLL_SECONDS: '1',
    // A lab started before its VPCs were per environment has none: its instances are nobody's.
    ...(aws.vpcs?.length ? { PGHERD_AWS_ENVIRONMENTS: labAwsEnvironments(aws) } : {}),
    // The lab's Route 53 is INSYNC about a second after a change: ask five times a second.
    PGHERD_ROUTE53_POLL_SECONDS: '0.2',
    PGHERD_ROUTE53_WAIT_SECONDS: '30',
  };
}

/**
 * EC2 discovery of the lab's instances by their Role tag: for the console and worker processes the lab
 * starts (the demo, the browser tests), not for workers tests start in-process (a pass at every
 * start would write the shared lab's servers under the other tests).
 */
export function labDiscoveryEnv(aws: LabAws): Record<string, string> {
  return { PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [aws.region], tags: aws.discoveryTags }) };
}
