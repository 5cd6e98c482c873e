// The lab's AWS: moto (`moto_server`, the AWS emulator) on loopback behind the lab's front
// (aws-front.ts), with an EC2 instance per lab database server (tags for discovery, a type, an
// availability zone per site). The SDK clients of pgherd talk to the front as their endpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CreateSubnetCommand, CreateVpcCommand, DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import {
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  CreateDBParameterGroupCommand,
  CreateDBSubnetGroupCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { randomBytes } from 'node:crypto';
import { freePort } from './ports';
import { sleep, throwIfCancelled, type Identity } from './proc';
import { issueCertificate, type LabCa } from './tls';
import { waitFor } from '@/lib/testing/wait';
import type { AwsFrontConfig } from './aws-front';
import type { LabRoute53 } from './route53';
import type { LabRds } from './lab';
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
  vpcs?: {
    environment: string;
    site: string;
    vpcId: string;
    subnetId: string;
    availabilityZone: string;
    cidr: string;
    /** The TLS files the environment's image gives a launched instance (PGHERD_AWS_ENVIRONMENTS launchTls). */
    launchTls?: { certFile: string; keyFile: string };
  }[];
  /** The environment whose names Route 53 serves (a hosted zone in moto), when the lab has one. */
  route53?: LabRoute53;
  /**
   * S3 over TLS (the front, on a certificate of the lab's CA for `endpoint`, reached at `host`:`port`), and a
   * bucket per environment for its backup repository (made as an admin would make it in AWS).
   */
  s3?: LabS3;
  /** The DB instances moto has for the lab's RDS herds (each backed by a lab Postgres the front drives). */
  rds?: { environment: string; herd: string; identifiers: string[]; subnetGroup: string }[];
}

export interface LabS3 {
  endpoint: string;
  host: string;
  port: number;
  caFile: string;
  buckets: Record<string, string>;
}

/** The name the lab's S3 certificate is for (pgBackRest verifies it; it connects to the front's address). */
export const LAB_S3_ENDPOINT = 's3.lab.internal';

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

/** The S3 front answers over TLS, its certificate verified for LAB_S3_ENDPOINT against the lab's CA. */
function tlsAnswers(host: string, port: number, caFile: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.request(
      { host, port, path: '/', method: 'GET', ca: readFileSync(caFile), servername: LAB_S3_ENDPOINT, timeout: 1000 },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.status < 500;
  } catch {
    return false;
  }
}

/**
 * Until the process just started answers at `url`. It is given as long as it lives (a loaded machine, the
 * suite's lanes all starting at once, took a tsx-compiled front past a fixed 30 s): one that exits first
 * fails at once with its log's end; one alive that still does not answer after `hangMs` is a hang.
 */
async function untilServing(what: string, child: ChildProcess, url: string, logFile: string, hangMs = 180_000): Promise<void> {
  const ended: { how: string | null } = { how: null };
  child.once('exit', (code, signal) => (ended.how = `exited ${String(code ?? signal)}`));
  const deadline = Date.now() + hangMs;
  for (;;) {
    throwIfCancelled();
    if (await answers(url)) return;
    if (ended.how !== null) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`${what} ${ended.how} before it answered:\n${tail}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} runs but has not answered ${url} in ${String(hangMs / 1000)} s`);
    await sleep(100);
  }
}

export async function startAws(
  id: Identity,
  dir: string,
  servers: {
    hostname: string;
    address: string;
    site: string;
    environment: string;
    herd: string;
    dataDirectory: string;
    logFile: string;
    binDir?: string;
  }[],
  sites: string[],
  pgBin: string,
  track: (p: { name: string; pid: number; program: string; signal: NodeJS.Signals }) => void,
  /** With the lab's CA: S3 over TLS, and a bucket for each of these environments. */
  s3?: { ca: LabCa; environments: string[] },
  /** Addresses an instance launched in an environment's subnet gets, and the host key its sshd there presents. */
  launch: { environment: string; address: string; fingerprint: string }[] = [],
  /** RDS herds: a DB instance per member in moto, its endpoint the member's Postgres. */
  rds: LabRds[] = [],
): Promise<LabAws> {
  const motoPort = await freePort();
  const frontPort = await freePort();
  const s3Port = s3 ? await freePort() : 0;
  const logFile = path.join(dir, 'log', 'moto.log');
  const log = openSync(logFile, 'a');
  const moto = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', String(motoPort)], { detached: true, stdio: ['ignore', log, log] });
  moto.unref();
  track({ name: 'moto', pid: moto.pid!, program: 'moto_server', signal: 'SIGTERM' });
  const motoUrl = `http://127.0.0.1:${motoPort}`;
  await untilServing('moto_server', moto, `${motoUrl}/moto-api/`, logFile);

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
    hosts[instanceId] = [
      ...(hosts[instanceId] ?? []),
      { dataDirectory: s.dataDirectory, logFile: s.logFile, ...(s.binDir ? { binDir: s.binDir } : {}) },
    ];
  }
  const rdsMade: NonNullable<LabAws['rds']> = [];
  if (rds.length) {
    const client = new RDSClient({ endpoint: motoUrl, region: LAB_REGION, credentials });
    for (const h of rds) {
      const source = h.members.find((m) => m.role === 'primary')!;
      const zone = zoneOfSite(sites, source.site);
      let vpc = vpcs.find((v) => v.environment === h.environment);
      if (!vpc) {
        vpc = await labVpc(ec2, { environment: h.environment, site: source.site, address: source.address }, zone);
        vpcs.push(vpc);
      }
      const subnetGroup = `pgherd-lab-${h.environment}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
      if (!rdsMade.some((r) => r.subnetGroup === subnetGroup))
        await client.send(
          new CreateDBSubnetGroupCommand({
            DBSubnetGroupName: subnetGroup,
            DBSubnetGroupDescription: `the lab's ${h.environment} subnets`,
            SubnetIds: [vpc.subnetId],
          }),
        );
      const tags = [
        { Key: 'pgherd:environment', Value: h.environment },
        { Key: 'pgherd:herd', Value: h.herd },
      ];
      // A DB parameter group of the herd's own (RDS's default groups cannot be changed): Apply settings writes it.
      const parameterGroup = `pgherd-lab-${h.environment}-${h.herd}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
      await client.send(
        new CreateDBParameterGroupCommand({
          DBParameterGroupName: parameterGroup,
          DBParameterGroupFamily: 'postgres15',
          Description: `the lab's ${h.environment}/${h.herd} settings`,
        }),
      );
      await client.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: source.identifier,
          DBParameterGroupName: parameterGroup,
          DBInstanceClass: source.instanceClass,
          Engine: 'postgres',
          EngineVersion: '15.8',
          AllocatedStorage: 100,
          StorageType: 'gp3',
          MasterUsername: 'postgres',
          MasterUserPassword: randomBytes(18).toString('base64url'),
          DBSubnetGroupName: subnetGroup,
          ...(h.multiAz ? { MultiAZ: true } : { AvailabilityZone: zone }),
          Port: source.port,
          Tags: tags,
        }),
      );
      for (const m of h.members.filter((x) => x !== source))
        await client.send(
          new CreateDBInstanceReadReplicaCommand({
            DBInstanceIdentifier: m.identifier,
            SourceDBInstanceIdentifier: source.identifier,
            DBParameterGroupName: parameterGroup,
            DBInstanceClass: m.instanceClass,
            AvailabilityZone: zoneOfSite(sites, m.site),
            Tags: tags,
          }),
        );
      rdsMade.push({ environment: h.environment, herd: h.herd, identifiers: h.members.map((m) => m.identifier), subnetGroup });
    }
    client.destroy();
  }
  ec2.destroy();

  const capacityFile = path.join(dir, 'aws-capacity.json');
  writeFileSync(capacityFile, JSON.stringify({ insufficient: [] }));
  const s3Cert = s3
    ? await issueCertificate(id, s3.ca, path.join(dir, 'aws-tls'), 's3', {
        ips: ['127.0.0.1'],
        // pgBackRest (2.45) checks the address it connects to (repo1-storage-host) against the certificate's
        // names, as a string: never against its IP addresses.
        names: [LAB_S3_ENDPOINT, '127.0.0.1'],
      })
    : null;
  const cfg: AwsFrontConfig = {
    port: frontPort,
    motoUrl,
    region: LAB_REGION,
    pgBin,
    identity: id,
    capacityFile,
    hosts,
    launch: { slots: launch, subnets: Object.fromEntries(vpcs.map((v) => [v.subnetId, v.environment])) },
    ...(s3Cert ? { s3: { port: s3Port, certFile: s3Cert.certFile, keyFile: s3Cert.keyFile } } : {}),
    ...(rds.length
      ? {
          rds: {
            dir: path.join(dir, 'rds'),
            spares: rds.flatMap((h) => h.spares.map((x) => ({ ...x, environment: h.environment }))),
            backing: Object.fromEntries(
              rds.flatMap((h) =>
                h.members.map((m) => [
                  m.identifier,
                  {
                    address: m.address,
                    port: m.port,
                    dataDirectory: m.dataDirectory,
                    logFile: m.logFile,
                    ...(m.binDir ? { binDir: m.binDir } : {}),
                  },
                ]),
              ),
            ),
          },
        }
      : {}),
  };
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
  await untilServing('the lab AWS front', front, `${endpoint}/moto-api/`, logFile);
  let labS3: LabS3 | undefined;
  if (s3) {
    const buckets = Object.fromEntries(s3.environments.map((e) => [e, `pgherd-backups-${e.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`]));
    for (const b of Object.values(buckets)) {
      const r = await fetch(`${motoUrl}/${b}`, { method: 'PUT' });
      if (!r.ok) throw new Error(`moto made no bucket ${b}: ${String(r.status)} ${await r.text()}`);
    }
    labS3 = { endpoint: LAB_S3_ENDPOINT, host: '127.0.0.1', port: s3Port, caFile: s3.ca.caFile, buckets };
    await waitFor('the lab S3 front', async () => ((await tlsAnswers(labS3!.host, s3Port, s3.ca.caFile)) ? true : undefined), 30_000).catch(
      (err: unknown) => {
        // What moto and the front said, for a start that failed once on a fresh machine and could not be read after.
        const said = readFileSync(path.join(dir, 'log', 'moto.log'), 'utf8')
          .split('\n')
          .slice(-30)
          .join('\n');
        throw new Error(`${err instanceof Error ? err.message : String(err)}; the last of ${path.join(dir, 'log', 'moto.log')}:\n${said}`);
      },
    );
  }
  return {
    endpoint,
    motoUrl,
    region: LAB_REGION,
    ...credentials,
    capacityFile,
    instances,
    discoveryTags,
    vpcs,
    ...(labS3 ? { s3: labS3 } : {}),
    ...(rdsMade.length ? { rds: rdsMade } : {}),
  };
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
  return JSON.stringify(
    (aws.vpcs ?? []).map((v) => ({
      environment: v.environment,
      vpc: v.vpcId,
      ...(v.launchTls ? { launchTls: v.launchTls } : {}),
    })),
  );
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
    // So does the lab's RDS (its changes take the front's 2 s).
    PGHERD_RDS_POLL_SECONDS: '1',
    PGHERD_RDS_WAIT_SECONDS: '120',
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
  return {
    PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [aws.region], tags: aws.discoveryTags, ...(aws.rds?.length ? { rds: true } : {}) }),
  };
}
