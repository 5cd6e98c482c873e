// The lab's AWS: moto answers every AWS call the SDK makes; this front, between the SDK and moto, makes
// EC2 state mean to the lab what it means to a real host, where moto cannot:
// - StopInstances (and TerminateInstances) shuts the server's Postgres down first (`pg_ctl stop -m
//   fast`, as a host's shutdown does); StartInstances starts it once EC2 answers (as the host's boot).
// - ModifyInstanceAttribute changing the type of an instance that is not stopped fails with
//   IncorrectInstanceState, as AWS does (moto accepts it).
// - StartInstances fails with InsufficientInstanceCapacity for the types (or type@zone) a test lists in
//   the capacity file (AWS has no capacity for them now).
// - An instance the capacity file lists under `slow` (id: seconds) boots slowly: for that long after
//   its start, DescribeInstances says `pending` and its Postgres is not started yet.
// - The types (or type@zone) listed under `lateInsufficient` are refused late, as AWS sometimes does:
//   StartInstances is accepted, the instance is `pending` (for its `slow` seconds, else `lateSeconds`,
//   else 2), then `stopped` again with StateReason Server.InsufficientInstanceCapacity; its Postgres
//   never starts.
// - Route 53: a change is PENDING for ROUTE53_SYNC_MS after ChangeResourceRecordSets (GetChange says
//   so) before it is INSYNC, as Route 53 propagates to its name servers; moto says INSYNC at once.
//   `route53: { error: "AccessDenied" | "Throttling" }` in the capacity file fails every change with
//   that AWS error (the record sets stay as they are).
// - The Price List Query API (GetProducts), which moto lacks, answered from the price file pgherd
//   ships, published LAB_PRICES_PUBLISHED; `pricing: { perHour: { "m6i.xlarge": 0.5 } }` in the
//   capacity file changes a price, `pricing: { error: "AccessDeniedException" }` fails every call.
// - RunInstances in an environment's subnet (`launch` in its configuration) gives the instance a free
//   address of the environment's launch addresses, where an sshd answers as the new host would; none free
//   is InsufficientFreeAddressesInSubnet. A ClientToken launches once (the same answer again, as AWS does;
//   moto launches again). Types listed under `insufficient` are refused for capacity. Each instance it
//   launched says its ClientToken in RunInstances' and DescribeInstances' answers, and DescribeInstances
//   takes the `client-token` filter, as EC2 does (moto does neither).
// - GetConsoleOutput of a launched instance: cloud-init's block of SSH host key fingerprints (empty for
//   its first second, as a booting host's console is); `console: "other-key"` in the capacity file prints
//   another key than the host's.
// - A spot interruption pending (`interruptions: { "i-0123": "terminate" }` in the capacity file): for a
//   spot instance (InstanceLifecycle spot in moto) DescribeSpotInstanceRequests answers its request marked
//   for termination (or stop, hibernation), as EC2 does while its two-minute warning runs; moto keeps no
//   spot request for an instance launched with InstanceMarketOptions. An on-demand instance listed has none.
// - Status checks failed (`impaired: ["i-0123"]` in the capacity file): DescribeInstanceStatus answers both
//   of the instance's checks impaired, as EC2 does for a host that stopped answering (moto: always ok).
// - ModifyVolume of a lab volume (lib/lab/volumes.ts: a file on a loop device, attached in moto under the
//   device's name) grows the file and the loop device first, as EBS grows a volume under a running host
//   (the filesystem is the host's to grow); a smaller size, or a second change within six hours, is refused
//   as EBS refuses them.
// - S3 over TLS (`s3` in its configuration): every request passed to moto as it came (but for its Host:
//   moto's own, so a path-style request is read as one), streamed both ways, on a certificate of the lab's
//   CA; pgBackRest's S3 repositories talk to it.
// Run as a daemon by the lab: `node --import tsx lib/lab/aws-front.ts CONFIG.json`.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { DescribeInstancesCommand, EC2Client, StopInstancesCommand } from '@aws-sdk/client-ec2';
import shippedPrices from '@/lib/fleet/cloud/prices/ec2-on-demand.json';
import { binDirOf } from '@/lib/agent/collect';
import { run, type Identity } from './proc';
import { rdsFront, type RdsBacking, type RdsFaults, type RdsSpare } from './rds-front';
import { growLabVolume, readVolumes, volumesFileBeside } from './volumes';

export interface AwsFrontConfig {
  port: number;
  motoUrl: string;
  region: string;
  pgBin: string;
  identity: Identity;
  /** JSON: { "insufficient": ["m6i.xlarge", "m6i.2xlarge@eu-west-1a"], "lateInsufficient": ["r6i.large"], "slow": { "i-0123": 30 }, "route53": { "error": "Throttling" } } */
  capacityFile: string;
  /** Each EC2 instance's Postgres instances (what its host runs), and the build each starts on (default pgBin). */
  hosts: Record<string, { dataDirectory: string; logFile: string; binDir?: string }[]>;
  /**
   * Instances launched (RunInstances) in an environment's subnet: each gets a free one of the environment's
   * addresses as its private address (an sshd answers there with the environment's host key), and its
   * console says that key as cloud-init prints it.
   */
  launch?: { slots: { environment: string; address: string; fingerprint: string }[]; subnets: Record<string, string> };
  /** S3 over TLS: moto's own TLS fails with pgBackRest ("unexpected eof"), so S3 is served here with the lab CA's certificate. */
  s3?: { port: number; certFile: string; keyFile: string };
  /** RDS: each DB instance's lab Postgres, by identifier (lib/lab/rds-front.ts), and how long a change says it is under way. */
  rds?: { backing: Record<string, RdsBacking>; seconds?: number; dir?: string; spares?: RdsSpare[] };
}

/** When the lab's Price List API says its offers were published. */
export const LAB_PRICES_PUBLISHED = '2026-11-20';

/** GetProducts from the shipped price file: one product document per type of the filter's region. */
function getProducts(body: Buffer, override: Record<string, number>): { PriceList: string[]; NextToken?: string; FormatVersion: string } {
  const req = JSON.parse(body.toString('utf8') || '{}') as {
    ServiceCode?: string;
    Filters?: { Field: string; Value: string }[];
    NextToken?: string;
    MaxResults?: number;
  };
  const region = req.Filters?.find((f) => f.Field === 'regionCode')?.Value ?? '';
  // RDS for PostgreSQL's classes (db.*) for AmazonRDS, EC2's types for AmazonEC2.
  const rds = req.ServiceCode === 'AmazonRDS';
  const prices = Object.fromEntries(
    Object.entries({ ...(shippedPrices.regions as Record<string, Record<string, number>>)[region], ...override }).filter(
      ([type]) => type.startsWith('db.') === rds,
    ),
  );
  const docs = Object.entries(prices).map(([type, usd], k) =>
    JSON.stringify({
      product: {
        productFamily: rds ? 'Database Instance' : 'Compute Instance',
        attributes: rds
          ? { instanceType: type, regionCode: region, databaseEngine: 'PostgreSQL', deploymentOption: 'Single-AZ' }
          : { instanceType: type, regionCode: region, operatingSystem: 'Linux' },
        sku: `LAB${k}`,
      },
      serviceCode: rds ? 'AmazonRDS' : 'AmazonEC2',
      terms: {
        OnDemand: {
          [`LAB${k}.JRTCKXETXF`]: {
            priceDimensions: { [`LAB${k}.JRTCKXETXF.6YS6EN2CT7`]: { unit: 'Hrs', pricePerUnit: { USD: usd.toFixed(10) } } },
          },
        },
      },
      version: LAB_PRICES_PUBLISHED,
      publicationDate: `${LAB_PRICES_PUBLISHED}T00:00:00Z`,
    }),
  );
  const from = Number(req.NextToken ?? 0) || 0;
  const size = Math.min(100, req.MaxResults ?? 100);
  const page = docs.slice(from, from + size);
  return { FormatVersion: 'aws_v1', PriceList: page, ...(from + size < docs.length ? { NextToken: String(from + size) } : {}) };
}

/** How long a Route 53 change stays PENDING in the lab. */
export const ROUTE53_SYNC_MS = 1000;

const ROUTE53_ERRORS: Record<string, { status: number; message: string }> = {
  AccessDenied: {
    status: 403,
    message: 'User: arn:aws:iam::123456789012:user/lab is not authorized to perform: route53:ChangeResourceRecordSets',
  },
  Throttling: { status: 400, message: 'Rate exceeded' },
};

function route53Error(res: http.ServerResponse, code: string) {
  const e = ROUTE53_ERRORS[code] ?? { status: 400, message: code };
  res.writeHead(e.status, { 'content-type': 'text/xml' });
  res.end(
    `<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${e.message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}

function ec2Error(res: http.ServerResponse, status: number, code: string, message: string) {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`,
  );
}

/** InstanceId.1, InstanceId.2, ... (StartInstances, StopInstances) or InstanceId (ModifyInstanceAttribute). */
/**
 * Takes DescribeInstances' `client-token` filters out of `p` (moto does not know the filter); the tokens
 * asked for, or null when there was none.
 */
export function takeClientTokenFilter(p: URLSearchParams): string[] | null {
  const ns = [...p].flatMap(([k, v]) => (v === 'client-token' ? (/^Filter\.(\d+)\.Name$/.exec(k)?.slice(1, 2) ?? []) : []));
  if (!ns.length) return null;
  const tokens: string[] = [];
  for (const n of ns)
    for (const k of [...p.keys()])
      if (k.startsWith(`Filter.${n}.`)) {
        if (k.startsWith(`Filter.${n}.Value`)) tokens.push(p.get(k) ?? '');
        p.delete(k);
      }
  return tokens;
}

/** An instance's `<item>` saying its client token, as EC2 does (after its instanceId). */
export function withClientToken(item: string, token: string): string {
  if (item.includes('<clientToken>')) return item;
  return item.replace(/(<instanceId>[^<]+<\/instanceId>)/, `$1<clientToken>${token}</clientToken>`);
}

function instanceIds(p: URLSearchParams): string[] {
  const out: string[] = [];
  for (const [k, v] of p) if (k === 'InstanceId' || /^InstanceId\.\d+$/.test(k)) out.push(v);
  return out;
}

export function startFront(cfg: AwsFrontConfig): Promise<http.Server> {
  const moto = new EC2Client({
    endpoint: cfg.motoUrl,
    region: cfg.region,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
  });
  const describe = async (ids: string[]) => {
    const r = await moto.send(new DescribeInstancesCommand({ InstanceIds: ids }));
    return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
  };
  type Faults = {
    insufficient?: string[];
    lateInsufficient?: string[];
    /** How long a late refusal says pending (for an instance not listed under `slow`). */
    lateSeconds?: number;
    slow?: Record<string, number>;
    route53?: { error?: string };
    pricing?: { error?: string; perHour?: Record<string, number> };
    console?: 'other-key';
    rds?: RdsFaults;
    interruptions?: Record<string, 'terminate' | 'stop' | 'hibernate'>;
    /** Instances whose status checks EC2 says failed (DescribeInstanceStatus: impaired). */
    impaired?: string[];
  };
  const capacity = (): Faults => {
    if (!existsSync(cfg.capacityFile)) return {};
    try {
      return JSON.parse(readFileSync(cfg.capacityFile, 'utf8')) as Faults;
    } catch {
      return {};
    }
  };
  const refused = () => capacity().insufficient ?? [];
  // Instances booting slowly: until when EC2 says pending.
  const booting = new Map<string, number>();
  const pendingWhileBooting = (xml: string) =>
    eachInstance(xml, (item) => {
      const until = booting.get(/<instanceId>([^<]+)<\/instanceId>/.exec(item)?.[1] ?? '');
      return until !== undefined && Date.now() < until
        ? item.replace(
            /(<instanceState>\s*<code>)16(<\/code>\s*<name>)running(<\/name>)/,
            (_m, a: string, b: string, c: string) => `${a}0${b}pending${c}`,
          )
        : item;
    });
  // Instances EC2 took back to stopped for want of capacity (until they are started again).
  const lateRefused = new Set<string>();
  const LATE_REASON =
    '<stateReason><code>Server.InsufficientInstanceCapacity</code><message>Server.InsufficientInstanceCapacity: Insufficient capacity.</message></stateReason>';
  const reasonsOfLateRefused = (xml: string) =>
    eachInstance(xml, (item) => {
      const id = /<instanceId>([^<]+)<\/instanceId>/.exec(item)?.[1] ?? '';
      return lateRefused.has(id) ? item.replace(/<stateReason>[\s\S]*?<\/stateReason>/, LATE_REASON) : item;
    });
  // A host boots its Postgres on the build it ran before it stopped (as its service would), read from the
  // postmaster's executable when it is stopped; until then the build the lab started it on.
  const ranOn = new Map<string, string>();
  const pgCtl = async (id: string, verb: 'stop' | 'start') => {
    for (const h of cfg.hosts[id] ?? []) {
      if (verb === 'stop') {
        const was = binDirOf(h.dataDirectory);
        if (was) ranOn.set(h.dataDirectory, was);
      }
      const bin = ranOn.get(h.dataDirectory) ?? h.binDir ?? cfg.pgBin;
      const argv =
        verb === 'stop'
          ? [`${bin}/pg_ctl`, '-D', h.dataDirectory, '-m', 'fast', '-w', '-t', '60', 'stop']
          : [`${bin}/pg_ctl`, '-D', h.dataDirectory, '-l', h.logFile, '-w', '-t', '60', 'start'];
      await run(cfg.identity, argv).catch((err: unknown) => {
        // Already stopped (or already running): what a host's shutdown or boot finds sometimes.
        console.error(`aws-front: ${verb} ${h.dataDirectory}: ${(err as Error).message}`);
      });
    }
  };

  // Launches: one at a time (two must not take one address), answered again for a ClientToken seen before.
  let launching: Promise<unknown> = Promise.resolve();
  const launchedBy = new Map<string, { status: number; headers: http.OutgoingHttpHeaders; body: Buffer }>();
  const launchedAt = new Map<string, number>();
  // moto keeps a terminated instance's private address in use for ever ("IP already in use"), where EC2
  // frees it: a launched instance runs on the address moto gives it, and the front says the lab address it
  // was given instead, in every answer.
  const slotOf = new Map<string, { address: string; motoIp: string }>();
  // The client token each launch was made with (moto keeps it and says it nowhere).
  const tokenOf = new Map<string, string>();
  const asLaunched = (xml: string) =>
    slotOf.size || tokenOf.size
      ? eachInstance(xml, (item) => {
          const id = /<instanceId>([^<]+)<\/instanceId>/.exec(item)?.[1] ?? '';
          const token = tokenOf.get(id);
          const s = slotOf.get(id);
          if (token) item = withClientToken(item, token);
          if (!s) return item;
          // The address, and its dashed form in the private DNS name, never a longer address it begins.
          const dotted = new RegExp(`(?<![0-9.])${s.motoIp.replace(/\./g, '\\.')}(?![0-9])`, 'g');
          const dashed = new RegExp(`(?<=ip-)${s.motoIp.replace(/\./g, '-')}(?![0-9])`, 'g');
          return item.replace(dotted, s.address).replace(dashed, s.address.replace(/\./g, '-'));
        })
      : xml;
  const runInstances = async (req: http.IncomingMessage, p: URLSearchParams, env: string) => {
    const token = p.get('ClientToken');
    const again = token ? launchedBy.get(token) : undefined;
    if (again) return again;
    const type = p.get('InstanceType') ?? '';
    if (refused().includes(type))
      return {
        error: [
          'InsufficientInstanceCapacity',
          `We currently do not have sufficient ${type} capacity in the Availability Zone you requested.`,
        ],
      };
    const slots = (cfg.launch?.slots ?? []).filter((x) => x.environment === env).map((x) => x.address);
    const mine = [...slotOf].filter(([, s]) => slots.includes(s.address));
    const live = mine.length ? await describe(mine.map(([id]) => id)) : [];
    const taken = new Set(live.filter((i) => i.State?.Name !== 'terminated').map((i) => slotOf.get(i.InstanceId ?? '')?.address ?? ''));
    const address = slots.find((a) => !taken.has(a));
    if (!address)
      return {
        error: [
          'InsufficientFreeAddressesInSubnet',
          `The specified subnet does not have enough free addresses to satisfy the request (the lab has ${String(slots.length)} for ${env}).`,
        ],
      };
    const answer = await forward(cfg.motoUrl, req, Buffer.from(p.toString()));
    if (answer.status === 200) {
      const xml = answer.body.toString('utf8');
      const id = /<instanceId>([^<]+)<\/instanceId>/.exec(xml)?.[1];
      const motoIp = /<privateIpAddress>([^<]+)<\/privateIpAddress>/.exec(xml)?.[1];
      if (id && token) tokenOf.set(id, token);
      if (id && motoIp) {
        slotOf.set(id, { address, motoIp });
        launchedAt.set(id, Date.now());
        answer.body = Buffer.from(asLaunched(xml));
        answer.headers['content-length'] = String(answer.body.length);
      }
      if (token) launchedBy.set(token, answer);
    }
    return answer;
  };
  const consoleOutput = async (res: http.ServerResponse, id: string) => {
    const at = slotOf.get(id);
    const slot = cfg.launch?.slots.find((x) => x.address === at?.address);
    if (!slot) return false;
    const booted = Date.now() - (launchedAt.get(id) ?? 0) > 1000;
    const key = capacity().console === 'other-key' ? 'SHA256:0000000000000000000000000000000000000000000' : slot.fingerprint;
    const host = `ip-${slot.address.replace(/\./g, '-')}`;
    const text = [
      `[    0.000000] Linux version 6.1.0-lab (lab@${host})`,
      `ec2: #############################################################`,
      `ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----`,
      `ec2: 256 ${key} root@${host} (ED25519)`,
      `ec2: -----END SSH HOST KEY FINGERPRINTS-----`,
      `ec2: #############################################################`,
      `Cloud-init v. 22.4.2 finished.`,
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId><instanceId>${id}</instanceId><timestamp>${new Date().toISOString()}</timestamp>${booted ? `<output>${Buffer.from(text).toString('base64')}</output>` : ''}</GetConsoleOutputResponse>`,
    );
    return true;
  };

  // The spot requests of the listed spot instances that the filter names, marked as EC2 marks them.
  const MARKED = {
    terminate: ['marked-for-termination', 'termination'],
    stop: ['marked-for-stop', 'stop'],
    hibernate: ['marked-for-hibernation', 'hibernation'],
  } as const;
  const spotRequests = async (res: http.ServerResponse, p: URLSearchParams) => {
    const pending = capacity().interruptions ?? {};
    const named = [...p].filter(([k]) => /^Filter\.\d+\.Value\.\d+$/.test(k) && p.get(k.replace(/Value\.\d+$/, 'Name')) === 'instance-id');
    const ids = named.map(([, v]) => v).filter((id) => id in pending);
    if (!ids.length) return false;
    const spot = (await describe(ids)).filter((i) => i.InstanceLifecycle === 'spot' && i.State?.Name === 'running');
    const items = spot.map((i) => {
      const id = i.InstanceId ?? '';
      const behavior = pending[id] ?? 'terminate';
      const [code, word] = MARKED[behavior];
      return `<item><spotInstanceRequestId>sir-${id.slice(2, 10)}</spotInstanceRequestId><instanceId>${id}</instanceId><state>active</state><type>one-time</type><productDescription>Linux/UNIX</productDescription><launchedAvailabilityZone>${i.Placement?.AvailabilityZone ?? ''}</launchedAvailabilityZone><status><code>${code}</code><updateTime>${new Date().toISOString()}</updateTime><message>Your Spot Instance has been marked for ${word} because there is no more capacity available.</message></status><instanceInterruptionBehavior>${behavior}</instanceInterruptionBehavior></item>`;
    });
    res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSpotInstanceRequestsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId><spotInstanceRequestSet>${items.join('')}</spotInstanceRequestSet></DescribeSpotInstanceRequestsResponse>`,
    );
    return true;
  };

  // DescribeInstanceStatus of an instance listed as impaired: both checks failed, as EC2 says of a host
  // that stopped answering on its network (moto always answers ok).
  const instanceStatus = async (res: http.ServerResponse, p: URLSearchParams) => {
    const impaired = new Set(capacity().impaired ?? []);
    const ids = [...p].filter(([k]) => /^InstanceId\.\d+$/.test(k)).map(([, v]) => v);
    if (!ids.length || !ids.some((id) => impaired.has(id))) return false;
    const failed = '<status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details>';
    const items = (await describe(ids)).map((i) => {
      const bad = impaired.has(i.InstanceId ?? '');
      const ok = '<status>ok</status><details><item><name>reachability</name><status>passed</status></item></details>';
      return `<item><instanceId>${i.InstanceId ?? ''}</instanceId><availabilityZone>${i.Placement?.AvailabilityZone ?? ''}</availabilityZone><instanceState><code>${String(i.State?.Code ?? 16)}</code><name>${i.State?.Name ?? 'running'}</name></instanceState><systemStatus>${bad ? failed : ok}</systemStatus><instanceStatus>${bad ? failed : ok}</instanceStatus></item>`;
    });
    res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId><instanceStatusSet>${items.join('')}</instanceStatusSet></DescribeInstanceStatusResponse>`,
    );
    return true;
  };

  const rds = rdsFront(
    {
      identity: cfg.identity,
      pgBin: cfg.pgBin,
      region: cfg.region,
      classes: Object.keys((shippedPrices.regions as Record<string, Record<string, number>>)[cfg.region] ?? {}).filter((c) =>
        c.startsWith('db.'),
      ),
      backing: cfg.rds?.backing ?? {},
      dir: cfg.rds?.dir ?? '',
      spares: cfg.rds?.spares ?? [],
      ...(cfg.rds?.seconds ? { seconds: cfg.rds.seconds } : {}),
    },
    () => capacity().rds ?? {},
  );

  // Route 53 changes still propagating: change id -> when they are INSYNC.
  const syncing = new Map<string, number>();
  const pendingUntilSynced = (xml: string) => {
    const id = /<Id>(?:\/change\/)?([^<]+)<\/Id>/.exec(xml)?.[1] ?? '';
    const until = syncing.get(id);
    return until !== undefined && Date.now() < until ? xml.replace('<Status>INSYNC</Status>', '<Status>PENDING</Status>') : xml;
  };
  const route53 = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const isChange = req.method === 'POST' && /\/hostedzone\/[^/]+\/rrset\/?$/.test(req.url ?? '');
    const fault = capacity().route53?.error;
    if (isChange && fault) return void route53Error(res, fault);
    const answer = await forward(cfg.motoUrl, req, body);
    if (answer.status === 200 && (isChange || /\/change\/[^/]+$/.test(req.url ?? ''))) {
      let xml = answer.body.toString('utf8');
      if (isChange) {
        const id = /<Id>(?:\/change\/)?([^<]+)<\/Id>/.exec(xml)?.[1];
        if (id) syncing.set(id, Date.now() + ROUTE53_SYNC_MS);
      }
      xml = pendingUntilSynced(xml);
      answer.body = Buffer.from(xml);
      answer.headers['content-length'] = String(answer.body.length);
    }
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  };

  // ModifyVolume of a lab volume (lib/lab/volumes.ts): its loop device grown before moto is told, or the
  // call refused with the reason; once every six hours a volume, as EBS allows. Other volumes: moto's.
  const modifiedAt = new Map<string, number>();
  const modifyVolume = async (res: http.ServerResponse, p: URLSearchParams): Promise<boolean> => {
    const id = p.get('VolumeId') ?? '';
    const v = readVolumes(volumesFileBeside(cfg.capacityFile))[id];
    if (!v) return false;
    const last = modifiedAt.get(id);
    if (last !== undefined && Date.now() - last < 6 * 3_600_000) {
      ec2Error(
        res,
        400,
        'VolumeModificationRateExceeded',
        "You've reached the maximum modification rate per volume limit. Wait at least 6 hours between modifications per EBS volume.",
      );
      return true;
    }
    const size = Number(p.get('Size'));
    if (!p.has('Size') || !Number.isInteger(size)) return false;
    try {
      await growLabVolume(v, size);
    } catch (err) {
      ec2Error(res, 400, 'InvalidParameterValue', `lab: ${id} on ${v.device} was not grown: ${(err as Error).message}`);
      return true;
    }
    modifiedAt.set(id, Date.now());
    return false;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        if (/\/route53\/aws4_request/.test(req.headers.authorization ?? '')) return route53(req, res, body);
        if (/\/pricing\/aws4_request/.test(req.headers.authorization ?? '')) {
          const f = capacity().pricing ?? {};
          res.writeHead(f.error ? 400 : 200, { 'content-type': 'application/x-amz-json-1.1' });
          return void res.end(
            JSON.stringify(f.error ? { __type: f.error, Message: `lab: ${f.error}` } : getProducts(body, f.perHour ?? {})),
          );
        }
        if (/\/rds\/aws4_request/.test(req.headers.authorization ?? '') && req.method === 'POST') {
          const a =
            (await rds(new URLSearchParams(body.toString('utf8')), (b) => forward(cfg.motoUrl, req, b))) ??
            (await forward(cfg.motoUrl, req, body));
          res.writeHead(a.status, a.headers);
          return void res.end(a.body);
        }
        const isEc2 = /\/ec2\/aws4_request/.test(req.headers.authorization ?? '') && req.method === 'POST';
        const p = isEc2 ? new URLSearchParams(body.toString('utf8')) : null;
        const action = p?.get('Action') ?? null;
        const ids = p ? instanceIds(p) : [];
        const launchEnv =
          p && action === 'RunInstances' && !p.has('PrivateIpAddress') ? cfg.launch?.subnets[p.get('SubnetId') ?? ''] : undefined;
        if (p && launchEnv !== undefined) {
          const next = launching.then(() => runInstances(req, p, launchEnv));
          launching = next.catch(() => {});
          const a = await next;
          if ('error' in a) return void ec2Error(res, a.error[0] === 'InsufficientInstanceCapacity' ? 500 : 400, a.error[0]!, a.error[1]!);
          res.writeHead(a.status, a.headers);
          return void res.end(a.body);
        }
        if (p && action === 'ModifyVolume' && (await modifyVolume(res, p))) return;
        if (p && action === 'DescribeSpotInstanceRequests' && (await spotRequests(res, p))) return;
        if (p && action === 'DescribeInstanceStatus' && (await instanceStatus(res, p))) return;
        if (p && action === 'GetConsoleOutput' && (await consoleOutput(res, p.get('InstanceId') ?? ''))) return;
        if (p && action === 'ModifyInstanceAttribute' && p.has('InstanceType.Value')) {
          const [i] = await describe(ids);
          const state = i?.State?.Name;
          if (i && state !== 'stopped')
            return void ec2Error(res, 400, 'IncorrectInstanceState', `The instance '${i.InstanceId ?? ''}' is not in the 'stopped' state.`);
        }
        if (p && action === 'StartInstances') {
          const no = refused();
          for (const i of await describe(ids)) {
            const type = i.InstanceType ?? '';
            const zone = i.Placement?.AvailabilityZone ?? '';
            if (i.State?.Name === 'stopped' && (no.includes(type) || no.includes(`${type}@${zone}`)))
              return void ec2Error(
                res,
                500,
                'InsufficientInstanceCapacity',
                `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${zone}). Our system will be working on provisioning additional capacity. You can currently get ${type} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.`,
              );
          }
        }
        if (action === 'StopInstances' || action === 'TerminateInstances') {
          const running = (await describe(ids)).filter((i) => i.State?.Name === 'running').map((i) => i.InstanceId ?? '');
          await Promise.all(running.map((id) => pgCtl(id, 'stop')));
        }
        const stoppedNow = action === 'StartInstances' ? (await describe(ids)).filter((i) => i.State?.Name === 'stopped') : [];
        const late = capacity().lateInsufficient ?? [];
        const refusedLate = (i: (typeof stoppedNow)[number]) =>
          late.includes(i.InstanceType ?? '') || late.includes(`${i.InstanceType ?? ''}@${i.Placement?.AvailabilityZone ?? ''}`);
        const wasStopped = stoppedNow.map((i) => i.InstanceId ?? '');
        const tokens = p && action === 'DescribeInstances' ? takeClientTokenFilter(p) : null;
        const answer = await forward(cfg.motoUrl, req, tokens && p ? Buffer.from(p.toString()) : body);
        if (action === 'DescribeInstances' && (booting.size || lateRefused.size || slotOf.size || tokens) && answer.status === 200) {
          let xml = asLaunched(reasonsOfLateRefused(pendingWhileBooting(answer.body.toString('utf8'))));
          // Only the instances launched with one of the tokens asked for.
          if (tokens)
            xml = eachInstance(xml, (item) =>
              tokens.includes(tokenOf.get(/<instanceId>([^<]+)<\/instanceId>/.exec(item)?.[1] ?? '') ?? '') ? item : '',
            );
          answer.body = Buffer.from(xml);
          answer.headers['content-length'] = String(answer.body.length);
        }
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
        if (answer.status === 200 && wasStopped.length) {
          const slow = capacity().slow ?? {};
          for (const id of wasStopped) lateRefused.delete(id);
          await Promise.all(
            wasStopped.map(async (id) => {
              if (refusedLate(stoppedNow.find((i) => i.InstanceId === id)!)) {
                const pending = slow[id] ?? capacity().lateSeconds ?? 2;
                booting.set(id, Date.now() + pending * 1000);
                await new Promise((r) => setTimeout(r, pending * 1000));
                // Its reason is EC2's from the moment it says stopped.
                lateRefused.add(id);
                await moto.send(new StopInstancesCommand({ InstanceIds: [id] }));
                booting.delete(id);
                return;
              }
              const seconds = slow[id] ?? 0;
              if (seconds > 0) {
                booting.set(id, Date.now() + seconds * 1000);
                await new Promise((r) => setTimeout(r, seconds * 1000));
                booting.delete(id);
              }
              await pgCtl(id, 'start');
            }),
          );
        }
      })().catch((err: unknown) => {
        console.error(`aws-front: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) ec2Error(res, 500, 'InternalError', (err as Error).message);
      });
    });
  });
  return new Promise((resolve) => server.listen(cfg.port, '127.0.0.1', () => resolve(server)));
}

/**
 * DescribeInstances' XML with each instance's own `<item>` (the top-level items of every instancesSet)
 * passed through `fn`: moto writes an instance's stateReason before its instanceId, so a pattern from
 * one to the other would reach into the next instance.
 */
export function eachInstance(xml: string, fn: (item: string) => string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const set = xml.indexOf('<instancesSet>', at);
    if (set < 0) return out + xml.slice(at);
    let k = set + '<instancesSet>'.length;
    out += xml.slice(at, k);
    for (;;) {
      const open = xml.indexOf('<item>', k);
      const end = xml.indexOf('</instancesSet>', k);
      if (open < 0 || end < 0 || end < open) break;
      let depth = 0;
      let j = open;
      const tag = /<item>|<\/item>/g;
      tag.lastIndex = open;
      for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
        depth += m[0] === '<item>' ? 1 : -1;
        if (depth === 0) {
          j = m.index + m[0].length;
          break;
        }
      }
      if (depth !== 0) break;
      out += xml.slice(k, open) + fn(xml.slice(open, j));
      k = j;
    }
    at = k;
  }
}

async function forward(motoUrl: string, req: http.IncomingMessage, body: Buffer) {
  const u = new URL(req.url ?? '/', motoUrl);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
  // The body may have been changed here (a launch's address): its own length.
  headers['content-length'] = String(body.length);
  return new Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const out = http.request(u, { method: req.method, headers: { ...headers, host: u.host } }, (r) => {
      const parts: Buffer[] = [];
      r.on('data', (c: Buffer) => parts.push(c));
      r.on('end', () => {
        const h: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && k !== 'connection' && k !== 'transfer-encoding') h[k] = v;
        resolve({ status: r.statusCode ?? 502, headers: h, body: Buffer.concat(parts) });
      });
      r.on('error', reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

/** S3 over TLS in front of moto: each request passed on as it came (method, path, headers, body streamed). */
export function startS3Front(cfg: AwsFrontConfig & { s3: NonNullable<AwsFrontConfig['s3']> }): Promise<https.Server> {
  const moto = new URL(cfg.motoUrl);
  const server = https.createServer({ cert: readFileSync(cfg.s3.certFile), key: readFileSync(cfg.s3.keyFile) }, (req, res) => {
    const out = http.request(
      // As moto's own address: moto reads a bucket from any other host name (virtual-hosted style), and it
      // checks no signature (which covers the host).
      { host: moto.hostname, port: moto.port, method: req.method, path: req.url, headers: { ...req.headers, host: moto.host } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`lab S3 front: ${err.message}`);
    });
    req.pipe(out);
  });
  return new Promise((resolve) => server.listen(cfg.s3.port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1]?.endsWith('aws-front.ts') && process.argv[2]) {
  const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8')) as AwsFrontConfig;
  void startFront(cfg).then(() => console.log(`aws-front: listening on 127.0.0.1:${cfg.port}, moto at ${cfg.motoUrl}`));
  const s3 = cfg.s3;
  if (s3) void startS3Front({ ...cfg, s3 }).then(() => console.log(`aws-front: S3 over TLS on 127.0.0.1:${s3.port}`));
}
