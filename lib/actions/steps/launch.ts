// A new EC2 instance as a step: launched like the herd's primary (its image, subnet, security groups, key
// pair and instance profile), of the type the admin chose and priced on the confirmation page; its SSH host
// key pinned from what cloud-init printed on its console (read through EC2, never taken on first contact);
// registered as a server of the herd's environment; reached over SSH. Its cleanup terminates it and removes
// its server unless what the target built on it is kept. Restores and drills use it; adding replicas will.
import { randomUUID } from 'node:crypto';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { awsSettings, awsUnavailable, ec2Client } from '@/lib/adapters/aws/config';
import { describeInstances, waitBounds, type CloudInstance, type WaitBounds } from '@/lib/adapters/aws/ec2';
import {
  consoleFingerprints,
  consoleText,
  launchInstance,
  launchTemplateOf,
  terminateInstance,
  waitLaunched,
  type HostKeyFingerprints,
  type LaunchTemplate,
} from '@/lib/adapters/aws/ec2-launch';
import { awsEnvironments, environmentOfInstance, placeOf } from '@/lib/adapters/aws/environments';
import { latestSpotPrices } from '@/lib/adapters/aws/ec2-spot';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { HostKeyMismatchError } from '@/lib/adapters/ssh/ssh-errors';
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import { catalogueFor, typesIn } from '@/lib/fleet/cloud/catalogue';
import { byPrice } from '@/lib/fleet/cloud/rank';
import { HOURS_PER_MONTH, priceListFor } from '@/lib/fleet/cloud/prices';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { setting } from '@/lib/settings/settings';

/** The instance type of a new instance (left out: none is launched). */
export const instanceTypeParam = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/, 'an EC2 instance type such as m6i.large')
  .max(40);

/** What a launch will do, as planned: shown on the confirmation page and checked again when it runs. */
export interface LaunchPlan {
  template: LaunchTemplate;
  instanceType: string;
  vcpus: number;
  memoryGiB: number;
  /** On-demand, in USD; null when the price list has none for the type. */
  perHour: number | null;
  priceSource: string;
  environmentId: number;
  environment: string;
  /** The TLS files an instance launched there holds (PGHERD_AWS_ENVIRONMENTS launchTls), when the configuration says. */
  tls?: { certFile: string; keyFile: string };
  /** Bought on the spot market: EC2's latest spot price in its zone (null: none published). */
  spot?: { perHour: number | null };
  /** The server it is launched like (the herd's primary's), whose site, SSH user and port it gets. */
  like: { hostname: string; site: string; sshUser: string; sshPort: number };
  /** Chosen by size: how (the least asked, how many types fit, on which market's price). */
  chosen?: string;
}

/** A new instance by size: the cheapest type offered in its zone with at least this (burstable types only when asked). */
export interface SizeWish {
  minVcpus?: number | undefined;
  minMemoryGiB?: number | undefined;
  burstable?: boolean | undefined;
}

/**
 * The cheapest type offered in the zone that meets `wish` and runs the image's architecture, by the
 * market's price (spot: EC2's latest spot prices of every candidate; on demand: the price list), every
 * candidate priced before any is dropped; or why none does.
 */
async function chooseBySize(
  client: EC2Client,
  template: LaunchTemplate,
  wish: SizeWish,
  spot: boolean,
): Promise<{ name: string; why: string } | Refusal> {
  const prices = await priceListFor([template.region]);
  const c = await catalogueFor(client, template.region, template.availabilityZone, { endpoint: awsSettings().endpoint ?? '', prices });
  const vcpus = wish.minVcpus ?? 0;
  const mem = wish.minMemoryGiB ?? 0;
  const fits = [...c.types.values()].filter(
    (t) =>
      t.vcpus >= vcpus &&
      t.memoryGiB >= mem &&
      (wish.burstable === true || !t.burstable) &&
      (!template.architecture || t.architectures.includes(template.architecture)) &&
      c.offered.has(t.name),
  );
  const least = `at least ${String(vcpus)} vCPU and ${String(mem)} GiB`;
  if (!fits.length)
    return refuse(
      'params',
      `no instance type offered in ${template.availabilityZone} has ${least} for ${template.architecture || 'its image'}${wish.burstable ? '' : ', burstable types left out'}`,
    );
  const spotPrices = spot
    ? await latestSpotPrices(
        client,
        template.availabilityZone,
        fits.map((t) => t.name),
      )
    : null;
  const priceOf = (name: string) => (spotPrices ? (spotPrices.get(name)?.perHour ?? null) : c.perHour(name));
  const ranked = fits
    .map((t) => ({ name: t.name, vcpus: t.vcpus, memoryGiB: t.memoryGiB, perHour: priceOf(t.name), perMonth: null }))
    .sort(byPrice);
  const [first] = ranked;
  if (!first) return refuse('params', `no instance type offered in ${template.availabilityZone} has ${least}`);
  return {
    name: first.name,
    why: `the cheapest ${spot ? 'on spot' : 'on demand'} of ${String(fits.length)} types offered in ${template.availabilityZone} with ${least} (${first.name}: ${String(first.vcpus)} vCPU, ${String(first.memoryGiB)} GiB)`,
  };
}

/**
 * The launch of a new instance like the herd's primary, or why there can be none: AWS not configured,
 * the primary not an EC2 instance pgherd knows, its VPC not the herd's environment's (as
 * PGHERD_AWS_ENVIRONMENTS says), the type unknown in the region or of another architecture.
 */
export async function planLaunch(
  db: Db,
  h: HerdRef,
  wanted: string | SizeWish,
  opts: { like?: InstanceRef; spot?: boolean } = {},
): Promise<LaunchPlan | Refusal> {
  const source = opts.like ?? h.members.find((m) => m.role === 'primary') ?? h.members[0];
  if (!source) return refuse('not-applicable', `${h.label} has no members: there is no host to launch one like`);
  const whose = opts.like ? source.label : `${source.hostname} (the herd's primary)`;
  const r = await db.execute<{
    hostname: string;
    site: string;
    ssh_user: string;
    ssh_port: number;
    cloud_provider: string | null;
    cloud_region: string | null;
    cloud_instance_id: string | null;
  }>(
    sql`SELECT hostname, site, ssh_user, ssh_port, cloud_provider, cloud_region, cloud_instance_id FROM servers WHERE id = ${source.serverId}`,
  );
  const s = r.rows[0];
  if (!s?.cloud_instance_id || !s.cloud_region || s.cloud_provider !== 'aws')
    return refuse(
      'not-applicable',
      `${whose} is not an EC2 instance pgherd knows: a new instance is launched like it (its image, subnet, security groups), so there is nothing to launch it like`,
    );
  const unavailable = await awsUnavailable();
  if (unavailable) return refuse('not-applicable', unavailable);
  const client = ec2Client(s.cloud_region);
  try {
    const template = await launchTemplateOf(client, s.cloud_region, s.cloud_instance_id);
    if (!template)
      return refuse('gone', `EC2 no longer knows ${s.cloud_instance_id} (${source.hostname}): there is nothing to launch one like`);
    const env = environmentOfInstance(awsEnvironments(), { vpcId: template.vpcId, account: template.account, region: template.region });
    if (env?.environment !== h.environment)
      return refuse(
        'not-applicable',
        `${source.hostname} runs in ${placeOf(template)}, which PGHERD_AWS_ENVIRONMENTS maps to ${env ? env.environment : 'no environment'}, not ${h.environment}: a new instance is launched only where the configuration says ${h.environment} is`,
      );
    let chosen: string | undefined;
    let instanceType: string;
    if (typeof wanted === 'string') instanceType = wanted;
    else {
      const pick = await chooseBySize(client, template, wanted, opts.spot ?? false);
      if (pick instanceof Refusal) return pick;
      instanceType = pick.name;
      chosen = pick.why;
    }
    const type = (await typesIn(client, s.cloud_region, awsSettings().endpoint ?? '')).get(instanceType);
    if (!type) return refuse('params', `${s.cloud_region} has no instance type ${instanceType}`);
    if (template.architecture && !type.architectures.includes(template.architecture))
      return refuse(
        'params',
        `${instanceType} runs ${type.architectures.join(', ')}, not ${template.architecture} (the image ${template.imageId} of ${source.hostname})`,
      );
    const prices = await priceListFor([s.cloud_region]);
    const spot = opts.spot ? await spotPriceOf(client, instanceType, template.availabilityZone) : undefined;
    return {
      template,
      instanceType,
      ...(opts.spot ? { spot: { perHour: spot ?? null } } : {}),
      ...(env.launchTls ? { tls: env.launchTls } : {}),
      vcpus: type.vcpus,
      memoryGiB: type.memoryGiB,
      perHour: prices.perHour(s.cloud_region, instanceType),
      priceSource: `${prices.source}, ${prices.date}`,
      environmentId: h.environmentId,
      environment: h.environment,
      like: { hostname: s.hostname, site: s.site, sshUser: s.ssh_user, sshPort: s.ssh_port },
      ...(chosen ? { chosen } : {}),
    };
  } finally {
    client.destroy();
  }
}

/** EC2's latest spot price of the type in the zone; null when it publishes none. */
async function spotPriceOf(client: EC2Client, instanceType: string, zone: string): Promise<number | null> {
  return (await latestSpotPrices(client, zone, [instanceType])).get(instanceType)?.perHour ?? null;
}

/** The price of a launch, in words: per hour and per month, and for `hours` when given. */
export function launchPrice(l: LaunchPlan, hours?: number): string {
  if (l.spot) {
    const d = (v: number) => `$${v < 1 ? v.toFixed(4) : v.toFixed(2)}`;
    if (l.spot.perHour === null) return `spot, no spot price published for ${l.instanceType} in ${l.template.availabilityZone}`;
    const saves =
      l.perHour !== null ? `, saving ${d((l.perHour - l.spot.perHour) * HOURS_PER_MONTH)}/month on the on-demand ${d(l.perHour)}/h` : '';
    return `${d(l.spot.perHour)}/h on spot (${d(l.spot.perHour * HOURS_PER_MONTH)}/month${saves}); EC2 may take it back with two minutes' notice`;
  }
  if (l.perHour === null) return `no price known for ${l.instanceType} in ${l.template.region} (${l.priceSource})`;
  const d = (v: number) => `$${v < 1 ? v.toFixed(3) : v.toFixed(2)}`;
  return `${d(l.perHour)}/h on demand (${d(l.perHour * HOURS_PER_MONTH)}/month)${hours ? `, about ${d(l.perHour * hours)} for ${hours < 1 ? `${Math.max(1, Math.round(hours * 60))} minutes` : `${Math.round(hours * 10) / 10} h`}` : ''}; ${l.priceSource}`;
}

/** The server a target lays out on: a placeholder until the launch fills it in (the steps read it when they run). */
export interface LaunchedServer {
  id: number;
  hostname: string;
  address: string;
  ssh: SshTarget;
}

/** A server to be launched: what the steps say before it exists, filled in by the launch step. */
export function serverToLaunch(
  l: LaunchPlan,
): LaunchedServer & { environmentId: number; environment: string; approval: null; instances: 0 } {
  return {
    id: 0,
    hostname: `a new ${l.instanceType} instance`,
    address: '',
    environmentId: l.environmentId,
    environment: l.environment,
    approval: null,
    instances: 0,
    ssh: { host: '', port: l.like.sshPort, username: l.like.sshUser, hostKeyFingerprint: null, environment: l.environment },
  };
}

/** What a launch has done so far (in the target's state). */
export interface LaunchState {
  rowId: number | null;
  instanceId: string | null;
  serverId: number | null;
  /** What was built on it is kept (a restored herd): its cleanup leaves it. */
  kept: boolean;
}

export const newLaunchState = (): LaunchState => ({ rowId: null, instanceId: null, serverId: null, kept: false });

/** The tags EC2 discovery filters on (PGHERD_AWS_DISCOVERY), a `*` given the template's own value. */
function discoveryTags(template: Record<string, string>): Record<string, string> {
  const wanted = setting('PGHERD_AWS_DISCOVERY')?.tags ?? {};
  return Object.fromEntries(
    Object.entries(wanted).flatMap(([k, v]) => (v !== '*' ? [[k, v]] : template[k] !== undefined ? [[k, template[k]]] : [])),
  );
}

/** The host key to pin of those the console lists: the one ssh2 asks for first (ed25519, then ECDSA, then RSA). */
export function keyToPin(f: HostKeyFingerprints): string | null {
  return f.ed25519 ?? f.ecdsa ?? f.rsa ?? null;
}

/** The launch step, its cleanup the termination; `server` is filled in once the instance answers over SSH. */
export function launchStep<S>(
  l: LaunchPlan,
  server: LaunchedServer,
  state: (s: S) => LaunchState,
  purpose: { kind: string; name: string },
): ActionStep<S> {
  const t = l.template;
  return {
    name: `launch a ${l.spot ? 'spot ' : ''}${l.instanceType} instance`,
    does: {
      kind: 'ec2.launch',
      like: t.like,
      image: t.imageId,
      subnet: t.subnetId,
      type: l.instanceType,
      groups: t.securityGroupIds,
      ...(l.spot ? { market: 'spot' } : {}),
    },
    says: `launch a ${l.spot ? 'spot ' : ''}${l.instanceType} (${l.vcpus} vCPU, ${l.memoryGiB} GiB) in ${t.subnetId} (${t.availabilityZone}) from ${t.imageId}, like ${l.like.hostname} (its security groups${t.keyName ? `, key pair ${t.keyName}` : ''}); pin its SSH host key from its console (cloud-init's fingerprints); register it as a server of ${l.environment}; wait until it answers over SSH`,
    timeoutMs: (waitBounds().maxWaitSeconds * 3 + 120) * 1000,
    run: (x) => launch(x, l, server, state(x.state), purpose),
    always: {
      name: 'terminate the instance unless it is kept',
      does: { kind: 'ec2.terminate-launched' },
      says: `unless what was built on it is kept: terminate the instance and remove its server from the inventory`,
      timeoutMs: (waitBounds().maxWaitSeconds + 60) * 1000,
      givesBack: true,
      run: async (x) => {
        const st = state(x.state);
        if (st.kept || st.rowId === null) return;
        await terminateLaunched(x.deps.db, st.rowId, 'terminated by its cleanup', x.signal);
      },
    },
  };
}

/** The launch as it runs: the row first, RunInstances, its key pinned from its console, its server registered, then SSH; each recorded in `st` as it is done. */
async function launch<S>(
  x: RunContext<S>,
  l: LaunchPlan,
  server: LaunchedServer,
  st: LaunchState,
  purpose: { kind: string; name: string },
) {
  const { db } = x.deps;
  const t = l.template;
  // Its own token, never one another launch (another pgherd's, or this one's database restored from an
  // older backup) could have used: EC2 answers a token it has seen with that launch's instance.
  const token = `pgherd-${randomUUID()}`;
  // Recorded before EC2 is asked: a worker killed between the call and its answer leaves a row the next
  // reconcile finds the instance by (its token is on the instance as a tag).
  const row = await db.execute<{ id: number }>(sql`
    INSERT INTO launched_instances (target_id, environment_id, region, client_token, instance_type, spot)
    VALUES (${x.deps.targetId ?? null}, ${l.environmentId}, ${t.region}, ${token}, ${l.instanceType}, ${!!l.spot})
    RETURNING id`);
  st.rowId = row.rows[0]?.id ?? null;
  const client = ec2Client(t.region);
  try {
    const bounds = { ...waitBounds(), signal: x.signal };
    const launched = await launchTokened(x, client, l, token, purpose);
    st.instanceId = launched.instanceId;
    await db.execute(sql`UPDATE launched_instances SET instance_id = ${launched.instanceId} WHERE id = ${st.rowId}`);
    x.note({ stdout: `EC2 launched ${launched.instanceId} (${l.instanceType}) in ${t.availabilityZone}` });
    await waitLaunched(client, launched.instanceId, bounds);
    const { address, privateName } = await privateAddressOf(client, launched.instanceId, t.region);
    // EC2 gives a terminated instance's address to a new one: the inventory may keep a server of that name
    // (discovery marks it gone, never deletes it). The new server is then named by its instance id too.
    const clash = await db.execute(sql`SELECT 1 FROM servers WHERE hostname = ${privateName}`);
    const hostname = clash.rows.length ? `${launched.instanceId}.${privateName}` : privateName;
    // The host key, as the host itself printed it at first boot; waited for (cloud-init prints it once
    // the keys are made, a little after EC2 says running).
    const deadline = Date.now() + bounds.maxWaitSeconds * 1000;
    const pin = await consoleHostKey(x, client, launched.instanceId, bounds, deadline);
    x.note({ stdout: `its console says its SSH host key is ${pin}` });
    const srv = await db.execute<{ id: number }>(
      withParams(sqlFile('lib/actions/steps/register-launched-server.sql'), [
        hostname,
        l.environmentId,
        address,
        l.like.site,
        l.like.sshPort,
        l.like.sshUser,
        pin,
        t.region,
        launched.instanceId,
        l.instanceType,
        t.availabilityZone,
        t.architecture || null,
        JSON.stringify(launched.tags),
      ]),
    );
    const serverId = srv.rows[0]?.id;
    if (serverId === undefined) throw new Error(`${hostname} was not registered`);
    st.serverId = serverId;
    await db.execute(sql`UPDATE launched_instances SET server_id = ${serverId} WHERE id = ${st.rowId}`);
    Object.assign(server, { id: serverId, hostname, address });
    Object.assign(server.ssh, { host: address, hostKeyFingerprint: pin, serverId });
    await untilSshAnswers(x, server, hostname, pin, deadline);
    x.note({ stdout: `${hostname} (${address}) answers over SSH with the key its console printed` });
  } finally {
    client.destroy();
  }
}

/** RunInstances like the template, tagged for discovery and with this launch's token; the instance proven this launch's by it. */
async function launchTokened<S>(
  x: RunContext<S>,
  client: EC2Client,
  l: LaunchPlan,
  token: string,
  purpose: { kind: string; name: string },
): Promise<CloudInstance> {
  const t = l.template;
  const launched = await launchInstance(
    client,
    t,
    l.instanceType,
    {
      // The tags EC2 discovery looks for (a value of * is the template's own): discovery then keeps the
      // server's cloud identity, and does not take it for gone.
      ...discoveryTags(t.tags),
      Name: purpose.name,
      'pgherd:environment': l.environment,
      'pgherd:launched-by': `operation ${String(x.deps.operation?.id ?? '?')}`,
      'pgherd:purpose': purpose.kind,
      'pgherd:launch-token': token,
      ...(l.spot ? { 'pgherd:market': 'spot' } : {}),
    },
    token,
    { spot: !!l.spot },
  );
  // The instance EC2 answered with is this launch's: it carries the token this launch made.
  if (launched.tags['pgherd:launch-token'] !== token)
    throw new Error(
      `EC2 answered RunInstances with ${launched.instanceId}, which does not carry this launch's token (${token}): it is not this launch's, and nothing is done on it`,
    );
  return launched;
}

/** Its private address as EC2 describes it running, and its private DNS name (made from the address when EC2 gives none). */
async function privateAddressOf(client: EC2Client, instanceId: string, region: string): Promise<{ address: string; privateName: string }> {
  const [running] = await client
    .send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))
    .then((r) => (r.Reservations ?? []).flatMap((v) => v.Instances ?? []));
  const address = running?.PrivateIpAddress;
  if (!address) throw new Error(`${instanceId} runs without a private address`);
  const privateName = running.PrivateDnsName || `ip-${address.replace(/\./g, '-')}.${region}.compute.internal`;
  return { address, privateName };
}

/** The SSH host key to pin, as cloud-init printed it on the console; waited for until `deadline`, else the launch fails. */
async function consoleHostKey<S>(
  x: RunContext<S>,
  client: EC2Client,
  instanceId: string,
  bounds: WaitBounds,
  deadline: number,
): Promise<string> {
  let pin: string | null = null;
  for (let wait = 1000; ; wait = Math.min(wait * 1.5, bounds.maxDelaySeconds * 1000)) {
    pin = keyToPin(consoleFingerprints(await consoleText(client, instanceId, x.signal)));
    if (pin || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, wait));
  }
  if (!pin)
    throw new Error(
      `${instanceId}'s console shows no SSH host key fingerprints (cloud-init's) after ${bounds.maxWaitSeconds} s: its key cannot be known but by trusting the network, which pgherd does not`,
    );
  return pin;
}

/** Waits until the new host's sshd answers with the pinned key; another key is refused at once. */
async function untilSshAnswers<S>(
  x: RunContext<S>,
  server: LaunchedServer,
  hostname: string,
  pin: string,
  deadline: number,
): Promise<void> {
  // Until its sshd answers (a host that boots takes a moment), with the pinned key: a host that
  // presents another key than its console said is refused at once.
  for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
    try {
      const r = await x.deps.ssh.exec(server.ssh, ['true'], { timeoutMs: 15_000, signal: x.signal });
      if (r.code === 0) break;
    } catch (err) {
      if (err instanceof HostKeyMismatchError)
        throw new Error(
          `${hostname} presents the host key ${err.received}, not ${pin}, which its console printed at first boot: it is not taken for the instance launched, and is terminated`,
        );
      if (x.signal.aborted || Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Terminates a launched instance and removes its server from the inventory; the row says how. Safe to run
 * twice. Its instance is the id EC2 answered the launch with, else (a worker that died before it heard the
 * answer) the instance EC2 says it launched with the row's client token, in a VPC or account mapped to the
 * row's environment, launched after the row was made: never one found by a tag, which anyone allowed
 * `ec2:CreateTags` can put on any instance. Refused, changing nothing, while an instance of the inventory
 * other than `leaving` (and its kept herd's) runs on its server: that server was adopted, and is left.
 */
export async function terminateLaunched(db: Db, rowId: number, how: string, signal?: AbortSignal, leaving: number[] = []): Promise<void> {
  const r = await db.execute<{
    region: string;
    instance_id: string | null;
    client_token: string;
    server_id: number | null;
    terminated_at: Date | null;
    created_at: Date;
    environment: string;
    adopted: string | null;
    adopted_id: number | null;
  }>(withParams(sqlFile('lib/actions/steps/launched-instance.sql'), [leaving, rowId]));
  const row = r.rows[0];
  if (!row || row.terminated_at) return;
  if (row.adopted) {
    const why = `its server runs ${row.adopted} now (adopted)`;
    await db.execute(sql`
      UPDATE launched_instances SET kept_instance_id = ${row.adopted_id}, settled_how = ${`left as found: ${why}`}, last_error = NULL
      WHERE id = ${rowId} AND terminated_at IS NULL`);
    throw refuse('not-applicable', `${row.instance_id ?? 'the launched instance'}: ${why}; it was not terminated`);
  }
  const client = ec2Client(row.region);
  try {
    const ids = row.instance_id ? [row.instance_id] : await launchedByToken(client, row);
    for (const id of ids) await terminateInstance(client, id, { ...waitBounds(), ...(signal ? { signal } : {}) });
    await db.transaction(async (tx) => {
      if (row.server_id !== null) await tx.execute(sql`DELETE FROM servers WHERE id = ${row.server_id}`);
      await tx.execute(sql`
        UPDATE launched_instances SET terminated_at = now(), settled_how = ${how}, last_error = NULL,
          instance_id = coalesce(instance_id, ${ids[0] ?? null}) WHERE id = ${rowId}`);
    });
  } finally {
    client.destroy();
  }
}

/** Clock skew allowed between pgherd's database and EC2 when a launch is matched to its row. */
const SKEW_MS = 60_000;

/** The live instances EC2 launched with the row's client token, where and when that launch could have put them. */
async function launchedByToken(
  client: EC2Client,
  row: { region: string; client_token: string; created_at: Date; environment: string },
): Promise<string[]> {
  const found = await describeInstances(client, row.region, [{ Name: 'client-token', Values: [row.client_token] }]);
  const map = awsEnvironments();
  const made = new Date(row.created_at).getTime();
  return found
    .filter(
      (i) =>
        i.state !== 'terminated' &&
        i.clientToken === row.client_token &&
        environmentOfInstance(map, i)?.environment === row.environment &&
        (i.launchTime?.getTime() ?? 0) >= made - SKEW_MS,
    )
    .map((i) => i.instanceId);
}
